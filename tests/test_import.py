"""``secmon import`` over every shared dataset: everything read is stored, nothing twice."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from secmon.config import ElasticsearchSettings
from secmon.store import IndexNames

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def summary_row(output: str) -> list[int]:
    """The numbers of the summary table: read, failed to parse, stored, already stored, dead-lettered, failed."""
    row = next(line for line in reversed(output.splitlines()) if line.startswith("│"))
    return [int(cell.strip().replace(",", "")) for cell in row.split("│") if cell.strip()]


def stored_count(url: str, pattern: str) -> int:
    urllib.request.urlopen(urllib.request.Request(f"{url}/{pattern}/_refresh", method="POST"), timeout=10).close()
    with urllib.request.urlopen(f"{url}/{pattern}/_count", timeout=10) as response:
        return int(json.load(response)["count"])


def test_every_log_and_evtx_file_goes_in_and_a_second_import_stores_nothing_twice(
    es_settings: ElasticsearchSettings, tmp_path: Path
) -> None:
    url = es_settings.url or f"http://{es_settings.local.host}:{es_settings.local.port}"
    names = IndexNames(f"{es_settings.index_prefix}-import")  # its own prefix: exact counts
    config = tmp_path / "secmon.yml"
    config.write_text(f"elasticsearch:\n  url: {url}\n  index_prefix: {names.prefix}\nstate_dir: {tmp_path}\n")
    logs = sorted(str(p) for p in (DATASETS / "logs").glob("*.log"))
    lines = sum(1 for path in logs for line in Path(path).read_bytes().splitlines() if line.strip())

    def run(*args: str) -> list[int]:
        result = subprocess.run(
            [sys.executable, "-m", "secmon", "--config", str(config), "import", *args],
            capture_output=True, text=True, timeout=600, check=False, env={"COLUMNS": "200", "PATH": ""},
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return summary_row(result.stdout)

    read, failed_to_parse, stored, duplicates, dead_lettered, failed, alerts = run("logs", *logs)
    assert read == lines
    assert alerts > 0  # the shipped SSH brute-force correlations fire on the OpenSSH log
    assert (stored, duplicates, dead_lettered, failed) == (lines, 0, 0, 0)
    # The Proxifier and Windows CBS logs have no parser: kept raw and tagged, 2,000 lines each.
    assert failed_to_parse == 4001

    read, failed_to_parse, stored, duplicates, dead_lettered, failed, _ = run("evtx", str(DATASETS / "evtx"))
    assert read == 3978
    assert (failed_to_parse, stored, duplicates, dead_lettered, failed) == (0, 3978, 0, 0, 0)
    assert stored_count(url, names.events_pattern) == lines + 3978

    again = run("evtx", str(DATASETS / "evtx"))
    assert again == [3978, 0, 0, 3978, 0, 0, 0]  # all already stored, no new alert
    assert stored_count(url, names.events_pattern) == lines + 3978

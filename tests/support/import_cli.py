"""``secmon import`` run as a user runs it, and what it stored, for the tests of importing and hunting."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from secmon.config import ElasticsearchSettings
from secmon.store import IndexNames


def summary_row(output: str) -> list[int]:
    """The numbers of the summary table: read, failed to parse, stored, already stored, dead-lettered, failed.

    Piped, the table is tab-separated lines: its header line, then the row of numbers.
    """
    lines = output.splitlines()
    header = max(number for number, line in enumerate(lines) if line.startswith("read\tfailed to parse\t"))
    return [int(cell.replace(",", "")) for cell in lines[header + 1].split("\t")]


def stored_count(url: str, pattern: str) -> int:
    urllib.request.urlopen(urllib.request.Request(f"{url}/{pattern}/_refresh", method="POST"), timeout=10).close()
    with urllib.request.urlopen(f"{url}/{pattern}/_count", timeout=10) as response:
        return int(json.load(response)["count"])


def import_config(es_settings: ElasticsearchSettings, tmp_path: Path, suffix: str) -> tuple[str, IndexNames, Path]:
    """The cluster URL, an index prefix of the test's own (exact counts) and a config file using them."""
    url = es_settings.url or f"http://{es_settings.local.host}:{es_settings.local.port}"
    names = IndexNames(f"{es_settings.index_prefix}-{suffix}")
    config = tmp_path / "secmon.yml"
    config.write_text(f"elasticsearch:\n  url: {url}\n  index_prefix: {names.prefix}\nstate_dir: {tmp_path}\n")
    return url, names, config


def run_import(config: Path, *args: str) -> tuple[list[int], str]:
    """``secmon import ARGS`` as a user runs it: its summary row and everything it printed."""
    result = subprocess.run(
        [sys.executable, "-m", "secmon", "--config", str(config), "import", *args],
        capture_output=True, text=True, timeout=600, check=False, env={"COLUMNS": "200", "PATH": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return summary_row(result.stdout), result.stdout

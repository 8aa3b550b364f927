"""``benchmarks/peers``, run from the source tree: secmon measured as ``secmon detect`` reports itself, peers found
where benchmarks/README.md says to build them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from benchmarks.peers.engines import find_peers
from tests.support.datasets import DATASETS

ROOT = Path(__file__).resolve().parents[2]
RULE = ROOT / "tests" / "fixtures" / "sigma" / "win_system_susp_eventlog_cleared.yml"
EVTX = DATASETS / "evtx" / "defense-evasion"
WIDE = {**os.environ, "COLUMNS": "300"}  # rich tables and summaries on one line each


def detect_summary(env: dict[str, str]) -> tuple[str, str]:
    """The events and matches ``secmon detect`` reports for RULE over EVTX, as it prints them."""
    detect = subprocess.run(
        [sys.executable, "-m", "secmon", "detect", "--rules", str(RULE), str(EVTX)],
        capture_output=True, text=True, timeout=300, check=True, env=env,
    )  # fmt: skip
    summary = re.search(r"([\d,]+) events, ([\d,]+) matches", " ".join(detect.stderr.split()))
    assert summary is not None, detect.stderr
    events, matches = summary.groups()
    assert int(matches) == len(detect.stdout.splitlines()) > 0
    return events, matches


def test_the_secmon_row_counts_what_secmon_detect_reports(tmp_path: Path) -> None:
    events, matches = detect_summary(WIDE)

    no_peers = tmp_path / "peers"
    no_peers.mkdir()
    bench = subprocess.run(
        [sys.executable, "-m", "benchmarks.peers.detect", "--peers", str(no_peers), "--rules", str(RULE), str(EVTX)],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT, env=WIDE,
    )  # fmt: skip
    assert bench.returncode == 0, bench.stdout + bench.stderr
    rows = [line for line in bench.stdout.splitlines() if line.startswith("│ secmon detect --jobs ")]
    assert rows[0].startswith("│ secmon detect --jobs 1 ")
    assert len(rows) == (1 if (os.cpu_count() or 1) == 1 else 2)  # one process, then every core
    for row in rows:
        _, read, loaded, matched, *_ = (cell.strip() for cell in row.strip("│").split("│"))
        assert (read, loaded, matched) == (events, "1", matches)
    assert f"no peer built under {no_peers}" in " ".join(bench.stdout.split())


def test_bench_detect_hunts_the_copies_it_makes(tmp_path: Path) -> None:
    env = {**WIDE, "XDG_CACHE_HOME": str(tmp_path)}
    events, matches = (int(n.replace(",", "")) for n in detect_summary(env))
    bench = subprocess.run(
        [sys.executable, "-m", "secmon", "bench", "detect", "-r", str(RULE), str(EVTX), "--corpus-repeat", "3",
         "--repeat", "1", "--jobs", "2"],
        capture_output=True, text=True, timeout=600, check=True, env=env,
    )  # fmt: skip
    # Not on a terminal, secmon prints its tables as tab-separated values.
    rows = {cells[0]: cells[1:] for line in bench.stdout.splitlines() for cells in [line.split("\t")]}
    assert rows["secmon (matching only)"][0] == f"{3 * events:,}"
    assert rows["secmon (matching only)"][2] == f"{3 * matches:,}"
    assert rows["secmon detect --jobs 2 (read + parse + match)"][0] == f"{3 * events:,}"
    assert rows["secmon detect --jobs 2 (read + parse + match)"][2] == f"{3 * matches:,}"


def test_peers_are_found_where_the_readme_says_to_build_them(tmp_path: Path) -> None:
    zircolite = tmp_path / "zircolite"
    (zircolite / ".venv" / "bin").mkdir(parents=True)
    (zircolite / "zircolite.py").touch()
    (zircolite / ".venv" / "bin" / "python").touch()
    chainsaw = tmp_path / "chainsaw" / "target" / "release" / "chainsaw"
    chainsaw.parent.mkdir(parents=True)
    chainsaw.touch(mode=0o755)
    hayabusa = tmp_path / "hayabusa" / "target" / "release" / "hayabusa"
    hayabusa.parent.mkdir(parents=True)
    hayabusa.touch(mode=0o644)  # not executable: not built

    assert find_peers(tmp_path) == {"zircolite": zircolite / "zircolite.py", "chainsaw": chainsaw}
    assert find_peers(tmp_path / "nothing-here") == {}

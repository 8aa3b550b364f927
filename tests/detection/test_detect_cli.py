"""``secmon detect`` as incident responders run it: real EVTX, real SigmaHQ rules, JSON lines out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
SIGMA = DATASETS / "sigma" / "rules"
LOG_CLEARED = DATASETS / "evtx" / "defense-evasion" / "DE_104_system_log_cleared.evtx"


def run_detect(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {"XDG_CACHE_HOME": str(cache), "PATH": "/usr/bin:/bin", "HOME": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "secmon", "detect", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def test_detect_prints_one_json_line_per_match_with_the_evtx_record(tmp_path: Path) -> None:
    rules = SIGMA / "windows" / "builtin" / "system"
    result = run_detect("--rules", str(rules), str(LOG_CLEARED), cache=tmp_path)
    assert result.returncode == 0, result.stderr
    findings = [json.loads(line) for line in result.stdout.splitlines()]
    cleared = [f for f in findings if f["rule_id"] == "100ef69e-3327-481c-8e5c-6d80d9507556"]
    assert len(cleared) == 1
    assert cleared[0]["title"] == "Important Windows Eventlog Cleared"
    assert cleared[0]["level"] == "high"
    assert cleared[0]["record_id"] == 1
    assert cleared[0]["timestamp"].startswith("2019-03-19T23:34:25")
    assert cleared[0]["file"] == str(LOG_CLEARED)
    # The generic rule excludes the channels the important one covers: System is one of them.
    assert not [f for f in findings if f["rule_id"] == "a62b37e0-45d3-48d9-a517-90c1a1b0186b"]
    assert "1 files, " in result.stderr.replace("\n", " ")


def test_detect_reads_log_lines_and_reports_broken_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "root.yml").write_text(
        "title: Root password failure\nid: 0e7a4a4c-3f7c-4d3e-9a62-5b0f7c1d2e11\nlevel: low\n"
        "logsource: {product: linux, service: sshd}\n"
        "detection:\n  sel:\n    user.name: root\n    event.outcome: failure\n  condition: sel\n"
    )
    (rules / "broken.yml").write_text("title: broken\ndetection:\n  sel:\n    a|nosuchmodifier: 1\n  condition: sel\n")
    log = tmp_path / "auth.log"
    log.write_text(
        "Nov 24 10:00:00 web1 sshd[42]: Failed password for root from 192.0.2.1 port 22 ssh2\n"
        "Nov 24 10:00:01 web1 sshd[42]: Accepted password for root from 192.0.2.1 port 22 ssh2\n"
    )
    result = run_detect("--rules", str(rules), "--show-problems", str(log), cache=tmp_path)
    assert result.returncode == 0, result.stderr
    (finding,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert finding["title"] == "Root password failure" and finding["line"] == 1
    assert "broken.yml" in result.stderr and "nosuchmodifier" in result.stderr

"""``secmon detect`` as incident responders run it: real EVTX, real SigmaHQ rules, JSON lines out."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import evtx

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
SIGMA = DATASETS / "sigma" / "rules"
LOG_CLEARED = DATASETS / "evtx" / "defense-evasion" / "DE_104_system_log_cleared.evtx"
# Sysmon event 3 (network connections) of processes an EDR test script started, certutil's among them.
SYSMON_NETWORK = DATASETS / "evtx" / "automatedtestingtools" / "panache_sysmon_vs_EDRTestingScript.evtx"
SMTP_CAPTURE = DATASETS / "pcap" / "smtp" / "smtp-pipelined-rset-data-replies" / "input.pcap"
EVENT_NS = "{http://schemas.microsoft.com/win/2004/08/events/event}"


def event_record_ids(path: Path) -> dict[int, int]:
    """System/EventRecordID of each record by its number in the file, read from the parser's XML rendering."""
    ids = {}
    for record in evtx.PyEvtxParser(str(path)).records():
        system = ET.fromstring(record["data"].encode()).find(f"{EVENT_NS}System")
        assert system is not None
        ids[record["event_record_id"]] = int(system.findtext(f"{EVENT_NS}EventRecordID") or "")
    return ids


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
    # EventRecordID, as Event Viewer shows it; the file's own header numbers this record 1.
    assert event_record_ids(LOG_CLEARED) == {1: 27736}
    assert cleared[0]["record_id"] == 27736
    assert cleared[0]["file_record_id"] == 1
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


def test_detect_matches_windows_and_packet_network_connections_in_one_run(tmp_path: Path) -> None:
    # Both kinds of rule share the category network_connection: the product-less one (secmon's
    # flows) must not add its selection to the Windows one (Sysmon event 3), nor the reverse.
    certutil = SIGMA / "windows" / "network_connection" / "net_connection_win_certutil_initiated_connection.yml"
    flows = Path(__file__).resolve().parents[2] / "rules" / "network" / "net_tcp_connection_attempt.yml"
    result = run_detect(
        "--rules", str(certutil), "--rules", str(flows), str(SYSMON_NETWORK), str(SMTP_CAPTURE), cache=tmp_path
    )
    assert result.returncode == 0, result.stderr
    findings = [json.loads(line) for line in result.stdout.splitlines()]
    windows = [f for f in findings if f["file"] == str(SYSMON_NETWORK)]
    packets = [f for f in findings if f["file"] == str(SMTP_CAPTURE)]
    # Records 96 and 97 are certutil's connections (Sysmon event 3 whose Image ends in certutil.exe).
    xml_ids = event_record_ids(SYSMON_NETWORK)
    assert {(f["title"], f["record_id"]) for f in windows} == {
        ("Uncommon Network Connection Initiated By Certutil.EXE", xml_ids[96]),
        ("Uncommon Network Connection Initiated By Certutil.EXE", xml_ids[97]),
    }
    assert [f["title"] for f in packets] == ["TCP Connection Attempt"]  # its one TCP connection, as tshark counts

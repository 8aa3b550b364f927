"""``secmon import`` over every shared dataset: everything read is stored, nothing twice."""

from __future__ import annotations

from pathlib import Path

from secmon.config import ElasticsearchSettings
from tests.support.datasets import DATASETS
from tests.support.import_cli import import_config, run_import, stored_count


def test_every_log_and_evtx_file_goes_in_and_a_second_import_stores_nothing_twice(
    es_settings: ElasticsearchSettings, tmp_path: Path
) -> None:
    url, names, config = import_config(es_settings, tmp_path, "import")
    logs = sorted(str(p) for p in (DATASETS / "logs").glob("*.log"))
    lines = sum(1 for path in logs for line in Path(path).read_bytes().splitlines() if line.strip())

    def run(*args: str) -> list[int]:
        return run_import(config, *args)[0]

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


def test_pcap_import_stores_every_event_once_and_keeps_a_damaged_capture_s_events(
    es_settings: ElasticsearchSettings, tmp_path: Path
) -> None:
    url, names, config = import_config(es_settings, tmp_path, "pcap")
    scan = DATASETS / "pcap" / "ndpi" / "synscan.pcap"
    damaged = tmp_path / "damaged.pcap"
    damaged.write_bytes(scan.read_bytes()[:30_000])  # cut in the middle of a packet record

    def run(*args: str) -> tuple[list[int], str]:
        return run_import(config, "pcap", *args)

    gap = DATASETS / "pcap" / "http" / "http-gap-beyond-body" / "input.pcap"  # a TCP segment never captured
    (read, failed_to_parse, stored, duplicates, dead_lettered, failed, alerts), output = run(
        str(DATASETS / "pcap" / "ndpi" / "dns-tunnel-iodine.pcap"), str(damaged), str(gap)
    )
    assert read > 0 and (failed_to_parse, stored, duplicates, dead_lettered, failed) == (0, read, 0, 0, 0)
    assert alerts == 2  # DNS tunnelling (iodine) and the port scan in the damaged capture's first part
    assert "damaged capture" in output and "damaged.pcap" in output
    assert "not decoded (frames or messages, by reason): tcp_gap 1" in " ".join(output.split())
    assert stored_count(url, names.events_pattern) == read

    again, _ = run(str(DATASETS / "pcap" / "ndpi" / "dns-tunnel-iodine.pcap"), str(damaged), str(gap))
    assert again == [read, 0, 0, read, 0, 0, 0]  # the same events, already stored; no new alert
    assert stored_count(url, names.events_pattern) == read

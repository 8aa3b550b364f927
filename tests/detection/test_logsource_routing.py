"""An event's logsources: the entries whose every field holds one of its values, each once."""

from __future__ import annotations

from sigma.pipelines.common import windows_logsource_mapping
from sigma.pipelines.sysmon.sysmon import sysmon_generic_logsource_eventid_mapping

from secmon.bench.collect import syslog_lines
from secmon.collect.sources.evtx import read_evtx
from secmon.collect.transforms.normalize import normalize
from secmon.collect.transforms.normalize_winlog.record import normalize_evtx
from secmon.detection.fields import EventView
from secmon.detection.logsource import SYSMON_CHANNEL, LogsourceKey, LogsourceMap
from secmon.detection.pipelines import RULES_DIR
from secmon.events import Event, Record
from tests.support.datasets import DATASETS

LOGSOURCES = LogsourceMap.load(RULES_DIR / "logsources.yml")


def _by_definition(event: Event) -> list[LogsourceKey]:
    """Every entry, read the slow way: all of its fields hold one of the listed values."""
    view = EventView(event)
    return [key for key, selection in LOGSOURCES.selections.items() if selection.covers(view)]


def _events() -> list[Event]:
    events = [normalize(Record(line.decode().rstrip("\n"))) for line in syslog_lines(300)]
    for path in sorted((DATASETS / "evtx").rglob("*.evtx"))[:40]:
        events += [normalize_evtx(record.event) for record in read_evtx(path)][:50]
    return events


def test_an_event_routes_to_exactly_the_entries_it_meets() -> None:
    events = _events()
    assert len({event["event"]["dataset"] for event in events}) > 8  # sshd, sudo, firewall and many channels
    for event in events:
        assert sorted(LOGSOURCES.keys_of(EventView(event)), key=str) == sorted(_by_definition(event), key=str)


def test_a_sysmon_process_creation_is_routed_as_pysigmas_own_tables_say() -> None:
    event = {"winlog": {"channel": SYSMON_CHANNEL, "event_id": "1"}, "event": {"dataset": "windows.sysmon_operational"}}
    sysmon_services = {service for service, channels in windows_logsource_mapping.items() if SYSMON_CHANNEL in channels}
    categories = {
        category
        for category, ids in sysmon_generic_logsource_eventid_mapping.items()
        if 1 in (ids if isinstance(ids, list) else [ids])
    }
    expected = {("windows", None, service) for service in sysmon_services} | {
        ("windows", category, None) for category in categories
    }
    assert expected == {("windows", None, "sysmon"), ("windows", "process_creation", None)}
    assert set(LOGSOURCES.keys_of(EventView(event))) == expected


def test_an_event_with_two_values_that_lead_to_one_entry_gets_it_once() -> None:
    # Both datasets lead to linux/cron: its rules must be matched once, not once per value.
    event = {"event": {"dataset": ["syslog", "system.auth"]}, "process": {"name": "cron"}}
    keys = LOGSOURCES.keys_of(EventView(event))
    assert len(keys) == len(set(keys))
    assert ("linux", None, "cron") in keys
    assert sorted(keys, key=str) == sorted(_by_definition(event), key=str)

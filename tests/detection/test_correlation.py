"""Sigma correlation rules, from YAML through the real loader, pipeline and matcher.

The fixtures in ``correlation/`` are Sigma files: ``base.yml`` holds the base rules (sshd,
Windows Security, web server), each other file one correlation type or case. sshd events are
real syslog lines normalized by secmon's collector; the event time is passed explicitly, as
the detection task passes each event's ``@timestamp``.
"""

from __future__ import annotations

import datetime
import itertools
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from secmon.collect.transforms.normalize import normalize
from secmon.detection.correlation import (
    CorrelationEngine,
    CorrelationHit,
    CorrelationRule,
    CorrelationType,
    Threshold,
    load_correlations,
)
from secmon.detection.engine import Engine
from secmon.detection.loader import load_rules
from secmon.detection.logsource import LogsourceMap
from secmon.detection.pipelines import RULES_DIR, build_pipeline, default_pipeline_files
from secmon.detection.rules import Rule, RuleProblem
from secmon.events import Record

FIXTURES = Path(__file__).parent / "correlation"
LOGSOURCES = LogsourceMap.load(RULES_DIR / "logsources.yml")
PIPELINE = build_pipeline(LOGSOURCES, default_pipeline_files())
SSH_LOG = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "logs" / "loghub_OpenSSH_2k.log"

# A multiple of 5 minutes (and of 1 minute): where a fixed 5-minute bucket would end.
BOUNDARY = 1_700_000_100.0
ATTACKER, OTHER = "203.0.113.7", "198.51.100.9"


class Detection:
    """Base rules and correlations loaded from files, and both engines over them."""

    def __init__(self, paths: Sequence[Path], **options: Any) -> None:
        self.rules: list[Rule] = load_rules(paths, PIPELINE).rules
        self.correlations, self.problems = load_correlations(paths, PIPELINE, self.rules)
        self.matcher = Engine(self.rules, LOGSOURCES)
        self.engine = CorrelationEngine(self.correlations, **options)
        self._ids = itertools.count(1)

    def feed(self, event: dict[str, Any], at: float) -> list[CorrelationHit]:
        return self.engine.observe(self.matcher.match(event), event, f"e{next(self._ids)}", at)

    def feed_all(self, events: Sequence[tuple[dict[str, Any], float]]) -> list[CorrelationHit]:
        return [hit for event, at in events for hit in self.feed(event, at)]

    def correlation(self, suffix: str) -> CorrelationRule:
        return next(c for c in self.correlations if c.id.endswith(suffix))


def detection(*names: str, **options: Any) -> Detection:
    loaded = Detection([FIXTURES / "base.yml", *(FIXTURES / n for n in names)], **options)
    assert not loaded.problems, [str(p) for p in loaded.problems]
    return loaded


def sshd(message: str) -> dict[str, Any]:
    return normalize(Record(message=f"<38>Nov 24 10:00:00 host1 sshd[123]: {message}", origin=None, received=0.0))


def failed(ip: str, user: str = "root") -> dict[str, Any]:
    return sshd(f"Failed password for {user} from {ip} port 2222 ssh2")


def accepted(ip: str, user: str = "root") -> dict[str, Any]:
    return sshd(f"Accepted password for {user} from {ip} port 2222 ssh2")


def invalid_user(ip: str, user: str = "admin") -> dict[str, Any]:
    return sshd(f"Invalid user {user} from {ip} port 2222")


def web_get(ip: str, size: int) -> dict[str, Any]:
    return {
        "event": {"dataset": "nginx.access"},
        "source": {"ip": ip},
        "http": {"request": {"method": "GET"}, "response": {"status_code": 200, "body": {"bytes": size}}},
        "url": {"path": "/download"},
    }


def windows_logon_failed(user: str) -> dict[str, Any]:
    return {"winlog": {"channel": "Security", "event_id": "4625", "event_data": {"TargetUserName": user}}}


# -- loading -----------------------------------------------------------------------------------


def test_references_fields_and_conditions_are_resolved() -> None:
    loaded = detection("event_count.yml", "value_count.yml", "temporal_ordered.yml", "web_values.yml")
    count = loaded.correlation("01")
    assert count.type is CorrelationType.EVENT_COUNT
    assert count.rule_refs == ("0a000000-0000-4000-8000-000000000001",)
    assert count.group_by == ("source.ip",)
    assert count.timespan == 300.0
    assert count.condition.thresholds == (Threshold("gte", 3.0),)
    assert count.level == "medium"
    assert loaded.correlation("02").condition.field == ("user.name",)
    # temporal types default to "all referenced rules"; references by id and by name mix
    ordered = loaded.correlation("04")
    assert ordered.rule_refs == ("0a000000-0000-4000-8000-000000000001", "0a000000-0000-4000-8000-000000000002")
    assert ordered.condition.thresholds == (Threshold("gte", 2.0),)
    # Sigma's web field names, mapped by the pipeline like a detection's fields
    total = loaded.correlation("07")
    assert total.group_by == ("source.ip",)
    assert total.condition.field == ("http.response.body.bytes",)
    assert loaded.correlation("09").condition.percentile == 90.0


def test_aliases_are_mapped_per_referenced_rule() -> None:
    rule = detection("aliases.yml").correlation("0c")
    assert rule.group_by == ("user",)  # the references disagree, so the alias names the group
    assert rule.group_fields == (("winlog.event_data.TargetUserName",), ("user.name",))


def test_a_range_condition_is_kept_whole() -> None:
    rule = detection("window_close.yml").correlation("0b")
    assert rule.condition.thresholds == (Threshold("gt", 2.0), Threshold("lte", 4.0))
    assert not rule.condition.upward


def test_broken_correlations_are_reported_with_file_and_line() -> None:
    loaded = Detection([FIXTURES / "base.yml", FIXTURES / "broken.yml"])
    assert [c.id[-2:] for c in loaded.correlations] == ["e2", "e9"]  # the others are reported, not raised
    found = {(Path(p.path).name, p.line, p.kind): p.reason for p in loaded.problems}
    assert "fx_missing" in found["broken.yml", 8, "correlation"]
    assert "Timespan" in found["broken.yml", 28, "correlation"]
    assert "boolean" in found["broken.yml", 38, "unsupported"]
    assert "percentile" in found["broken.yml", 47, "correlation"]
    assert "cycle" in found["broken.yml", 63, "correlation"]
    assert "fx_cycle_b" in found["broken.yml", 54, "correlation"]
    assert "fx_inner_by_ip" in found["broken.yml", 72, "correlation"]
    assert len(loaded.problems) == 7
    missing = next(p for p in loaded.problems if "fx_missing" in p.reason)
    assert str(missing) == f"{FIXTURES / 'broken.yml'}:8: {missing.reason}"


def test_a_missing_base_rule_is_a_missing_reference(tmp_path: Path) -> None:
    """A reference to a base rule the rule loader rejected is reported at the reference."""
    (tmp_path / "c.yml").write_text((FIXTURES / "event_count.yml").read_text())
    loaded = Detection([tmp_path])
    assert loaded.correlations == []
    assert loaded.problems == [
        RuleProblem(
            str(tmp_path / "c.yml"), "referenced rule 'fx_failed' is unknown or was not loaded", "correlation", 7
        )
    ]


def test_rules_pickle() -> None:
    loaded = detection("chain.yml", "web_values.yml", "aliases.yml")
    assert pickle.loads(pickle.dumps(loaded.correlations)) == loaded.correlations


# -- event_count -------------------------------------------------------------------------------


def test_event_count_fires_on_a_burst_across_a_bucket_boundary() -> None:
    loaded = detection("event_count.yml")
    hits = loaded.feed_all([(failed(ATTACKER), BOUNDARY - 2), (failed(ATTACKER), BOUNDARY - 1)])
    assert hits == []
    [hit] = loaded.feed(failed(ATTACKER), BOUNDARY + 1)
    assert hit.rule.id.endswith("01")
    assert hit.group == {"source.ip": ATTACKER}
    assert hit.event_ids == ("e1", "e2", "e3")
    assert (hit.first, hit.last, hit.value) == (BOUNDARY - 2, BOUNDARY + 1, 3.0)


def test_event_count_slides_events_out_of_the_window() -> None:
    loaded = detection("event_count.yml")
    events = [(failed(ATTACKER), BOUNDARY + t) for t in (0, 200, 400, 600)]  # never three in 5 minutes
    assert loaded.feed_all(events) == []
    [hit] = loaded.feed(failed(ATTACKER), BOUNDARY + 650)  # 400, 600, 650
    assert hit.event_ids == ("e3", "e4", "e5")


def test_groups_are_counted_separately() -> None:
    loaded = detection("event_count.yml")
    interleaved = [(failed(ip), BOUNDARY + i) for i, ip in enumerate([ATTACKER, OTHER, ATTACKER, OTHER])]
    assert loaded.feed_all(interleaved) == []
    [hit] = loaded.feed(failed(OTHER), BOUNDARY + 10)
    assert hit.group == {"source.ip": OTHER}
    assert hit.event_ids == ("e2", "e4", "e5")


def test_a_burst_fires_once_per_timespan() -> None:
    loaded = detection("event_count.yml")
    burst = [(failed(ATTACKER), BOUNDARY + t) for t in range(0, 290, 10)]  # 29 failures in 5 minutes
    hits = loaded.feed_all(burst)
    assert len(hits) == 1
    assert hits[0].event_ids == ("e1", "e2", "e3")  # fired at the threshold, then reset
    # still failing after the timespan since the hit: one new hit, with events after the first
    [again] = loaded.feed_all([(failed(ATTACKER), BOUNDARY + t) for t in range(290, 330, 10)])
    assert again.first > hits[0].last and again.last == BOUNDARY + 320


def test_events_without_the_group_by_field_are_skipped() -> None:
    loaded = detection("event_count.yml")
    no_address = failed(ATTACKER)
    del no_address["source"]
    assert loaded.feed_all([(no_address, BOUNDARY + t) for t in range(3)]) == []
    assert loaded.engine.skipped_events == 3


# -- value_count, temporal, temporal_ordered ----------------------------------------------------


def test_value_count_counts_distinct_values() -> None:
    loaded = detection("value_count.yml")
    same_user = [(failed(ATTACKER, "root"), BOUNDARY + t) for t in range(5)]
    assert loaded.feed_all(same_user) == []
    assert loaded.feed(failed(ATTACKER, "admin"), BOUNDARY + 10) == []
    assert loaded.feed(failed(OTHER, "oracle"), BOUNDARY + 11) == []
    [hit] = loaded.feed(failed(ATTACKER, "oracle"), BOUNDARY + 12)
    assert hit.value == 3.0
    assert hit.group == {"source.ip": ATTACKER}
    assert hit.event_ids == ("e5", "e6", "e8")  # the newest event of each user name


def test_temporal_needs_every_rule_in_any_order() -> None:
    loaded = detection("temporal.yml")
    assert loaded.feed(accepted(ATTACKER), BOUNDARY - 5) == []
    assert loaded.feed(invalid_user(OTHER), BOUNDARY) == []  # another address
    [hit] = loaded.feed(invalid_user(ATTACKER), BOUNDARY + 5)  # success came first: still a hit
    assert hit.event_ids == ("e1", "e3")
    assert hit.value == 2.0
    # too far apart
    assert loaded.feed(invalid_user(OTHER), BOUNDARY + 200) == []
    assert loaded.feed(accepted(OTHER), BOUNDARY + 261) == []


def test_temporal_ordered_needs_the_listed_order() -> None:
    loaded = detection("temporal_ordered.yml")
    assert loaded.feed_all([(accepted(ATTACKER), BOUNDARY), (failed(ATTACKER), BOUNDARY + 1)]) == []
    [hit] = loaded.feed(accepted(ATTACKER), BOUNDARY + 2)
    assert hit.event_ids == ("e2", "e3")  # the events in order, not the early success
    assert (hit.first, hit.last) == (BOUNDARY + 1, BOUNDARY + 2)


def test_aliases_group_events_of_different_logsources() -> None:
    loaded = detection("aliases.yml")
    assert loaded.feed(windows_logon_failed("alice"), BOUNDARY) == []
    assert loaded.feed(failed(ATTACKER, "bob"), BOUNDARY + 1) == []
    [hit] = loaded.feed(failed(OTHER, "alice"), BOUNDARY + 2)
    assert hit.group == {"user": "alice"}
    assert hit.event_ids == ("e1", "e3")


def test_chained_correlations_and_silent_rules() -> None:
    loaded = detection("chain.yml")
    inner, outer = loaded.correlation("06"), loaded.correlation("05")
    assert outer.rule_refs == (inner.id, "0a000000-0000-4000-8000-000000000002")
    # generate is false: the base rules and the inner correlation are not alerts of their own
    assert loaded.engine.silent_rule_ids == frozenset(
        {inner.id, "0a000000-0000-4000-8000-000000000001", "0a000000-0000-4000-8000-000000000002"}
    )
    assert loaded.feed(accepted(ATTACKER), BOUNDARY) == []  # a success before the failures
    [inner_hit] = loaded.feed_all([(failed(ATTACKER), BOUNDARY + t) for t in (10, 20, 30)])
    assert inner_hit.rule == inner
    [hit] = loaded.feed(accepted(ATTACKER), BOUNDARY + 100)
    assert hit.rule == outer
    assert hit.group == {"source.ip": ATTACKER}
    assert hit.event_ids == ("e2", "e3", "e4", "e5")  # the failures behind the inner hit, then the success
    assert (hit.first, hit.last) == (BOUNDARY + 30, BOUNDARY + 100)


# -- value_sum, value_avg, value_percentile ----------------------------------------------------


def test_numeric_values() -> None:
    loaded = detection("web_values.yml")

    def fired(hits: list[CorrelationHit]) -> dict[str, float]:
        return {hit.rule.id[-2:]: hit.value for hit in hits}

    assert fired(loaded.feed(web_get(ATTACKER, 3000), BOUNDARY)) == {}
    assert fired(loaded.feed(web_get(ATTACKER, 6000), BOUNDARY + 1)) == {"08": 4500.0}  # average 4500
    assert fired(loaded.feed(web_get(ATTACKER, 2000), BOUNDARY + 2)) == {"07": 11000.0}  # sum 11000
    assert fired(loaded.feed(web_get(OTHER, 9500), BOUNDARY + 3)) == {"08": 9500.0, "09": 9500.0}
    text_size = web_get(ATTACKER, 0)
    text_size["http"]["response"]["body"]["bytes"] = "a lot"
    assert fired(loaded.feed(text_size, BOUNDARY + 4)) == {}
    assert loaded.engine.skipped_events == 3  # one per numeric correlation


# -- conditions decided when the window closes -------------------------------------------------


def test_upper_bounds_are_decided_when_the_window_closes() -> None:
    loaded = detection("window_close.yml", lateness=0.0)
    few, range_ = loaded.correlation("0a"), loaded.correlation("0b")
    assert loaded.feed_all([(failed(ATTACKER), BOUNDARY + t) for t in (0, 10)]) == []
    assert loaded.feed_all([(failed(OTHER), BOUNDARY + t) for t in (5, 15, 25, 35)]) == []
    # an event of any group moves event time past both windows' end
    hits = loaded.feed(accepted("192.0.2.1"), BOUNDARY + 400)
    assert {(h.rule.id, h.group["source.ip"], h.value) for h in hits} == {
        (few.id, ATTACKER, 2.0),
        (range_.id, OTHER, 4.0),
    }
    assert loaded.engine.groups == 0  # closed windows are forgotten


def test_expire_closes_windows_in_a_quiet_stream() -> None:
    loaded = detection("window_close.yml")
    assert loaded.feed(failed(ATTACKER), BOUNDARY) == []
    assert loaded.engine.expire(BOUNDARY + 299) == []
    [hit] = loaded.engine.expire(BOUNDARY + 301)
    assert hit.value == 1.0 and hit.event_ids == ("e1",)


def test_a_later_event_of_the_group_closes_its_window() -> None:
    loaded = detection("window_close.yml", lateness=3600.0)
    loaded.feed_all([(failed(ATTACKER), BOUNDARY + t) for t in (0, 1, 2)])
    hits = loaded.feed(failed(ATTACKER), BOUNDARY + 301)  # opens the next window
    assert [(h.rule.id[-2:], h.value) for h in hits] == [("0b", 3.0)]


# -- time order, bounds, reload ----------------------------------------------------------------


def test_late_events() -> None:
    loaded = detection("event_count.yml")
    loaded.feed(failed(ATTACKER), BOUNDARY + 1000)
    assert loaded.feed(failed(ATTACKER), BOUNDARY + 600) == []  # older than the window: dropped
    assert loaded.engine.late_events == 1
    [hit] = loaded.feed_all([(failed(ATTACKER), BOUNDARY + 990), (failed(ATTACKER), BOUNDARY + 800)])
    assert hit.event_ids == ("e4", "e3", "e1")  # in event-time order
    assert (hit.first, hit.last) == (BOUNDARY + 800, BOUNDARY + 1000)


def test_tracked_groups_are_bounded() -> None:
    loaded = detection("event_count.yml", max_groups=10)
    addresses = [f"10.0.0.{i}" for i in range(50)]
    loaded.feed_all([(failed(ip), BOUNDARY + i) for i, ip in enumerate(addresses)])
    assert loaded.engine.groups == 10
    assert loaded.engine.evicted == 40
    # the most recent groups are kept: two more failures fire for the newest, not the oldest
    assert loaded.feed_all([(failed(addresses[0]), BOUNDARY + 60)] * 2) == []
    assert len(loaded.feed_all([(failed(addresses[-1]), BOUNDARY + 60)] * 2)) == 1


def test_events_per_group_are_bounded() -> None:
    loaded = detection("value_count.yml", max_events_per_group=2)
    # value_count keeps threshold + 1 distinct values, so it stays exact
    hits = loaded.feed_all([(failed(ATTACKER, user), BOUNDARY + i) for i, user in enumerate("abcd")])
    assert [h.value for h in hits] == [3.0]
    loaded = detection("temporal_ordered.yml", max_events_per_group=2)
    loaded.feed_all([(failed(ATTACKER), BOUNDARY + t) for t in range(5)])
    assert loaded.engine.truncated == 3


def test_reload_keeps_state_of_unchanged_correlations(tmp_path: Path) -> None:
    loaded = detection("event_count.yml", "temporal.yml")
    loaded.feed_all([(failed(ATTACKER), BOUNDARY), (failed(ATTACKER), BOUNDARY + 1)])
    loaded.feed(invalid_user(ATTACKER), BOUNDARY + 2)

    # the same files: both keep their windows
    same = detection("event_count.yml", "temporal.yml")
    loaded.engine = loaded.engine.reloaded(same.correlations)
    hits = loaded.feed_all([(failed(ATTACKER), BOUNDARY + 3), (accepted(ATTACKER), BOUNDARY + 4)])
    assert [h.rule.id[-2:] for h in hits] == ["01", "03"]

    # a new title keeps state, a new threshold drops it
    loaded = detection("event_count.yml", "temporal.yml")
    loaded.feed_all([(failed(ATTACKER), BOUNDARY), (failed(ATTACKER), BOUNDARY + 1)])
    loaded.feed(invalid_user(ATTACKER), BOUNDARY + 2)
    edited = (FIXTURES / "event_count.yml").read_text().replace("gte: 3", "gte: 2")
    (tmp_path / "event_count.yml").write_text(edited)
    retitled = (FIXTURES / "temporal.yml").read_text().replace("title: Fixture", "title: Renamed")
    (tmp_path / "temporal.yml").write_text(retitled)
    changed = Detection([FIXTURES / "base.yml", tmp_path])
    loaded.engine = loaded.engine.reloaded(changed.correlations)
    assert loaded.engine.groups == 1  # only the temporal window survived
    [hit] = loaded.feed(accepted(ATTACKER), BOUNDARY + 4)
    assert hit.rule.title.startswith("Renamed")
    assert loaded.feed(failed(ATTACKER), BOUNDARY + 5) == []  # counting starts again at 1 of 2


# -- shipped rules -----------------------------------------------------------------------------


def auth_log(extra: Sequence[str] = ()) -> Iterator[tuple[dict[str, Any], float]]:
    for line in [*SSH_LOG.read_text().splitlines(), *extra]:
        event = normalize(Record(message=line, origin=None, received=0.0))
        yield event, datetime.datetime.fromisoformat(event["@timestamp"]).timestamp()


@pytest.fixture(scope="module")
def shipped() -> list[Path]:
    return [RULES_DIR]  # everything secmon ships, as the service loads it


def test_shipped_rules_load(shipped: list[Path]) -> None:
    loaded = Detection(shipped)
    assert loaded.problems == []
    assert {c.title for c in loaded.correlations if c.id not in loaded.engine.silent_rule_ids} == {
        "SSH Brute Force",
        "SSH Password Spraying or User Enumeration",
        "SSH Brute Force Followed by a Successful Login",
        "TCP Port Scan",
        "TCP Host Sweep",
        "ICMP Ping Sweep",
        "Possible DNS Tunnelling",
    }
    assert {r.title for r in loaded.rules if r.id in loaded.engine.silent_rule_ids} == {
        "SSH Failed Login",
        "SSH Successful Login",
        "TCP Connection Attempt",
        "ICMP Echo Request",
        "DNS Query With a Long Random-Looking Label",
    }


def test_shipped_brute_force_then_login_on_a_real_auth_log(shipped: list[Path]) -> None:
    loaded = Detection(shipped)
    alerts = [h for h in loaded.feed_all(list(auth_log())) if h.rule.id not in loaded.engine.silent_rule_ids]
    brute_forcers = {h.group["source.ip"] for h in alerts if h.rule.title == "SSH Brute Force"}
    assert "183.62.140.253" in brute_forcers  # 286 failures in ten minutes
    assert "119.137.62.142" not in brute_forcers  # the log's one successful login
    assert not [h for h in alerts if h.rule.level == "high"]

    # the same log, with a success from the busiest attacker at the end
    success = "Dec 10 11:04:00 LabSZ sshd[9999]: Accepted password for root from 183.62.140.253 port 2222 ssh2"
    loaded = Detection(shipped)
    alerts = [h for h in loaded.feed_all(list(auth_log([success]))) if h.rule.level == "high"]
    assert [(h.rule.title, h.group) for h in alerts] == [
        ("SSH Brute Force Followed by a Successful Login", {"source.ip": "183.62.140.253"})
    ]

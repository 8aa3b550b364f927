"""Detection inside the pipeline: events in, alerts stored in the real Elasticsearch, grouped, reloaded."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from elasticsearch import AsyncElasticsearch

from secmon.collect.topology import Agency, SourceContext
from secmon.config import DetectionSettings
from secmon.detection.stage import DetectionStage
from secmon.events import Record
from secmon.store import IndexNames
from tests.support.pipeline import running_pipeline, search_all
from tests.support.wait import until

FAILED_ROOT_RULE = """
title: SSH password failure for root
id: 5d0c6f4e-2f4b-4c55-9a57-8d0f0d0b1a01
status: test
level: medium
tags: [attack.credential-access, attack.t1110.001]
logsource:
  product: linux
  service: sshd
detection:
  selection:
    event.outcome: failure
    user.name: root
  condition: selection
"""


def write_rule(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text))


def sshd_failure(host: str, n: int) -> Record:
    line = f"<38>Nov 24 10:00:{n:02d} {host} sshd[42]: Failed password for root from 192.0.2.{n} port 22 ssh2"
    return Record(message=line, origin=None, received=0.0, key=f"{host}-{n}")


def stage_for(rules: Path, names: IndexNames, **options: object) -> DetectionStage:
    settings = DetectionSettings(rules=[rules], reload_interval=0.1, **options)  # type: ignore[arg-type]
    return DetectionStage.load(settings, names.alerts, cache_dir=None, telemetry=None)


async def test_an_event_raises_an_alert_stored_after_it(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    write_rule(tmp_path / "rules", "ssh.yml", FAILED_ROOT_RULE)
    stage = stage_for(tmp_path / "rules", names, group_window="0s")
    # No dataset override: the sshd logsource selects events by the dataset the parser gives.
    context = SourceContext("edge", agency=Agency("health", "Ministry of Health"))
    async with running_pipeline(es, names, tmp_path / "buffer", stages=[stage]) as pipeline:
        await pipeline.submit([sshd_failure("alert-host", 1)], context)
    (event,) = await search_all(es, names.events("system.auth"), {"term": {"host.hostname": "alert-host"}})
    alerts = await search_all(es, names.alerts, {"term": {"host.name": "alert-host"}})
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["rule"]["id"] == "5d0c6f4e-2f4b-4c55-9a57-8d0f0d0b1a01"  # type: ignore[index]
    assert alert["rule"]["level"] == "medium"  # type: ignore[index]
    assert alert["alert"]["status"] == "open"  # type: ignore[index]
    assert alert["threat"]["technique"]["id"] == ["T1110.001"]  # type: ignore[index]
    assert alert["organization"] == {"id": "health", "name": "Ministry of Health"}
    assert alert["user"]["name"] == "root"  # type: ignore[index]
    ids = await es.search(index=names.events("system.auth"), query={"term": {"host.hostname": "alert-host"}})
    assert alert["event"]["ids"] == [ids["hits"]["hits"][0]["_id"]]  # type: ignore[index]
    assert event["host"]["hostname"] == "alert-host"  # type: ignore[index]


async def test_hits_of_one_group_become_one_alert_with_a_count(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    write_rule(tmp_path / "rules", "ssh.yml", FAILED_ROOT_RULE)
    stage = stage_for(tmp_path / "rules", names, group_window="10m")
    context = SourceContext("edge")
    async with running_pipeline(es, names, tmp_path / "buffer", stages=[stage]) as pipeline:
        await pipeline.submit([sshd_failure("group-a", 1), sshd_failure("group-a", 2)], context)  # one batch
        await pipeline.wait_drained(30)
        await pipeline.submit([sshd_failure("group-a", 3)], context)  # a later batch: an update
        await pipeline.submit([sshd_failure("group-b", 4)], context)  # another host: another alert
    alerts = await search_all(es, names.alerts, {"prefix": {"host.name": "group-"}})
    by_host = {a["host"]["name"]: a for a in alerts}  # type: ignore[index]
    assert sorted(by_host) == ["group-a", "group-b"]
    grouped = by_host["group-a"]["alert"]
    assert grouped["count"] == 3  # type: ignore[index]
    assert len(by_host["group-a"]["event"]["ids"]) == 3  # type: ignore[index]
    assert grouped["first_seen"] < grouped["last_seen"]  # type: ignore[index]
    assert by_host["group-b"]["alert"]["count"] == 1  # type: ignore[index]


async def test_a_hit_older_than_its_groups_first_joins_the_group(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    """One host's events through two collectors arrive out of order: still one alert, spanning them all."""
    write_rule(tmp_path / "rules", "ssh.yml", FAILED_ROOT_RULE)
    stage = stage_for(tmp_path / "rules", names, group_window="10m")
    context = SourceContext("edge")
    async with running_pipeline(es, names, tmp_path / "buffer", stages=[stage]) as pipeline:
        for n in (5, 3, 4):  # 10:00:05 first, then two older ones, each in a batch of its own
            await pipeline.submit([sshd_failure("late-a", n)], context)
            await pipeline.wait_drained(30)
    [alert] = await search_all(es, names.alerts, {"term": {"host.name": "late-a"}})
    assert alert["alert"]["count"] == 3  # type: ignore[index]
    assert alert["alert"]["first_seen"].endswith("T10:00:03.000Z")  # type: ignore[index]
    assert alert["alert"]["last_seen"].endswith("T10:00:05.000Z")  # type: ignore[index]


async def test_a_replayed_batch_does_not_duplicate_its_alert(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    write_rule(tmp_path / "rules", "ssh.yml", FAILED_ROOT_RULE)
    context = SourceContext("edge")
    for attempt in range(2):  # a fresh stage each time, as after a restart that replays a file
        stage = stage_for(tmp_path / "rules", names, group_window="0s")
        async with running_pipeline(es, names, tmp_path / f"buffer{attempt}", stages=[stage]) as pipeline:
            await pipeline.submit([sshd_failure("replay-host", 7)], context)
    assert len(await search_all(es, names.alerts, {"term": {"host.name": "replay-host"}})) == 1


async def test_rules_reload_while_running(es: AsyncElasticsearch, names: IndexNames, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    write_rule(rules, "other.yml", FAILED_ROOT_RULE.replace("user.name: root", "user.name: nobody"))
    stage = stage_for(rules, names, group_window="0s")
    watcher = asyncio.create_task(stage.watch())
    context = SourceContext("edge")
    try:
        async with running_pipeline(es, names, tmp_path / "buffer", stages=[stage]) as pipeline:
            await pipeline.submit([sshd_failure("reload-host", 1)], context)
            write_rule(rules, "ssh.yml", FAILED_ROOT_RULE.replace("5d0c6f4e", "6e1d7a5f"))
            await until(lambda: any(r.id.startswith("6e1d7a5f") for r in stage.detector.rules), "the rules to reload")
            await pipeline.submit([sshd_failure("reload-host", 2)], context)
    finally:
        watcher.cancel()
    alerts = await search_all(es, names.alerts, {"term": {"host.name": "reload-host"}})
    assert [a["rule"]["id"][:8] for a in alerts] == ["6e1d7a5f"]  # type: ignore[index]


def test_a_broken_rule_is_reported_and_the_others_load(tmp_path: Path, names: IndexNames) -> None:
    write_rule(tmp_path / "rules", "ssh.yml", FAILED_ROOT_RULE)
    write_rule(tmp_path / "rules", "broken.yml", "title: broken\nlogsource: {product: linux}\ndetection:\n  x: [\n")
    stage = stage_for(tmp_path / "rules", names)
    assert [r.title for r in stage.detector.rules] == ["SSH password failure for root"]
    (problem,) = stage.detector.ruleset.problems
    assert problem.path.endswith("broken.yml") and problem.kind == "yaml" and problem.line is not None


async def test_shipped_brute_force_correlation_is_stored_as_one_alert(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    from secmon.config import SHIPPED_RULES_DIR

    stage = stage_for(SHIPPED_RULES_DIR, names)
    context = SourceContext("edge", agency=Agency("justice"))
    lines = [
        f"<38>Nov 24 11:00:{n:02d} brute-host sshd[42]: Failed password for user{n} from 198.51.100.7 port 22 ssh2"
        for n in range(12)
    ]
    records = [Record(message=line, origin=None, received=0.0, key=f"brute-{n}") for n, line in enumerate(lines)]
    async with running_pipeline(es, names, tmp_path / "buffer", stages=[stage]) as pipeline:
        await pipeline.submit(records, context)
    alerts = await search_all(es, names.alerts, {"term": {"source.ip": "198.51.100.7"}})
    titles = sorted(a["rule"]["title"] for a in alerts)  # type: ignore[index]
    assert titles.count("SSH Brute Force") == 1
    brute = next(a for a in alerts if a["rule"]["title"] == "SSH Brute Force")  # type: ignore[index]
    assert brute["rule"]["type"] == "correlation.event_count"  # type: ignore[index]
    assert brute["organization"] == {"id": "justice"}
    assert len(brute["event"]["ids"]) >= 10  # type: ignore[index]
    # The failed logins themselves are only evidence (generate: false): no alert of their own.
    assert not [a for a in alerts if a["rule"]["type"] == "sigma"]  # type: ignore[index]

"""The scale-out mode end to end: ``secmon up --role collect`` and ``--role detect`` processes over a
real Kafka broker and a real Elasticsearch, workers killed with SIGKILL while they work."""

from __future__ import annotations

import asyncio
import re
import secrets
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_scan

from secmon.auth import KeyStore, Role
from secmon.config import ElasticsearchSettings
from secmon.store import IndexNames
from tests.bus.processes import ScaleOut, scale_out
from tests.support.rules import sshd_failure_rule
from tests.support.wait import until

SSH_BRUTE_FORCE = "77e140b4-5287-470a-b505-80ac7fd8e83c"  # rules/correlations/mr_ssh_brute_force.yml
ATTACKER = "198.51.100.23"


def failed_login(host: str, second: int, attacker: str = ATTACKER) -> str:
    return (
        f"<38>Dec 10 06:55:{second:02d} {host} sshd[24200]: Failed password for root "
        f"from {attacker} port {40000 + second} ssh2"
    )


def prefix() -> str:
    return f"secmon-test-{secrets.token_hex(4)}"


async def alerts_of(es: AsyncElasticsearch, names: IndexNames, rule_id: str) -> list[dict[str, Any]]:
    await es.indices.refresh(index=names.alerts, ignore_unavailable=True)
    response = await es.search(
        index=names.alerts, query={"term": {"rule.id": rule_id}}, size=1000, ignore_unavailable=True
    )
    return [hit["_source"] for hit in response["hits"]["hits"]]


def brute_force_hits(cluster: ScaleOut) -> Counter[int]:
    """How many events' hits of the brute force each partition of the correlation topic holds.

    Read back from the topic itself, not computed the way secmon routes them. An event handled
    again (its batch was not committed before a rebalance) is routed again: counted once here."""
    hits = {
        (partition, hit["id"])
        for partition, value in cluster.messages(cluster.topics.correlation)
        if (hit := orjson.loads(value))["family"] == SSH_BRUTE_FORCE
    }
    return Counter(partition for partition, _ in hits)


async def test_a_brute_force_through_two_collectors_alerts_once_though_its_counting_worker_is_killed(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, kafka: str, tmp_path: Path
) -> None:
    names = IndexNames(prefix())
    async with scale_out(tmp_path, kafka, es_settings, names.prefix) as cluster:
        first = await cluster.start("collect-a", ["collect"])
        second = await cluster.start("collect-b", ["collect"])
        workers = {(await cluster.start(name, ["detect"])).pid: name for name in ("detect-a", "detect-b")}
        await until(
            lambda: len(set(cluster.owners(cluster.topics.correlate_group).values())) == 2,
            "both workers to own correlation partitions",
        )
        # Six failures from one attacker against two hosts, through two collectors.
        for n in range(6):
            (first if n % 2 else second).send_lines([failed_login("web-1" if n % 2 else "db-1", n)])
        hits = await until(
            lambda: brute_force_hits(cluster), "six hits routed", done=lambda found: sum(found.values()) == 6
        )
        assert len(hits) == 1, f"one attacker's brute force is counted on one partition, not {hits}"
        [partition] = hits
        group = cluster.topics.correlate_group
        await until(
            lambda: cluster.committed(group, cluster.topics.correlation)[partition],
            "the owner to count all six",
            done=lambda offset: offset >= cluster.end_offsets(cluster.topics.correlation)[partition],
        )
        owner = cluster.owners(group)[partition]
        killed = next(worker for worker in cluster.workers if worker.pid == owner)
        killed.kill()
        assert await alerts_of(es, names, SSH_BRUTE_FORCE) == []

        for n in range(6, 10):
            (first if n % 2 else second).send_lines([failed_login("web-1" if n % 2 else "db-1", n)])
        alerts = await until(
            lambda: alerts_of(es, names, SSH_BRUTE_FORCE),
            lambda: (
                f"the brute force alert after {workers[owner]} was killed; the survivor's output:\n"
                + next(w for w in cluster.workers if w.pid != owner and w.name.startswith("detect")).output()
            ),
            timeout=90,
        )
        assert len(alerts) == 1
        assert alerts[0]["alert"]["count"] == 10
        assert alerts[0]["source"]["ip"] == ATTACKER
        await es.indices.refresh(index=names.events_pattern)
        stored = await es.count(index=names.events_pattern, query={"term": {"source.ip": ATTACKER}})
        assert stored["count"] == 10  # every failure stored once, whichever worker stored it


async def stored_originals(es: AsyncElasticsearch, names: IndexNames) -> list[str]:
    await es.indices.refresh(index=names.events_pattern)
    return [
        hit["_source"]["event"]["original"]
        async for hit in async_scan(
            es, index=names.events_pattern, query={"query": {"match_all": {}}}, _source=["event.original"], size=5000
        )
    ]


async def test_a_worker_killed_halfway_through_100000_lines_loses_none_and_stores_none_twice(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, kafka: str, tmp_path: Path
) -> None:
    total, attackers = 100_000, 20
    lines = [
        f"<13>Dec 10 07:{n // 6000 % 60:02d}:{n // 100 % 60:02d} host-{n % 50} app[{n}]: line {n} of the stream"
        for n in range(total)
    ]
    # Ten failures from each of 20 attackers, spread through the stream: 20 brute force alerts.
    for attacker in range(attackers):
        for n in range(10):
            at = (attacker * 10 + n) * (total // (attackers * 10))
            lines[at] = failed_login(f"host-{at % 50}", n, attacker=f"198.51.100.{100 + attacker}")
    names = IndexNames(prefix())
    async with scale_out(tmp_path, kafka, es_settings, names.prefix) as cluster:
        collector = await cluster.start("collect", ["collect"])
        workers = [await cluster.start(f"detect-{n}", ["detect"]) for n in range(3)]
        await until(
            lambda: len(set(cluster.owners(cluster.topics.detect_group).values())) == 3,
            "three workers to share the events",
        )
        sender = asyncio.create_task(asyncio.to_thread(collector.send_lines, lines))

        async def stored() -> int:
            await es.indices.refresh(index=names.events_pattern, ignore_unavailable=True)
            return int((await es.count(index=names.events_pattern, ignore_unavailable=True))["count"])

        await until(stored, "half the lines stored", done=lambda count: count >= total // 2, timeout=300)
        workers[1].kill()
        await sender
        await until(
            stored,
            lambda: f"every line stored; a survivor's output:\n{workers[0].output()[-3000:]}",
            done=lambda count: count >= total,
            timeout=300,
        )
        originals = await stored_originals(es, names)
        assert len(originals) == total  # none stored twice
        assert set(originals) == set(lines)  # none lost, none changed
        alerts = await until(
            lambda: alerts_of(es, names, SSH_BRUTE_FORCE),
            "the brute force alerts",
            done=lambda found: len(found) >= attackers,
        )
        assert sorted(alert["source"]["ip"] for alert in alerts) == sorted(
            f"198.51.100.{100 + attacker}" for attacker in range(attackers)
        )  # one alert per attacker, none twice


async def test_a_rule_uploaded_through_the_api_role_fires_on_every_detect_worker(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, kafka: str, tmp_path: Path
) -> None:
    names = IndexNames(prefix())
    keys = KeyStore(es, names)
    await keys.ensure_index()
    _, secret = await keys.create(Role.RULE_AUTHOR, name="scale.author")
    rule_id, user = f"5a4e0000-0000-4000-8000-{secrets.token_hex(6)}", f"user{secrets.token_hex(3)}"
    hosts = [f"host-{n}" for n in range(12)]  # over 3 partitions: both workers get some
    async with scale_out(tmp_path, kafka, es_settings, names.prefix) as cluster:
        api = await cluster.start("api", ["api"])
        collector = await cluster.start("collect", ["collect"])
        workers = [await cluster.start(f"detect-{n}", ["detect"], panel=n == 0) for n in range(2)]
        await until(
            lambda: len(set(cluster.owners(cluster.topics.detect_group).values())) == 2,
            "both workers to share the events",
        )
        async with httpx.AsyncClient(base_url=api.api_url, headers={"Authorization": f"Bearer {secret}"}) as client:
            created = await client.post(
                "/rules", content=sshd_failure_rule(rule_id, user), headers={"Content-Type": "application/yaml"}
            )
            assert created.status_code == 201, created.text
        for worker in workers:
            await until(
                lambda worker=worker: "Rules reloaded." in worker.output(), f"{worker.name} to load the uploaded rule"
            )
        collector.send_lines(
            f"<38>Dec 10 06:55:10 {host} sshd[24200]: Failed password for {user} from 203.0.113.9 port 38926 ssh2"
            for host in hosts
        )
        alerts = await until(
            lambda: alerts_of(es, names, rule_id), "an alert per host", done=lambda found: len(found) == len(hosts)
        )
        assert sorted(alert["host"]["name"] for alert in alerts) == sorted(hosts)
        owners = cluster.owners(cluster.topics.detect_group)
        handled_by = {owners[partition] for partition in cluster.partitions_of_hosts().values()}
        assert handled_by == {worker.pid for worker in workers}  # the alerts came from both workers
        # The first worker's live panel shows the groups' lag and who owns which partition.
        lag_line = re.compile(rf"{re.escape(cluster.topics.detect_group)}\s+lag 0 .*secmon-detect-")
        await until(
            lambda: lag_line.search(workers[0].output()),
            lambda: f"the panel's lag line; the output:\n{workers[0].output()[-2000:]}",
        )


async def test_a_worker_stopped_with_sigterm_commits_exactly_what_it_stored(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, kafka: str, tmp_path: Path
) -> None:
    names = IndexNames(prefix())
    lines = [f"<13>Dec 10 07:00:00 host-{n % 9} app[1]: graceful {n}" for n in range(30_000)]
    async with scale_out(tmp_path, kafka, es_settings, names.prefix) as cluster:
        collector = await cluster.start("collect", ["collect"])
        worker = await cluster.start("detect", ["detect"])
        await asyncio.to_thread(collector.send_lines, lines)

        async def stored() -> int:
            await es.indices.refresh(index=names.events_pattern, ignore_unavailable=True)
            return int((await es.count(index=names.events_pattern, ignore_unavailable=True))["count"])

        await until(stored, "the worker to be busy storing", done=lambda count: count > 0)
        assert worker.process is not None
        worker.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.process.wait(), 60) == 0
        offsets = cluster.committed(cluster.topics.detect_group, cluster.topics.events).values()
        committed = sum(max(offset, 0) for offset in offsets)  # a partition without a commit has a negative one
        # What it took it stored and committed before leaving: its successor handles nothing again.
        assert 0 < committed == await stored()


async def test_one_hosts_hits_through_two_collectors_are_one_alert_group(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, kafka: str, tmp_path: Path
) -> None:
    names = IndexNames(prefix())
    rule_id, user = f"5a4e0000-0000-4000-8000-{secrets.token_hex(6)}", f"user{secrets.token_hex(3)}"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "login.yml").write_text(sshd_failure_rule(rule_id, user))
    detection = {"rules": [str(rules)], "group_window": "10m"}
    async with scale_out(tmp_path, kafka, es_settings, names.prefix, detection=detection) as cluster:
        collectors = [await cluster.start(f"collect-{n}", ["collect"]) for n in range(2)]
        for n in range(2):
            await cluster.start(f"detect-{n}", ["detect"])
        await until(
            lambda: len(set(cluster.owners(cluster.topics.detect_group).values())) == 2,
            "both workers to share the events",
        )
        for n in range(6):  # one host's failures, alternately through each collector
            collectors[n % 2].send_lines(
                [f"<38>Dec 10 06:55:{n:02d} web-1 sshd[1]: Failed password for {user} from 203.0.113.9 port 1 ssh2"]
            )
        [alert] = await until(
            lambda: alerts_of(es, names, rule_id),
            "the group's alert to count all six",
            done=lambda found: len(found) == 1 and found[0]["alert"]["count"] == 6,
        )
        assert alert["host"]["name"] == "web-1"
        assert len(alert["event"]["ids"]) == 6

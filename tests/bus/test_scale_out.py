"""The scale-out mode end to end: ``secmon up --role collect`` and ``--role detect`` processes over a
real Kafka broker and a real Elasticsearch, workers killed with SIGKILL while they work."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_scan

from secmon.config import ElasticsearchSettings
from secmon.store import IndexNames
from tests.bus.processes import ScaleOut, scale_out
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

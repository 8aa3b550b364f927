"""The scale-out mode through outages: Kafka stopped for a minute under a steady stream, then
Elasticsearch stopped for a minute. Nothing is lost and nothing stored twice; while Elasticsearch
is away the detect worker commits nothing, so its lag grows, and drains to zero once it is back.

Elasticsearch is a node of this module's own (port 9261), so the session's node is undisturbed."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_scan

from secmon.bus import LocalKafka
from secmon.bus.lag import group_lag, total_lag
from secmon.config import ElasticsearchSettings, LocalNodeSettings
from secmon.node import LocalNode
from secmon.store import IndexNames, connect
from tests.bus.processes import Worker, scale_out
from tests.support.wait import until

PORT = 9261
pytestmark = pytest.mark.outage


@pytest.fixture(scope="module")
def node() -> Iterator[LocalNode]:
    local = LocalNode(LocalNodeSettings(port=PORT))  # type: ignore[call-arg]
    local.start(fresh=True)
    yield local
    local.stop()


@pytest.fixture
async def client(node: LocalNode) -> AsyncIterator[AsyncElasticsearch]:
    node.start()  # again, if a test stopped it
    es = connect(ElasticsearchSettings(url=node.url))  # type: ignore[call-arg]
    yield es
    await es.close()


class Stream:
    """Syslog lines at a steady rate into a collector, numbered, so what is stored can be checked."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.sent: list[str] = []

    async def run(self, collector: Worker, seconds: float, per_second: int = 100) -> None:
        assert collector.syslog_port is not None
        _, writer = await asyncio.open_connection("127.0.0.1", collector.syslog_port)
        try:
            for _ in range(int(seconds * 10)):
                for _ in range(per_second // 10):
                    line = f"<13>Dec 10 07:00:00 host-{len(self.sent) % 7} app[1]: {self.tag} {len(self.sent)}"
                    writer.write(f"{line}\n".encode())
                    self.sent.append(line)
                await writer.drain()
                await asyncio.sleep(0.1)
        finally:
            writer.close()


async def stored_originals(es: AsyncElasticsearch, names: IndexNames) -> list[str]:
    await es.indices.refresh(index=names.events_pattern, ignore_unavailable=True)
    return [
        hit["_source"]["event"]["original"]
        async for hit in async_scan(
            es, index=names.events_pattern, query={"query": {"match_all": {}}}, _source=["event.original"]
        )
    ]


async def stored_count(es: AsyncElasticsearch, names: IndexNames) -> int:
    await es.indices.refresh(index=names.events_pattern, ignore_unavailable=True)
    return int((await es.count(index=names.events_pattern, ignore_unavailable=True))["count"])


async def test_kafka_stopped_for_a_minute_under_a_steady_stream_loses_and_duplicates_nothing(
    client: AsyncElasticsearch, node: LocalNode, local_kafka: LocalKafka, kafka: str, tmp_path: Path
) -> None:
    names = IndexNames(f"secmon-test-{secrets.token_hex(4)}")
    es_settings = ElasticsearchSettings(url=node.url)  # type: ignore[call-arg]
    async with scale_out(tmp_path, kafka, es_settings, names.prefix) as cluster:
        collector = await cluster.start("collect", ["collect"])
        worker = await cluster.start("detect", ["detect"])
        stream = Stream("through-kafka-outage")
        sending = asyncio.create_task(stream.run(collector, 66))
        await asyncio.sleep(3)
        await asyncio.to_thread(local_kafka.stop)
        await asyncio.sleep(60)  # a minute without Kafka: the stream goes on, into the collector's buffer
        await asyncio.to_thread(local_kafka.start)
        await sending
        await until(
            lambda: stored_count(client, names),
            lambda: f"every line stored; the worker's output:\n{worker.output()[-3000:]}",
            done=lambda count: count >= len(stream.sent),
            timeout=180,
        )
        originals = await stored_originals(client, names)
        assert len(originals) == len(stream.sent)  # none twice
        assert set(originals) == set(stream.sent)  # none lost


async def test_elasticsearch_stopped_for_a_minute_stops_commits_then_the_lag_drains_to_zero(
    client: AsyncElasticsearch, node: LocalNode, kafka: str, tmp_path: Path
) -> None:
    names = IndexNames(f"secmon-test-{secrets.token_hex(4)}")
    es_settings = ElasticsearchSettings(url=node.url)  # type: ignore[call-arg]
    async with scale_out(tmp_path, kafka, es_settings, names.prefix) as cluster:
        collector = await cluster.start("collect", ["collect"])
        worker = await cluster.start("detect", ["detect"])
        group = cluster.topics.detect_group

        def lag() -> int:
            return total_lag(group_lag(kafka, cluster.topics)).get(group, 0)

        stream = Stream("through-es-outage")
        sending = asyncio.create_task(stream.run(collector, 66))
        await asyncio.sleep(3)
        await asyncio.to_thread(node.stop)
        grown = await until(
            lambda: asyncio.to_thread(lag), "the worker's lag to grow while Elasticsearch is away",
            done=lambda value: value >= 1000,
        )  # fmt: skip
        committed = cluster.committed(group, cluster.topics.events)
        await asyncio.sleep(60 - 10)  # the rest of the minute
        assert cluster.committed(group, cluster.topics.events) == committed  # nothing stored, nothing committed
        assert await asyncio.to_thread(lag) > grown
        await asyncio.to_thread(node.start)
        await sending
        await until(
            lambda: asyncio.to_thread(lag),
            lambda: f"the lag to drain to zero; the worker's output:\n{worker.output()[-3000:]}",
            done=lambda value: value == 0,
            timeout=180,
        )
        originals = await stored_originals(client, names)
        assert len(originals) == len(stream.sent)  # none twice
        assert set(originals) == set(stream.sent)  # none lost

"""The bulk writer against a real Elasticsearch node."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_scan

from secmon.collect.sinks.elasticsearch import BulkWriter
from secmon.config import ElasticsearchSettings, WriterSettings
from secmon.store import Document, IndexNames, Outcome, connect, document_id
from tests.support.events import event_docs
from tests.support.proxy import AnswerLosingProxy

FAST_RETRIES = WriterSettings(retry_initial=0.05, retry_max=0.5)  # type: ignore[call-arg]


async def stored_ids(es: AsyncElasticsearch, index: str) -> list[str]:
    await es.indices.refresh(index=index)
    return [hit["_id"] async for hit in async_scan(es, index=index, query={"query": {"match_all": {}}}, _source=False)]


async def test_ten_thousand_events_are_written_and_all_read_back(es: AsyncElasticsearch, names: IndexNames) -> None:
    docs = event_docs(names, 10_000, "writer.volume")
    async with BulkWriter(es, WriterSettings(batch_size=700), names) as writer:  # type: ignore[call-arg]
        outcomes = await asyncio.gather(*(writer.write(docs[i : i + 250]) for i in range(0, len(docs), 250)))

    assert [o for batch in outcomes for o in batch] == [Outcome.STORED] * len(docs)
    ids = await stored_ids(es, names.events("writer.volume"))
    assert len(ids) == len(docs)
    assert set(ids) == {doc.id for doc in docs}
    assert writer.stats.stored == len(docs)
    assert writer.stats.requests >= len(docs) // 700


async def test_writing_the_same_documents_again_stores_nothing_twice(es: AsyncElasticsearch, names: IndexNames) -> None:
    docs = event_docs(names, 300, "writer.replay")
    async with BulkWriter(es, FAST_RETRIES, names) as writer:
        first = await writer.write(docs)
        replay = await writer.write(docs)

    assert first == [Outcome.STORED] * 300
    assert replay == [Outcome.DUPLICATE] * 300
    assert all(outcome.acknowledged for outcome in replay)
    assert len(await stored_ids(es, names.events("writer.replay"))) == 300


async def test_a_batch_retried_after_its_answer_was_lost_leaves_no_duplicate(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, names: IndexNames
) -> None:
    host, port = es.transport.node_pool.get().config.host, es.transport.node_pool.get().config.port
    docs = event_docs(names, 2_000, "writer.lost_answer")
    async with AnswerLosingProxy(host, port) as proxy:
        # Two in a row: the HTTP client re-sends an idempotent PUT once by itself, so the
        # second loss is the writer's to retry.
        proxy.lose = 2
        client = connect(ElasticsearchSettings(url=proxy.url, index_prefix=es_settings.index_prefix), max_retries=0)  # type: ignore[call-arg]
        try:
            async with BulkWriter(client, WriterSettings(batch_size=2_000, retry_initial=0.05), names) as writer:  # type: ignore[call-arg]
                outcomes = await writer.write(docs)
        finally:
            await client.close()

    assert proxy.lost == 2, "the proxy should have swallowed two bulk answers"
    assert writer.stats.retries >= 1
    # The first attempt was stored: the retry found every id already there.
    assert outcomes == [Outcome.DUPLICATE] * len(docs)
    ids = await stored_ids(es, names.events("writer.lost_answer"))
    assert len(ids) == len(docs) == len(set(ids))


async def test_a_document_with_a_conflicting_field_type_is_dead_lettered_with_the_reason(
    es: AsyncElasticsearch, names: IndexNames
) -> None:
    docs = event_docs(names, 5, "writer.conflict")
    bad_source: dict[str, Any] = {**docs[2].source, "source": {"ip": "not-an-ip-address"}}
    docs[2] = Document(docs[2].index, docs[2].id, bad_source, component="test.conflict")

    async with BulkWriter(es, FAST_RETRIES, names) as writer:
        outcomes = await writer.write(docs)

    assert outcomes == [Outcome.STORED, Outcome.STORED, Outcome.DEAD_LETTERED, Outcome.STORED, Outcome.STORED]
    assert sorted(await stored_ids(es, names.events("writer.conflict"))) == sorted(
        d.id for i, d in enumerate(docs) if i != 2
    )
    await es.indices.refresh(index=names.deadletter)
    found = await es.search(index=names.deadletter, query={"ids": {"values": [docs[2].id]}})
    [hit] = found["hits"]["hits"]
    letter = hit["_source"]
    assert letter["deadletter"]["target"] == names.events("writer.conflict")
    assert letter["deadletter"]["component"] == "test.conflict"
    assert letter["deadletter"]["error_type"] == "document_parsing_exception"
    assert "source.ip" in letter["deadletter"]["reason"]
    assert letter["deadletter"]["original"] == bad_source
    assert letter["event"]["dataset"] == "writer.conflict"
    assert letter["organization"] == bad_source["organization"]


async def test_an_event_without_timestamp_is_dead_lettered_not_dropped(
    es: AsyncElasticsearch, names: IndexNames
) -> None:
    doc = Document(names.events("writer.no_timestamp"), document_id("no-ts", secrets.token_hex(4)), {"message": "x"})
    async with BulkWriter(es, FAST_RETRIES, names) as writer:
        assert await writer.write([doc]) == [Outcome.DEAD_LETTERED]
    await es.indices.refresh(index=names.deadletter)
    found = await es.search(index=names.deadletter, query={"ids": {"values": [doc.id]}})
    assert found["hits"]["hits"][0]["_source"]["deadletter"]["original"] == {"message": "x"}


async def test_writers_wait_for_room_when_the_queue_is_full_and_all_complete(
    es: AsyncElasticsearch, names: IndexNames
) -> None:
    docs = event_docs(names, 3_000, "writer.backpressure")
    tight = WriterSettings(batch_size=200, queue_bytes=200_000, max_in_flight=1)  # type: ignore[call-arg]
    async with BulkWriter(es, tight, names) as writer:
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, writer._unacked_bytes)
                await asyncio.sleep(0)

        watcher = asyncio.create_task(watch())
        outcomes = await asyncio.gather(*(writer.write(docs[i : i + 100]) for i in range(0, len(docs), 100)))
        watcher.cancel()

    assert all(o is Outcome.STORED for batch in outcomes for o in batch)
    # One 100-event call is ~80 kB, so at most the limit plus one call's worth is ever held.
    assert 0 < peak <= 200_000 + 100_000
    assert len(await stored_ids(es, names.events("writer.backpressure"))) == 3_000

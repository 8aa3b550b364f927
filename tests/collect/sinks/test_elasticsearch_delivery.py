"""The bulk writer's delivery against the real node, behind a reverse proxy that can refuse or delay.

Elasticsearch itself refuses a request over ``http.max_content_length`` (100 MB) with 413, and a
proxy in front of it (nginx's ``client_max_body_size``) does so far sooner; a rate-limiting proxy
answers 429 with ``Retry-After``. Both are the real server's answers to what gets through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from elasticsearch import AsyncElasticsearch

from secmon.collect.sinks.elasticsearch import BulkWriter
from secmon.config import ElasticsearchSettings, WriterSettings
from secmon.store import Document, IndexNames, Outcome, connect
from tests.collect.sinks.receiver import Receiver, Request, Response
from tests.support.events import event_docs

QUICK = WriterSettings(retry_initial=0.05, retry_max=0.5, flush_interval=0.05)  # type: ignore[call-arg]
ES_PRODUCT = {"content-type": "application/json", "x-elastic-product": "Elasticsearch"}


class Proxy:
    """Forwards requests to Elasticsearch, except ``_bulk`` bodies over ``limit`` bytes (413) and scripted answers."""

    def __init__(self, upstream: str, limit: int = 1 << 30) -> None:
        self.upstream = upstream
        self.limit = limit
        self.scripted: list[Response] = []  # answered to the next _bulk requests, before forwarding any
        self._client = httpx.AsyncClient(timeout=30)

    async def __call__(self, request: Request) -> Response:
        if "/_bulk" in request.target:
            if self.scripted:
                return self.scripted.pop(0)
            if len(request.body) > self.limit:
                error = {"type": "request_too_large", "reason": f"over {self.limit} bytes"}
                return Response(413, orjson.dumps({"error": error, "status": 413}), ES_PRODUCT)
        headers = {k: v for k, v in request.headers.items() if k in ("content-type", "accept")}
        answer = await self._client.request(
            request.method, self.upstream + request.target, content=request.body, headers=headers
        )
        kept = {k: v for k, v in answer.headers.items() if k in ("content-type", "x-elastic-product")}
        return Response(answer.status_code, answer.content, kept)

    async def aclose(self) -> None:
        await self._client.aclose()


@pytest.fixture
async def proxied(
    receiver: tuple[Receiver, str], es: AsyncElasticsearch, es_settings: ElasticsearchSettings
) -> AsyncIterator[tuple[Proxy, Receiver, AsyncElasticsearch]]:
    """A proxy in front of the test node, and a client that goes through it."""
    app, url = receiver
    node = es.transport.node_pool.get().config
    proxy = Proxy(f"http://{node.host}:{node.port}")
    app.handler = proxy
    client = connect(ElasticsearchSettings(url=url, index_prefix=es_settings.index_prefix), max_retries=0)  # type: ignore[call-arg]
    try:
        yield proxy, app, client
    finally:
        await client.close()
        await proxy.aclose()


async def count_ids(es: AsyncElasticsearch, index: str, ids: list[str]) -> int:
    await es.indices.refresh(index=index)
    found = await es.search(index=index, query={"ids": {"values": ids}}, size=0, track_total_hits=True)
    return int(found["hits"]["total"]["value"])


def bulk_requests(app: Receiver) -> list[tuple[Request, int]]:
    return [(request, status) for request, status in app.requests if "/_bulk" in request.target]


async def test_a_batch_too_large_for_the_receiver_is_halved_until_every_part_fits(
    proxied: tuple[Proxy, Receiver, AsyncElasticsearch], es: AsyncElasticsearch, names: IndexNames
) -> None:
    proxy, app, client = proxied
    docs = event_docs(names, 40, "delivery.halved")
    proxy.limit = sum(len(orjson.dumps(doc.source)) for doc in docs) // 3  # a half is refused, a quarter fits

    async with BulkWriter(client, QUICK, names) as writer:
        outcomes = await writer.write(docs)

    assert outcomes == [Outcome.STORED] * len(docs)
    assert await count_ids(es, names.events("delivery.halved"), [doc.id for doc in docs]) == len(docs)
    sent = bulk_requests(app)
    refused = [request for request, status in sent if status == 413]
    accepted = sorted((request for request, status in sent if status == 200), key=lambda r: r.ids[0])
    assert [len(request.ids) for request in refused] == [40, 20, 20]
    assert sorted(len(request.ids) for request in accepted) == [10, 10, 10, 10]
    assert sorted(id for request in accepted for id in request.ids) == sorted(doc.id for doc in docs)
    assert writer.stats.requests == len(sent) == 7
    assert writer.stats.retries == 0  # halving is not retrying


async def test_a_document_too_large_even_alone_fails_and_the_rest_are_stored(
    proxied: tuple[Proxy, Receiver, AsyncElasticsearch], es: AsyncElasticsearch, names: IndexNames
) -> None:
    proxy, app, client = proxied
    docs = event_docs(names, 4, "delivery.too_large")
    proxy.limit = 20_000
    huge: dict[str, Any] = {**docs[1].source, "message": "x" * 30_000}
    docs[1] = Document(docs[1].index, docs[1].id, huge, component="test.huge")

    async with BulkWriter(client, QUICK, names) as writer:
        outcomes = await writer.write(docs)

    # Refused alone, it is dead-lettered; its dead letter holds the original, so is refused too.
    assert outcomes == [Outcome.STORED, Outcome.FAILED, Outcome.STORED, Outcome.STORED]
    assert writer.stats.failed == 1
    assert writer.stats.by_component["test.huge"][Outcome.FAILED] == 1
    refused_alone = [request for request, status in bulk_requests(app) if status == 413 and len(request.ids) == 1]
    assert [orjson.loads(request.content.splitlines()[0]) for request in refused_alone] == [
        {"create": {"_index": docs[1].index, "_id": docs[1].id}},
        {"create": {"_index": names.deadletter, "_id": docs[1].id}},
    ]
    assert await count_ids(es, docs[0].index, [doc.id for doc in docs]) == 3


async def test_a_429_is_retried_after_the_wait_its_retry_after_asks_for(
    proxied: tuple[Proxy, Receiver, AsyncElasticsearch], es: AsyncElasticsearch, names: IndexNames
) -> None:
    proxy, app, client = proxied
    busy = orjson.dumps({"error": {"type": "es_rejected_execution_exception", "reason": "queue full"}, "status": 429})
    proxy.scripted = [Response(429, busy, {**ES_PRODUCT, "Retry-After": "12"})]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    docs = event_docs(names, 5, "delivery.retry_after")
    async with BulkWriter(client, QUICK, names, sleep=sleep) as writer:
        outcomes = await writer.write(docs)

    assert waits == [12.0]
    assert outcomes == [Outcome.STORED] * 5
    assert [status for _, status in bulk_requests(app)] == [429, 200]
    assert writer.stats.retries == 1
    assert await count_ids(es, docs[0].index, [doc.id for doc in docs]) == 5

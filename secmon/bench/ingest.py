"""``secmon bench ingest``: the bulk writer beside ``elasticsearch.helpers.parallel_bulk``.

Both write the same synthetic events, each into a fresh index with the events mapping, with the
same batch size and the same (orjson) serializer, so the difference is how they batch and send.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Any

import orjson
from elasticsearch import Elasticsearch, helpers
from elasticsearch.serializer import OrjsonSerializer

from secmon.bench.events import synthetic_events
from secmon.collect.sinks.elasticsearch import BulkWriter
from secmon.config import Settings
from secmon.store import Document, IndexNames, connect, document_id, wait_for_primaries
from secmon.store.client import cluster_url
from secmon.store.templates import index_settings, load_mapping


@dataclass(frozen=True, slots=True, order=True)
class IngestResult:
    """One contender's run."""

    seconds: float  # first, so results order by time
    name: str
    events: int
    bytes: int
    stored: int

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds

    @property
    def megabytes_per_second(self) -> float:
        return self.bytes / self.seconds / 1e6


async def bench_ingest(settings: Settings, count: int, rounds: int = 3) -> list[IngestResult]:
    """Write ``count`` synthetic events with secmon's writer and with parallel_bulk, alternately.

    One unmeasured round of each warms the JVM first; then ``rounds`` measured rounds, each
    into fresh indices, and each contender's median round is returned (secmon's first).
    """
    events = list(synthetic_events(count))
    run = f"{settings.elasticsearch.index_prefix}-bench-{int(time.time())}"
    client = connect(settings.elasticsearch, max_retries=0)
    measured: dict[str, list[IngestResult]] = {"secmon": [], "parallel_bulk": []}
    try:
        for round_number in range(rounds + 1):
            for contender, results in measured.items():
                index = f"{run}-{round_number}-{contender}"
                await client.indices.create(
                    index=index,
                    settings=index_settings(settings.elasticsearch),
                    mappings=load_mapping("events"),
                    wait_for_active_shards=0,
                )
                # Before the clock starts: a first bulk request would otherwise wait for the shard.
                await wait_for_primaries(client, index)
                if contender == "secmon":
                    result = await _run_writer(client, settings, index, events)
                else:
                    result = await asyncio.to_thread(_run_parallel_bulk, settings, index, events)
                await client.indices.delete(index=index)
                if round_number > 0:
                    results.append(result)
    finally:
        await client.close()
    return [statistics.median_low(results) for results in measured.values()]


async def _run_writer(client: Any, settings: Settings, index: str, events: list[dict[str, Any]]) -> IngestResult:
    docs = [Document(index, document_id(index, n), event) for n, event in enumerate(events)]
    names = IndexNames(settings.elasticsearch.index_prefix)
    started = time.perf_counter()
    async with BulkWriter(client, settings.writer, names) as writer:
        # Callers hand the writer modest batches, as sources do, and keep several in flight.
        chunk = settings.writer.batch_size
        outcomes = await asyncio.gather(*(writer.write(docs[i : i + chunk]) for i in range(0, len(docs), chunk)))
    seconds = time.perf_counter() - started
    stored = sum(outcome.acknowledged for batch in outcomes for outcome in batch)
    return IngestResult(seconds, "secmon BulkWriter", len(docs), writer.stats.bytes_sent, stored)


def _run_parallel_bulk(settings: Settings, index: str, events: list[dict[str, Any]]) -> IngestResult:
    es = settings.elasticsearch
    client = Elasticsearch(cluster_url(es), serializer=OrjsonSerializer(), request_timeout=es.request_timeout)
    actions = [
        {"_op_type": "create", "_index": index, "_id": document_id(index, n), "_source": event}
        for n, event in enumerate(events)
    ]
    size = sum(len(orjson.dumps(a["_source"])) + 60 for a in actions)
    started = time.perf_counter()
    stored = 0
    for ok, _ in helpers.parallel_bulk(client, actions, chunk_size=settings.writer.batch_size, raise_on_error=False):
        stored += ok
    seconds = time.perf_counter() - started
    client.close()
    return IngestResult(seconds, "elasticsearch.helpers.parallel_bulk", len(actions), size, stored)

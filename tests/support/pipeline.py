"""A running pipeline for tests (disk buffer in a temporary folder, drained into the real node).

And reading back what is stored, waiting for an index whose shard is still starting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from elasticsearch import AsyncElasticsearch

from secmon.collect.buffer import DiskBuffer
from secmon.collect.sinks.elasticsearch import BulkWriter
from secmon.collect.telemetry import Telemetry
from secmon.collect.topology import Pipeline, Stage
from secmon.config import WriterSettings
from secmon.store import IndexNames, read_when_ready


@contextlib.asynccontextmanager
async def running_pipeline(
    es: AsyncElasticsearch,
    names: IndexNames,
    buffer_dir: Path,
    stages: Sequence[Stage] = (),
    **buffer_options: int,
) -> AsyncIterator[Pipeline]:
    """A pipeline whose buffer drains into ``es`` until the block ends (after draining it)."""
    buffer = DiskBuffer(buffer_dir, **buffer_options)
    pipeline = Pipeline(names, buffer, Telemetry(), stages)
    writer = BulkWriter(es, WriterSettings(flush_interval=0.05, retry_initial=0.05, retry_max=0.5), names)  # type: ignore[call-arg]
    async with writer:
        drain = asyncio.create_task(pipeline.drain(writer, batch_size=500))
        try:
            yield pipeline
            assert await pipeline.wait_drained(60), "the buffer did not drain"
        finally:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
    buffer.close()


async def search_all(
    es: AsyncElasticsearch, index: str, query: dict[str, object] | None = None
) -> list[dict[str, object]]:
    """Every stored document of ``index`` matching ``query``, refreshed first."""
    from elasticsearch.helpers import async_scan

    async def scan() -> list[dict[str, object]]:
        await es.indices.refresh(index=index)
        hits = async_scan(es, index=index, query={"query": query or {"match_all": {}}})
        return [hit["_source"] async for hit in hits]

    return await read_when_ready(es, scan)


async def count_stored(es: AsyncElasticsearch, index: str) -> int:
    """How many documents ``index`` holds once refreshed; 0 while it does not exist.

    For polling what another process stores: the data stream it creates exists a moment before
    its shard has started, and a count then waits for the shard instead of failing with a 503.
    """

    async def count() -> int:
        await es.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
        return int((await es.count(index=index, ignore_unavailable=True, allow_no_indices=True))["count"])

    return await read_when_ready(es, count)

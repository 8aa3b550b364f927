"""Retention with an injected clock: rollover, then deletion of backing indices past retention."""

from __future__ import annotations

import time

from elasticsearch import AsyncElasticsearch

from secmon.collect.sinks.elasticsearch import BulkWriter
from secmon.config import RetentionSettings, WriterSettings
from secmon.store import Document, IndexNames, document_id, enforce_retention
from secmon.store.inventory import by_data_stream, document_counts, stored_indices

DAY = 86400.0


async def write_one(es: AsyncElasticsearch, names: IndexNames, dataset: str, n: int) -> None:
    doc = Document(names.events(dataset), document_id("retention", dataset, n), {"@timestamp": "2026-11-24T00:00:00Z"})
    async with BulkWriter(es, WriterSettings(), names) as writer:  # type: ignore[call-arg]
        await writer.write([doc])
    await es.indices.refresh(index=names.events(dataset))


async def test_old_backing_indices_go_and_each_dataset_keeps_its_own_retention(
    es: AsyncElasticsearch, names: IndexNames
) -> None:
    # A unique dataset pair per run keeps this test clear of others' data streams.
    short, long = "retention.short", "retention.long"
    settings = RetentionSettings(events="30d", datasets={long: "90d"}, rollover_after="1d")  # type: ignore[call-arg]
    for dataset in (short, long):
        await write_one(es, names, dataset, 1)
    streams = {names.events(short), names.events(long)}

    # Nothing is a day old yet: nothing to do.
    actions = await enforce_retention(es, names, settings, now=time.time())
    assert not [a for a in actions if a.data_stream in streams]

    # Two days later each stream is rolled over to a new, empty write index.
    actions = await enforce_retention(es, names, settings, now=time.time() + 2 * DAY)
    assert sorted(a.action for a in actions if a.data_stream in streams) == ["rollover", "rollover"]
    first_short_index = next(a.index for a in actions if a.data_stream == names.events(short))
    await write_one(es, names, short, 2)  # lands in the new write index

    # Forty days on: the short stream's first index is past 30 days, the long one's is not.
    actions = await enforce_retention(es, names, settings, now=time.time() + 40 * DAY)
    deleted = [a for a in actions if a.action == "delete" and a.data_stream in streams]
    assert [(a.data_stream, a.index) for a in deleted] == [(names.events(short), first_short_index)]

    indices = await stored_indices(es, [names.events(short), names.events(long)])
    counts = document_counts(indices)
    assert counts[names.events(short)] == 1  # the event written after the rollover is kept
    assert counts[names.events(long)] == 1
    assert first_short_index not in {index.name for index in by_data_stream(indices)[names.events(short)]}


async def test_the_inventory_copes_with_many_data_streams(es: AsyncElasticsearch, names: IndexNames) -> None:
    # Enough backing indices that their names alone would overflow a 4 kB request line.
    many = [f"inventory.many_{n:03d}" for n in range(60)]
    docs = [Document(names.events(d), document_id("many", d), {"@timestamp": "2026-11-24T00:00:00Z"}) for d in many]
    async with BulkWriter(es, WriterSettings(), names) as writer:  # type: ignore[call-arg]
        await writer.write(docs)
    await es.indices.refresh(index=f"{names.prefix}-events-inventory.many_*")
    counts = document_counts(await stored_indices(es, [f"{names.prefix}-events-inventory.many_*"]))
    assert counts == {names.events(d): 1 for d in many}

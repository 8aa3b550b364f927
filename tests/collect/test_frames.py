"""Documents through the disk buffer into the real node: what a frame keeps, and frames of earlier versions."""

from __future__ import annotations

import secrets
from pathlib import Path

import orjson
from elasticsearch import AsyncElasticsearch

from secmon.collect.buffer import DiskBuffer
from secmon.collect.topology import SourceContext
from secmon.events import Event
from secmon.store import IndexNames, document_id
from tests.support.pipeline import running_pipeline, search_all


def event(dataset: str, n: int, **fields: object) -> Event:
    return {
        "@timestamp": "2026-11-25T01:00:00.000Z",
        "event": {"dataset": dataset},
        "message": f"message {n} é\n\t\u2028",
        "labels": {"n": str(n)},
        **fields,
    }


async def test_events_come_out_of_the_buffer_as_they_went_in(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    dataset = f"frames.roundtrip_{secrets.token_hex(3)}"
    events = [event(dataset, n) for n in range(3)]
    async with running_pipeline(es, names, tmp_path) as pipeline:
        await pipeline.submit_events([dict(e) for e in events], [None] * 3, SourceContext("frames"))
    stored = sorted(await search_all(es, names.events(dataset)), key=lambda doc: doc["labels"]["n"])  # type: ignore[index]
    assert [doc["message"] for doc in stored] == [e["message"] for e in events]
    assert all(doc["event"]["ingested"] for doc in stored)  # type: ignore[index]


async def test_a_rejected_event_from_the_buffer_is_dead_lettered_with_its_original_as_an_object(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    dataset = f"frames.rejected_{secrets.token_hex(3)}"
    bad = event(dataset, 1, source={"ip": "not-an-ip-address"})
    async with running_pipeline(es, names, tmp_path) as pipeline:
        await pipeline.submit_events([bad], ["bad"], SourceContext("frames"))
    letters = await search_all(es, names.deadletter, {"term": {"event.dataset": dataset}})
    [letter] = letters
    original = letter["deadletter"]["original"]  # type: ignore[index]
    assert original["source"] == {"ip": "not-an-ip-address"}
    assert original["message"] == bad["message"]


async def test_frames_buffered_by_an_earlier_version_are_still_stored(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    # Before frames kept the source's JSON apart, a frame was one array: index, id, component, source.
    dataset = f"frames.upgrade_{secrets.token_hex(3)}"
    old = event(dataset, 7)
    buffer = DiskBuffer(tmp_path)
    await buffer.append([orjson.dumps((names.events(dataset), document_id("upgrade", dataset), "syslog", old))])
    buffer.close()
    async with running_pipeline(es, names, tmp_path):
        pass
    [stored] = await search_all(es, names.events(dataset))
    assert stored == old

"""``secmon bench import``: ``secmon import evtx`` on one worker and on more, beside the records bulk-indexed raw.

The peer is the floor of getting EVTX records into Elasticsearch with the standard tools: the
same parser (pyevtx-rs, its JSON) and elasticsearch-py's ``parallel_bulk`` with a thread per
core, ``create`` with the record's place as id, the record as it is (its ``Event`` mapped
``flattened``, so no two records' fields conflict); no normalization to ECS, no detection, no
disk buffer. secmon imports through its whole path: read, normalize, match, correlate, buffer, store.

Each row imports into indices of its own (plain, deleted after it). CPU is this process's and its
children's (the import's worker processes), from ``getrusage``; Elasticsearch's is not in it.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import evtx
import orjson
from elasticsearch import Elasticsearch, helpers
from elasticsearch.serializer import OrjsonSerializer

from secmon.bench.runs import delete_run, plain_event_indices
from secmon.config import Settings
from secmon.importer import import_context
from secmon.importer.parallel import evtx_units, import_units
from secmon.offline import input_files
from secmon.store import IndexNames, connect
from secmon.store.client import cluster_url
from secmon.store.templates import index_settings


@dataclass(frozen=True, slots=True)
class ImportRun:
    """One row: who imported, what was read and stored, in how long, for how much CPU."""

    name: str
    events: int
    stored: int
    seconds: float
    cpu_seconds: float  # this process and its waited-for children (the workers)
    alerts: int | None = None  # None: the contender does not detect

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds / self.events * 1e6


async def bench_import(settings: Settings, paths: Sequence[Path], jobs: Sequence[int]) -> list[ImportRun]:
    """``secmon import evtx`` of ``paths`` with each of ``jobs`` workers, then the raw-bulk peer."""
    files = [path for path in input_files(paths) if path.suffix.lower() == ".evtx"]
    run = f"{settings.elasticsearch.index_prefix}-benchimport-{int(time.time())}"
    client = connect(settings.elasticsearch, max_retries=0)
    results: list[ImportRun] = []
    try:
        for number, workers in enumerate(jobs):
            prefix = f"{run}-{number}"
            chosen = replace_prefix(settings, prefix, settings.state_dir / f"bench-import-{number}")
            await plain_event_indices(client, chosen, IndexNames(prefix))
            cpu, started = _cpu_seconds(), time.perf_counter()
            failures: list[str] = []
            summary = await import_units(
                chosen, evtx_units(files), import_context("bench-import", "evtx", None), workers, failures=failures
            )
            seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
            name = f"secmon import evtx --jobs {workers}"
            results.append(ImportRun(name, summary.read, summary.stored, seconds, cpu, summary.alerts))
            await delete_run(client, f"{prefix}-*")
        index = f"{run}-raw"
        await client.indices.create(
            index=index,
            settings={**index_settings(settings.elasticsearch), "mapping.total_fields.limit": 10_000},
            mappings={"properties": {"Event": {"type": "flattened"}}},
        )
        results.append(await asyncio.to_thread(_raw_bulk, settings, index, files))
        await delete_run(client, index)
    finally:
        await client.close()
    return results


def replace_prefix(settings: Settings, prefix: str, state_dir: Path) -> Settings:
    """``settings`` writing under ``prefix``, with a state folder of their own."""
    elasticsearch = settings.elasticsearch.model_copy(update={"index_prefix": prefix})
    return settings.model_copy(update={"elasticsearch": elasticsearch, "state_dir": state_dir})


def _raw_bulk(settings: Settings, index: str, files: Sequence[Path]) -> ImportRun:
    es = settings.elasticsearch
    client = Elasticsearch(cluster_url(es), serializer=OrjsonSerializer(), request_timeout=es.request_timeout)
    threads = len(os.sched_getaffinity(0))
    cpu, started = _cpu_seconds(), time.perf_counter()
    events = stored = 0
    try:
        actions = _raw_actions(index, files)
        for ok, _ in helpers.parallel_bulk(client, actions, thread_count=threads, raise_on_error=False):
            events += 1
            stored += ok
        client.indices.refresh(index=index)
    finally:
        client.close()
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return ImportRun(f"pyevtx-rs + parallel_bulk, raw ({threads} threads)", events, stored, seconds, cpu)


def _raw_actions(index: str, files: Sequence[Path]) -> Iterator[dict[str, Any]]:
    for path in files:
        resolved = path.resolve()
        try:
            records: Any = evtx.PyEvtxParser(str(path)).records_json()
            for record in records:
                source = orjson.loads(record["data"])
                place = f"{resolved}:{record['event_record_id']}"
                yield {"_op_type": "create", "_index": index, "_id": place, "_source": source}
        except (OSError, RuntimeError):  # a damaged file: the records before the damage are sent
            continue


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

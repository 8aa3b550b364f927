"""``secmon import``: read files once, through the same pipeline as the live sources.

Record keys are a line's place in the file (device, inode, offset) or an EVTX record's (path,
record number); with the agency and the content they make the document id, so importing the
same file again stores nothing twice. :mod:`secmon.importer.parallel` spreads log and EVTX
files over worker processes (``secmon import logs|evtx``); the functions here submit records
or events from this process (``secmon import pcap``, the demo).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import orjson

from secmon.collect.topology import Agency, Pipeline, SourceContext
from secmon.config import Settings
from secmon.detection.alerts import ALERTS_COMPONENT
from secmon.events import Event, Record, set_field
from secmon.service import Running, running_service
from secmon.store import Outcome

if TYPE_CHECKING:
    from secmon.collect.sources.evtx import EvtxRecord

T = TypeVar("T")

BATCH = 500


@dataclass(slots=True)
class ImportSummary:
    """What an import did, for the summary table."""

    read: int = 0
    parse_failures: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    failed: int = 0
    alerts: int = 0  # new alerts the imported events raised (stored now)


def read_lines(path: Path, start: int = 0, end: int | None = None) -> Iterator[Record]:
    """Each non-empty line of ``path`` as a record keyed by its offset; from ``start`` (a line's) to ``end``.

    The lines read are those that start before ``end``.
    """
    identity = os.stat(path)
    offset = start
    with path.open("rb") as handle:
        handle.seek(start)
        for raw in handle:
            if end is not None and offset >= end:
                break
            text = raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
            if text.strip():
                origin = {"log": {"file": {"path": str(path)}, "offset": offset}}
                yield Record(text, origin, key=f"{identity.st_dev}:{identity.st_ino}:{offset}")
            offset += len(raw)


def read_evtx_records(path: Path, failures: list[str], *, threads: int = 0) -> Iterator[Record]:
    """Each record of the EVTX file ``path``, as JSON, keyed by its record number in the file.

    Parts of a damaged file that cannot be read are described in ``failures``; ``threads``
    limits the parser's threads (0: one per core).
    """
    from secmon.collect.sources.evtx import read_evtx

    return evtx_records(
        path, read_evtx(path, on_failure=lambda failure: failures.append(str(failure)), threads=threads)
    )


def evtx_records(path: Path, records: Iterable[EvtxRecord]) -> Iterator[Record]:
    """EVTX records of ``path`` (all of it, or a part) as records keyed by their record number in the file."""
    origin = {"log": {"file": {"path": str(path)}}}
    resolved = path.resolve()
    for record in records:
        yield Record(
            orjson.dumps(record.event).decode(), origin, key=f"{resolved}:{record.record_id}", document=record.event
        )


def read_pcap_events(
    path: Path, failures: list[str], undecoded: Counter[str] | None = None
) -> Iterator[tuple[str, Event]]:
    """The ECS events (flows, DNS, HTTP, TLS, ICMP, ARP) of a pcap or pcapng file, keyed by their order in it.

    A damaged file gives the events before the damage; what went wrong is added to ``failures``.
    What the decoder could not read (a TCP gap, an incomplete IP datagram ...) is added to
    ``undecoded`` by reason.
    """
    from secmon.collect.transforms.packets import CaptureError, PacketProcessor, packets_to_events, read_capture

    identity = os.stat(path)
    processor = PacketProcessor()
    events = packets_to_events(read_capture(path), processor)
    number = 0
    try:
        for number, event in enumerate(events):
            set_field(event, "log.file.path", str(path))
            yield f"{identity.st_dev}:{identity.st_ino}:{number}", event
    except CaptureError as exc:
        failures.append(str(exc))
    if undecoded is not None:
        undecoded.update(processor.stats.dropped)


def import_context(component: str, fmt: str, agency: str | None) -> SourceContext:
    """What an import tells the pipeline of its records: who imports them, their format, their agency."""
    return SourceContext(component, fmt, Agency(agency) if agency else None)


async def import_records(
    settings: Settings,
    records: Iterator[Record],
    *,
    component: str,
    fmt: str,
    agency: str | None,
    progress: Callable[[int], None] = lambda n: None,
    running: Running | None = None,
) -> ImportSummary:
    """Submit ``records`` and wait until Elasticsearch has them all; returns the counts.

    Into ``running``'s pipeline when given (``secmon up --demo``: the service counts them as a
    source's events), else into a one-off service with a disk buffer of its own.
    """
    context = import_context(component, fmt, agency)

    async def submit(pipeline: Pipeline, batch: Sequence[Record]) -> None:
        await pipeline.submit(batch, context)

    return await _import(settings, records, context, submit, progress, running=running)


async def import_events(
    settings: Settings,
    events: Iterator[tuple[str, Event]],
    *,
    component: str,
    agency: str | None,
    progress: Callable[[int], None] = lambda n: None,
    running: Running | None = None,
) -> ImportSummary:
    """Like :func:`import_records` for events already in ECS, each with its key (a packet decoder's)."""
    context = import_context(component, "raw", agency)

    async def submit(pipeline: Pipeline, batch: Sequence[tuple[str, Event]]) -> None:
        await pipeline.submit_events([event for _, event in batch], [key for key, _ in batch], context)

    return await _import(settings, events, context, submit, progress, running=running)


async def _import(
    settings: Settings,
    items: Iterator[T],
    context: SourceContext,
    submit: Callable[[Pipeline, Sequence[T]], Awaitable[None]],
    progress: Callable[[int], None],
    *,
    running: Running | None,
) -> ImportSummary:
    if running is not None:
        return await _import_into(running, items, context, submit, progress)
    async with import_service(settings) as service:
        return await _import_into(service, items, context, submit, progress)


@contextlib.asynccontextmanager
async def import_service(settings: Settings) -> AsyncIterator[Running]:
    """secmon without sources, with a disk buffer of its own (a running ``secmon up`` may hold the service's)."""
    buffer_dir = settings.state_dir / f"import-{os.getpid()}"
    try:
        async with running_service(settings, with_sources=False, buffer_dir=buffer_dir) as running:
            yield running
    finally:
        shutil.rmtree(buffer_dir, ignore_errors=True)


async def _import_into(
    running: Running,
    items: Iterator[T],
    context: SourceContext,
    submit: Callable[[Pipeline, Sequence[T]], Awaitable[None]],
    progress: Callable[[int], None],
) -> ImportSummary:
    before = counted(running, context.component)
    read = 0
    for batch in batches(items):
        await submit(running.pipeline, batch)
        read += len(batch)
        progress(len(batch))
    await running.pipeline.wait_drained()  # every document's outcome is counted once its frame is acknowledged
    summary = counted(running, context.component).since(before)
    summary.read = read
    return summary


@dataclass(frozen=True, slots=True)
class Counted:
    """What a service has counted of one component's documents so far; an import's summary is the difference."""

    outcomes: Counter[Outcome]
    alerts: int
    parse_failures: int

    def since(self, before: Counted) -> ImportSummary:
        outcomes = self.outcomes - before.outcomes
        return ImportSummary(
            parse_failures=self.parse_failures - before.parse_failures,
            stored=outcomes[Outcome.STORED],
            duplicates=outcomes[Outcome.DUPLICATE],
            dead_lettered=outcomes[Outcome.DEAD_LETTERED],
            failed=outcomes[Outcome.FAILED],
            alerts=self.alerts - before.alerts,
        )


def counted(running: Running, component: str) -> Counted:
    """What ``running`` has counted of ``component``'s documents so far."""
    by_component = running.writer.stats.by_component
    errors = running.pipeline.telemetry.value("secmon_component_errors_total", component=component, stage="parse")
    return Counted(
        Counter(by_component.get(component, Counter())),
        by_component.get(ALERTS_COMPONENT, Counter())[Outcome.STORED],
        int(errors),
    )


def batches(items: Iterable[T]) -> Iterator[list[T]]:
    """``items`` in lists of ``BATCH``."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch

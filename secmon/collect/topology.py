"""The pipeline's wiring: records from sources → transforms → stages (detection) → disk buffer → a sink.

    source ──records──▶ TransformChain ─▶ stamp ─▶ room in buffer? ─▶ stages ──frames──▶ DiskBuffer ──▶ drain ─▶ Sink
      ▲                                                                                   │
      └──────────────────────── acknowledged once durable in the buffer ◀──────────────────┘

Transforms are plain functions run in the submitting source's task: they are CPU work, so a
queue between them would only add latency. A :class:`DocumentMaker` does that part (transform,
stamp, id, frame); an import's worker processes make documents with one of their own and hand
the frames to :meth:`Pipeline.submit_frames`. Backpressure comes from the bounded buffer: a full
buffer makes ``submit`` wait, and the source stops reading its socket or file.

Stages run only on events the buffer has taken: room for a batch's events is found first, then
the stages see them, then events and the stages' documents (alerts) are appended in one step
and the stages are told (notifications go out). An event a full buffer refuses (UDP) never
reaches detection, so no alert, webhook or alert group exists for an event that was not stored.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from secmon.collect.buffer import DiskBuffer, Position
from secmon.collect.sinks import Sink
from secmon.collect.telemetry import Telemetry
from secmon.collect.transforms.chain import TransformChain
from secmon.events import PARSE_FAILURE_TAG, Event, Record, set_field
from secmon.ids import sequential_id
from secmon.log import get_logger
from secmon.store import Document, IndexNames, Outcome, document_id, source_json
from secmon.store.frames import decode_frame, encode_frame
from secmon.timestamps import epoch_to_iso_millis

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Agency:
    """The organization events come from: ECS ``organization.id`` and ``organization.name``."""

    id: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What a source tells the pipeline about the records it submits."""

    component: str  # the source's id in the configuration
    format: str = "auto"  # a key of secmon.collect.transforms.normalize.TRANSFORMS
    agency: Agency | None = None
    dataset: str | None = None  # overrides event.dataset when set


class Stage(Protocol):
    """A step after normalization that may add documents, such as detection adding alerts.

    It sees each batch of event documents (with the ids they will be stored under) once the
    buffer has room for them, and returns extra documents to store right after them; it must
    not raise for one bad event. ``buffered`` is then told of those documents, once the buffer
    holds them: what must not happen for a document that might be lost (a notification) goes there.
    """

    def __call__(self, events: Sequence[Document]) -> list[Document]: ...

    def buffered(self, added: Sequence[Document]) -> None: ...


class DocumentMaker:
    """Records, or events already in ECS, into the documents the pipeline stores and their buffer frames.

    Transform (parse, normalize, join), stamp (ingest time, dataset, agency), id: a keyed
    record's id is of its agency, key and content (:func:`_keyed_id`), others get sequential
    ids. CPU work only, no I/O: an import's worker processes make their documents with one too.
    ``on_parse_failure`` is told the component of each event its parser gave up on (kept raw,
    tagged), ``on_parser_error`` of each parser that raised.
    """

    def __init__(
        self,
        names: IndexNames,
        on_parse_failure: Callable[[str], None] | None = None,
        on_parser_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.names = names
        self._on_parse_failure = on_parse_failure
        # Ids for records without a key of their own: unique per maker, then fixed in the buffer,
        # so a replay from the buffer reuses them. 48 bits of sequence last any run.
        self._id_prefix = os.urandom(9)
        self._sequence = 0
        self._chain = TransformChain(on_parser_error)

    def records(self, records: Sequence[Record], context: SourceContext) -> tuple[list[Document], list[bytes]]:
        """The documents and frames of ``records``."""
        ids = [
            self.sequential_id() if record.key is None else _keyed_id(context, record.key, record.message)
            for record in records
        ]
        ingested = epoch_to_iso_millis(time.time())
        events = [self._stamp(self._transform(record, context), context, ingested) for record in records]
        return self._documents(events, ids, context)

    def events(
        self, events: Sequence[Event], keys: Sequence[str | None], context: SourceContext
    ) -> tuple[list[Document], list[bytes]]:
        """The documents and frames of ``events``, already in ECS (a packet decoder's), with their keys."""
        # A keyed event's content is what its decoder made of it, before it is stamped: ids first.
        ids = [
            self.sequential_id() if key is None else _keyed_id(context, key, source_json(event))
            for key, event in zip(keys, events, strict=True)
        ]
        ingested = epoch_to_iso_millis(time.time())
        return self._documents([self._stamp(event, context, ingested) for event in events], ids, context)

    def prime(self, records: Sequence[Record], context: SourceContext) -> None:
        """Transform ``records`` for the state they leave (auditd lines waiting for their EXECVE), and drop them.

        A worker importing a file from its middle reads a little before it first, so the events
        it makes are those one reader of the whole file makes.
        """
        for record in records:
            self._chain(record, context.format, context.component)

    def sequential_id(self) -> str:
        self._sequence += 1
        return sequential_id(self._id_prefix, self._sequence)

    def _documents(
        self, events: list[Event], ids: Sequence[str], context: SourceContext
    ) -> tuple[list[Document], list[bytes]]:
        docs = [
            Document(self.names.events(event["event"].get("dataset")), doc_id, event, component=context.component)
            for doc_id, event in zip(ids, events, strict=True)
        ]
        return docs, [encode_frame(doc) for doc in docs]

    def _transform(self, record: Record, context: SourceContext) -> Event:
        event = self._chain(record, context.format, context.component)
        if self._on_parse_failure is not None and PARSE_FAILURE_TAG in event.get("tags", ()):
            self._on_parse_failure(context.component)
        return event

    @staticmethod
    def _stamp(event: Event, context: SourceContext, ingested: str) -> Event:
        """What every event gets, whatever made it: ingest time, dataset, agency."""
        meta = event.setdefault("event", {})
        meta["ingested"] = ingested
        if context.dataset:
            meta["dataset"] = context.dataset
        meta.setdefault("dataset", "generic")
        if context.agency is not None:
            set_field(event, "organization.id", context.agency.id)
            if context.agency.name:
                set_field(event, "organization.name", context.agency.name)
        return event


class Pipeline:
    """Turns records into stored documents; see the module docstring."""

    def __init__(
        self,
        names: IndexNames,
        buffer: DiskBuffer,
        telemetry: Telemetry,
        stages: Sequence[Stage] = (),
    ) -> None:
        self.names = names
        self.buffer = buffer
        self.telemetry = telemetry
        self.stages = list(stages)
        self.maker = DocumentMaker(names, self._parse_failed, self._parser_failed)

    def _parse_failed(self, component: str) -> None:
        self.telemetry.errors.labels(component, "parse").inc()

    def _parser_failed(self, component: str, _: BaseException) -> None:
        self.telemetry.errors.labels(component, "normalize").inc()

    # -- submitting ------------------------------------------------------------------------

    async def submit(self, records: Sequence[Record], context: SourceContext) -> None:
        """Process ``records`` and return once they are durable in the buffer."""
        self.telemetry.received.labels(context.component).inc(len(records))
        docs, frames = self.maker.records(records, context)
        await self.buffer.wait_for_room(frames)
        self._accept(docs, frames, context, self.stages)

    def submit_nowait(self, records: Sequence[Record], context: SourceContext) -> bool:
        """Like ``submit`` for sources that cannot wait (UDP): False, and counted, when full."""
        self.telemetry.received.labels(context.component).inc(len(records))
        docs, frames = self.maker.records(records, context)
        if not self.buffer.has_room(frames):
            self.telemetry.discarded.labels(context.component, "buffer_full").inc(len(records))
            return False
        self._accept(docs, frames, context, self.stages)
        return True

    async def reject(self, raw: str, reason: str, context: SourceContext, where: str) -> None:
        """Dead-letter input that cannot become an event at all (malformed JSON, say).

        ``where`` says where it was found (``"line 12"``); the sender should also be told.
        """
        self.telemetry.errors.labels(context.component, "decode").inc()
        source: Event = {
            "@timestamp": epoch_to_iso_millis(time.time()),
            "deadletter": {
                "reason": f"{where}: {reason}",
                "error_type": "input_rejected",
                "target": "",
                "component": context.component,
                "original": {"raw": raw},
            },
        }
        if context.agency is not None:
            source["organization"] = {"id": context.agency.id}
        doc = Document(self.names.deadletter, self.maker.sequential_id(), source)
        doc.component = context.component
        await self.buffer.append([encode_frame(doc)])

    async def submit_events(self, events: Sequence[Event], keys: Sequence[str | None], context: SourceContext) -> None:
        """Like :meth:`submit` for events already in ECS (the packet decoder's), with their keys."""
        self.telemetry.received.labels(context.component).inc(len(events))
        docs, frames = self.maker.events(events, keys, context)
        await self.buffer.wait_for_room(frames)
        self._accept(docs, frames, context, self.stages)

    def encode_events(self, events: Sequence[Event], keys: Sequence[str | None], context: SourceContext) -> list[bytes]:
        """The buffer frames :meth:`submit_events` would write for ``events``, without running the stages."""
        self.telemetry.received.labels(context.component).inc(len(events))
        return self.maker.events(events, keys, context)[1]

    async def submit_frames(self, frames: Sequence[bytes], context: SourceContext, stages: Sequence[Stage]) -> None:
        """Store documents another process made (an import's workers, with a :class:`DocumentMaker`).

        ``stages`` run instead of the pipeline's own: ones that take what the workers worked out
        (the rules each event matched) rather than work it out again.
        """
        self.telemetry.received.labels(context.component).inc(len(frames))
        docs = [decode_frame(frame) for frame in frames]
        await self.buffer.wait_for_room(frames)
        self._accept(docs, list(frames), context, stages)

    def _accept(
        self, docs: list[Document], frames: list[bytes], context: SourceContext, stages: Sequence[Stage]
    ) -> None:
        """Run the stages on events the buffer has room for, append everything, then tell the stages.

        No await between the room check and the append: nothing else can take the room meanwhile.
        The stages' documents may take the buffer past its limit by their own size: an alert of
        an accepted event is never refused.
        """
        added_by: list[tuple[Stage, list[Document]]] = [(stage, stage(docs)) for stage in stages]
        self.buffer.append_nowait([*frames, *(encode_frame(doc) for _, added in added_by for doc in added)])
        self.telemetry.sent.labels(context.component).inc(len(docs))
        self.telemetry.buffer_bytes.set(self.buffer.pending_bytes)
        for stage, added in added_by:
            if added:
                stage.buffered(added)

    # -- draining --------------------------------------------------------------------------

    async def drain(self, writer: Sink, *, batch_size: int = 1000, window: int = 4) -> None:
        """Send the buffer's content to ``writer`` in order, forever; acknowledge what is stored."""
        in_flight: deque[tuple[Position, asyncio.Task[list[Outcome]]]] = deque()
        while True:
            frames, end = self.buffer.read(batch_size, 8 << 20)
            if frames:
                docs = [decode_frame(frame) for frame in frames]
                in_flight.append((end, asyncio.create_task(writer.write(docs))))
            while in_flight and (in_flight[0][1].done() or len(in_flight) >= window or not frames):
                position, task = in_flight.popleft()
                await task
                self.buffer.acknowledge(position)
                self.telemetry.buffer_bytes.set(self.buffer.pending_bytes)
                if not frames:
                    break  # look for frames that arrived meanwhile
            if not frames and not in_flight:
                await self.buffer.wait_readable()

    async def wait_drained(self, timeout: float | None = None) -> bool:
        """Wait until everything buffered is stored; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.buffer.empty:
            if deadline is not None and time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


def _keyed_id(context: SourceContext, key: str, content: str | bytes) -> str:
    """The id of an event its source can read again: its agency, where it is at the source, and its content.

    ``key`` names the place (a file's identity and offset, an EVTX record, a client's ``_id``);
    the same place read again with the same content gives the same id, so a re-read stores
    nothing twice. The content and the agency are part of it because a place is reused: the same
    path imported again after it was rewritten (a daily export, a rotated file), or another
    agency's copy of it, are other events.
    """
    return document_id(context.agency.id if context.agency else "", key, content)

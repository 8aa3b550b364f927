"""The Elasticsearch sink, the bulk writer: every event and alert reaches Elasticsearch through it.

Callers hand it documents with ``await writer.write(docs)``, which returns once each document
is safe: stored, found already stored (a duplicate id), or dead-lettered with the reason.
Only then may a source acknowledge (commit a file offset, answer a TCP sender).

* Documents from all callers are batched by count, bytes and time into ``_bulk`` requests,
  encoded once with orjson; ``max_in_flight`` requests run at once.
* Ids are deterministic and the op is ``create``, so a batch retried after a lost answer
  stores nothing twice: Elasticsearch answers 409 for what the first attempt stored.
* Each batch is delivered by :class:`~secmon.collect.sinks.delivery.Delivery`: connection
  errors, timeouts, 429 and 5xx are retried with exponential backoff until they succeed or the
  writer is closed; items that fail with 429/5xx inside a bulk answer are retried alone. A
  request refused whole (400, 413: too large) is split in half.
* Any other rejection (a mapping conflict, a missing @timestamp) sends the original
  document and the reason to the dead-letter data stream. Nothing is dropped silently.
* Memory is bounded by ``queue_bytes``: ``write`` waits while that much is unacknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import orjson
from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from secmon.collect.sinks.delivery import (
    Delivery,
    DeliveryStats,
    Envelope,
    Receipt,
    Refusal,
    RequestRefused,
    Result,
    RetryRequest,
    all_stored,
    bulk_results,
    refusal_of,
    retry_after_seconds,
)
from secmon.config import WriterSettings
from secmon.log import get_logger
from secmon.store.documents import Document, Outcome, source_json
from secmon.store.names import IndexNames
from secmon.timestamps import now_iso_seconds

if TYPE_CHECKING:
    from secmon.collect.sinks import SinkEnvironment
    from secmon.config import Settings

log = get_logger(__name__)

_FILTER_PATH = "errors,items.*.status,items.*.error.type,items.*.error.reason"


class BulkWriter:
    """Batches documents into ``_bulk`` requests and reports what became of each one.

    Use as ``async with BulkWriter(client, settings, names) as writer: await writer.write(docs)``.
    """

    def __init__(
        self,
        client: AsyncElasticsearch,
        settings: WriterSettings,
        names: IndexNames,
        *,
        request_timeout: float | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        client = client.options(request_timeout=request_timeout) if request_timeout else client
        self._settings = settings
        self.stats = DeliveryStats()
        self._delivery = Delivery(
            BulkTransport(client, self.stats),
            DeadLetterStream(names),
            self.stats,
            retry_initial=settings.retry_initial,
            retry_max=settings.retry_max,
            sleep=sleep,
            on_final=self._release,
        )
        self._queue: deque[Envelope] = deque()
        self._queued_docs_bytes = 0  # bytes queued for sending
        self._unacked_bytes = 0  # bytes accepted by write() and not yet final
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()  # set whenever unacknowledged bytes were released
        self._slots = asyncio.Semaphore(settings.max_in_flight)
        self._senders: set[asyncio.Task[None]] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False

    async def __aenter__(self) -> BulkWriter:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def start(self) -> None:
        """Start the background task that sends batches."""
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop(), name="bulk-writer")

    async def write(self, docs: Sequence[Document]) -> list[Outcome]:
        """Store ``docs``; returns each one's outcome, in order, once all are final."""
        if self._flusher is None:
            raise RuntimeError("BulkWriter.write() before start()")
        if not docs:
            return []
        receipt = Receipt(len(docs))
        envelopes = [Envelope(doc, _encode(doc), receipt, position) for position, doc in enumerate(docs)]
        size = sum(len(envelope.payload) for envelope in envelopes)
        # Wait for room, but always admit a call when nothing is unacknowledged, however large.
        while self._unacked_bytes and self._unacked_bytes + size > self._settings.queue_bytes:
            self._room.clear()
            await self._room.wait()
        self._unacked_bytes += size
        self._enqueue(envelopes)
        return await receipt.wait()

    async def close(self, timeout: float | None = None) -> None:
        """Send everything queued, wait for the answers, and stop.

        With a ``timeout``, documents still unanswered then are abandoned (their ``write``
        calls raise ``CancelledError``); their sources, never acknowledged, will send them again.
        """
        self._closing = True
        self._wakeup.set()
        if self._flusher is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._drain()), timeout)
        except TimeoutError:
            log.warning("Closing the writer before Elasticsearch answered.", unanswered=len(self._queue))
            for task in [self._flusher, *self._senders]:
                task.cancel()
            for envelope in self._queue:
                envelope.receipt.abandon()

    # -- batching --------------------------------------------------------------------------

    def _enqueue(self, envelopes: Sequence[Envelope]) -> None:
        self._queue.extend(envelopes)
        self._queued_docs_bytes += sum(len(envelope.payload) for envelope in envelopes)
        if len(self._queue) >= self._settings.batch_size or self._queued_docs_bytes >= self._settings.batch_bytes:
            self._wakeup.set()
        elif len(self._queue) == len(envelopes):
            self._wakeup.set()  # the flusher sleeps on an empty queue; start the batch timer

    async def _drain(self) -> None:
        assert self._flusher is not None
        await self._flusher  # it returns once the queue is empty and no sender is left

    async def _flush_loop(self) -> None:
        settings = self._settings
        while True:
            if not self._queue:
                if self._closing and not self._senders:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()  # set by _enqueue, by a finished sender and by close()
                continue
            full = len(self._queue) >= settings.batch_size or self._queued_docs_bytes >= settings.batch_bytes
            if not full and not self._closing:
                age = time.monotonic() - self._queue[0].receipt.created
                if age < settings.flush_interval:
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), settings.flush_interval - age)
                    continue
            await self._slots.acquire()
            batch = self._take_batch()
            task = asyncio.create_task(self._delivery.deliver(batch))
            self._senders.add(task)
            task.add_done_callback(self._sender_done)

    def _sender_done(self, task: asyncio.Task[None]) -> None:
        self._senders.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("A bulk sender failed unexpectedly.", exc_info=task.exception())
        self._wakeup.set()

    def _take_batch(self) -> list[Envelope]:
        batch: list[Envelope] = []
        size = 0
        while self._queue and len(batch) < self._settings.batch_size:
            envelope = self._queue[0]
            if batch and size + len(envelope.payload) > self._settings.batch_bytes:
                break
            self._queue.popleft()
            batch.append(envelope)
            size += len(envelope.payload)
        self._queued_docs_bytes -= size
        return batch

    def _release(self, envelope: Envelope) -> None:
        """Free the room a document took, once it is final."""
        self._unacked_bytes -= len(envelope.payload)
        self._room.set()


class BulkTransport:
    """Sends a batch as one ``_bulk`` request and reads each document's result from the answer."""

    receiver = "Elasticsearch"

    def __init__(self, client: AsyncElasticsearch, stats: DeliveryStats) -> None:
        self._client = client
        self._stats = stats

    async def send(self, batch: Sequence[Envelope]) -> list[Result]:
        body = b"".join(envelope.payload for envelope in batch)
        self._stats.requests += 1
        self._stats.bytes_sent += len(body)
        try:
            # A bytes body passes through the client's NDJSON serializer unchanged.
            response = await self._client.bulk(operations=cast(Any, body), filter_path=_FILTER_PATH)
        except ApiError as exc:
            status = exc.meta.status
            if status in (400, 413):
                error = exc.body.get("error") if isinstance(exc.body, dict) else None
                raise RequestRefused(refusal_of(status, error)) from None
            # 401/403 (a revoked key), 429, 5xx: wait and retry; the operator may fix the cause.
            retry_after = retry_after_seconds(exc.meta.headers.get("retry-after"))
            raise RetryRequest(f"HTTP {status}: {exc.message}", retry_after) from None
        except TransportError as exc:
            raise RetryRequest(f"{type(exc).__name__}: {exc.message}") from None
        answer: dict[str, Any] = response.body
        if not answer.get("errors"):
            return all_stored(batch)
        return bulk_results(answer.get("items"), batch)


class DeadLetterStream:
    """Keeps what Elasticsearch rejected in the dead-letter data stream: the original and the reason."""

    def __init__(self, names: IndexNames) -> None:
        self._names = names

    async def keep(self, refused: Sequence[tuple[Envelope, Refusal]]) -> list[Envelope]:
        """A stand-in per refused envelope, to deliver to the dead-letter stream in its place."""
        return [self._stand_in(envelope, refusal) for envelope, refusal in refused]

    def _stand_in(self, envelope: Envelope, refusal: Refusal) -> Envelope:
        original = envelope.doc
        log.warning(
            "Elasticsearch rejected a document; dead-lettering it.",
            index=original.index,
            id=original.id,
            error=refusal.type,
            reason=refusal.reason,
        )
        source: dict[str, Any] = {
            "@timestamp": now_iso_seconds(),
            "deadletter": {
                "reason": refusal.reason,
                "error_type": refusal.type,
                "target": original.index,
                "component": original.component,
                "original": original.source,
            },
        }
        # Keep what scopes the document to an agency and a dataset, so the right people see it.
        for key in ("event", "organization"):
            value = original.source.get(key)
            if isinstance(value, dict):
                kept = {k: value[k] for k in ("dataset", "id", "name") if k in value}
                if kept:
                    source[key] = kept
        doc = Document(self._names.deadletter, original.id, source, component=original.component)
        return Envelope(doc, _encode(doc), envelope.receipt, envelope.position, stands_for=envelope)


def build(settings: Settings, environment: SinkEnvironment) -> BulkWriter:
    """The bulk writer of ``settings.writer``: the ``elasticsearch`` entry of :data:`~secmon.collect.sinks.SINKS`."""
    if environment.client is None:
        raise ValueError("the elasticsearch sink needs an Elasticsearch client")
    return BulkWriter(environment.client, settings.writer, environment.names)


def _encode(doc: Document) -> bytes:
    action = orjson.dumps({doc.op: {"_index": doc.index, "_id": doc.id}})
    return b"%b\n%b\n" % (action, source_json(doc.source))

"""The bulk writer: every event and alert reaches Elasticsearch through it.

Callers hand it documents with ``await writer.write(docs)``, which returns once each document
is safe: stored, found already stored (a duplicate id), or dead-lettered with the reason.
Only then may a source acknowledge (commit a file offset, answer a TCP sender).

* Documents from all callers are batched by count, bytes and time into ``_bulk`` requests,
  encoded once with orjson; ``max_in_flight`` requests run at once.
* Ids are deterministic and the op is ``create``, so a batch retried after a lost answer
  stores nothing twice: Elasticsearch answers 409 for what the first attempt stored.
* Connection errors, timeouts, 429 and 5xx are retried with exponential backoff until they
  succeed or the writer is closed; items that fail with 429/5xx inside a bulk answer are
  retried alone. A request too large (413) is split in half.
* Any other rejection (a mapping conflict, a missing @timestamp) sends the original
  document and the reason to the dead-letter data stream. Nothing is dropped silently.
* Memory is bounded by ``queue_bytes``: ``write`` waits while that much is unacknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from secmon.config import WriterSettings
from secmon.log import get_logger
from secmon.store.documents import Document, Outcome, source_json
from secmon.store.names import IndexNames

log = get_logger(__name__)

_FILTER_PATH = "errors,items.*.status,items.*.error.type,items.*.error.reason"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(slots=True)
class WriterStats:
    """Counters of one writer, for telemetry and benchmarks."""

    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    failed: int = 0
    requests: int = 0
    retries: int = 0
    bytes_sent: int = 0
    # Final outcomes per document component (a source's id, "alerts" ...).
    by_component: dict[str, Counter[Outcome]] = field(default_factory=dict)

    def count(self, outcome: Outcome, component: str = "") -> None:
        self.by_component.setdefault(component, Counter())[outcome] += 1
        if outcome is Outcome.STORED:
            self.stored += 1
        elif outcome is Outcome.DUPLICATE:
            self.duplicates += 1
        elif outcome is Outcome.DEAD_LETTERED:
            self.dead_lettered += 1
        else:
            self.failed += 1


@dataclass(slots=True, eq=False)
class _Call:
    """One ``write`` call, waiting for all its documents."""

    future: asyncio.Future[list[Outcome]]
    outcomes: list[Outcome | None]
    remaining: int


@dataclass(slots=True, eq=False)
class _Item:
    doc: Document
    payload: bytes  # action line and source line, newline-terminated
    call: _Call
    position: int
    error: dict[str, str] | None = None  # Elasticsearch's rejection ({type, reason}), once rejected
    dead_letter_of: _Item | None = None  # set on a dead-letter item: the rejected item it stands for
    enqueued: float = field(default_factory=time.monotonic)


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
        self._client = client.options(request_timeout=request_timeout) if request_timeout else client
        self._settings = settings
        self._names = names
        self._sleep = sleep
        self.stats = WriterStats()
        self._queue: deque[_Item] = deque()
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
        loop = asyncio.get_running_loop()
        call = _Call(loop.create_future(), [None] * len(docs), len(docs))
        items = [_Item(doc, _encode(doc), call, position) for position, doc in enumerate(docs)]
        size = sum(len(item.payload) for item in items)
        # Wait for room, but always admit a call when nothing is unacknowledged, however large.
        while self._unacked_bytes and self._unacked_bytes + size > self._settings.queue_bytes:
            self._room.clear()
            await self._room.wait()
        self._unacked_bytes += size
        self._enqueue(items)
        return await call.future

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
            for item in self._queue:
                if not item.call.future.done():
                    item.call.future.cancel()

    # -- batching --------------------------------------------------------------------------

    def _enqueue(self, items: Sequence[_Item]) -> None:
        self._queue.extend(items)
        self._queued_docs_bytes += sum(len(item.payload) for item in items)
        if len(self._queue) >= self._settings.batch_size or self._queued_docs_bytes >= self._settings.batch_bytes:
            self._wakeup.set()
        elif len(self._queue) == len(items):
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
                age = time.monotonic() - self._queue[0].enqueued
                if age < settings.flush_interval:
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), settings.flush_interval - age)
                    continue
            await self._slots.acquire()
            batch = self._take_batch()
            task = asyncio.create_task(self._send(batch))
            self._senders.add(task)
            task.add_done_callback(self._sender_done)

    def _sender_done(self, task: asyncio.Task[None]) -> None:
        self._senders.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("A bulk sender failed unexpectedly.", exc_info=task.exception())
        self._wakeup.set()

    def _take_batch(self) -> list[_Item]:
        batch: list[_Item] = []
        size = 0
        while self._queue and len(batch) < self._settings.batch_size:
            item = self._queue[0]
            if batch and size + len(item.payload) > self._settings.batch_bytes:
                break
            self._queue.popleft()
            batch.append(item)
            size += len(item.payload)
        self._queued_docs_bytes -= size
        return batch

    # -- sending ---------------------------------------------------------------------------

    async def _send(self, batch: list[_Item]) -> None:
        """Send ``batch`` until every item in it is final."""
        pending = batch
        delay = self._settings.retry_initial
        while pending:
            retry: list[_Item] = []
            rejected: list[_Item] = []
            try:
                response = await self._bulk(pending)
            except _SplitRequest:
                half = len(pending) // 2
                await asyncio.gather(self._send(pending[:half]), self._send(pending[half:]))
                return
            except _RetryRequest as exc:
                log.warning("Elasticsearch did not take a batch; retrying.", reason=exc, delay=round(delay, 2))
                retry = pending
            else:
                retry, rejected = self._settle(pending, response)
            dead_letters = [self._dead_letter(item) for item in rejected]
            if retry:
                self.stats.retries += 1
                await self._sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self._settings.retry_max)
            pending = retry + [item for item in dead_letters if item is not None]

    async def _bulk(self, items: list[_Item]) -> dict[str, Any]:
        body = b"".join(item.payload for item in items)
        self.stats.requests += 1
        self.stats.bytes_sent += len(body)
        try:
            # A bytes body passes through the client's NDJSON serializer unchanged.
            response = await self._client.bulk(operations=cast(Any, body), filter_path=_FILTER_PATH)
        except ApiError as exc:
            status = exc.meta.status
            if status in (400, 413) and len(items) > 1:
                raise _SplitRequest() from None  # find the one document Elasticsearch cannot take
            if status in (400, 413):
                error = exc.body.get("error", {}) if isinstance(exc.body, dict) else {}
                error = error if isinstance(error, dict) else {"reason": str(error)}
                error.setdefault("type", f"http_{status}")
                return {"errors": True, "items": [{items[0].doc.op: {"status": status, "error": error}}]}
            # 401/403 (a revoked key), 429, 5xx: wait and retry; the operator may fix the cause.
            raise _RetryRequest(f"HTTP {status}: {exc.message}") from None
        except TransportError as exc:
            raise _RetryRequest(f"{type(exc).__name__}: {exc.message}") from None
        answer: dict[str, Any] = response.body
        return answer

    def _settle(self, items: list[_Item], response: dict[str, Any]) -> tuple[list[_Item], list[_Item]]:
        """Finalize what the bulk answer settles; return the items to retry and those rejected."""
        if not response.get("errors"):
            for item in items:
                self._finish(item, Outcome.STORED)
            return [], []
        retry: list[_Item] = []
        rejected: list[_Item] = []
        for item, entry in zip(items, response["items"], strict=True):
            result = next(iter(entry.values()))
            status = result.get("status", 0)
            if status < 300:
                self._finish(item, Outcome.STORED)
            elif status == 409 and item.doc.op == "create":
                self._finish(item, Outcome.DUPLICATE)
            elif status in _RETRY_STATUSES:
                retry.append(item)
            else:
                error = result.get("error") or {}
                item.error = {"type": str(error.get("type", "unknown")), "reason": str(error.get("reason", "-"))}
                rejected.append(item)
        return retry, rejected

    def _dead_letter(self, item: _Item) -> _Item | None:
        """An item storing rejected ``item``'s original and reason in the dead-letter stream.

        None when ``item`` is itself a dead letter: then nothing more can be done but log it.
        """
        error = item.error or {"type": "unknown", "reason": "-"}
        if item.dead_letter_of is not None:
            log.error("The dead-letter index refused a document.", id=item.doc.id, **_fields(error))
            self._finish(item, Outcome.FAILED)
            return None
        original = item.doc
        log.warning(
            "Elasticsearch rejected a document; dead-lettering it.",
            index=original.index,
            id=original.id,
            **_fields(error),
        )
        source: dict[str, Any] = {
            "@timestamp": _now_iso(),
            "deadletter": {
                "reason": error["reason"],
                "error_type": error["type"],
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
        return _Item(doc, _encode(doc), item.call, item.position, dead_letter_of=item)

    def _finish(self, item: _Item, outcome: Outcome) -> None:
        original = item.dead_letter_of or item
        if item.dead_letter_of is not None and outcome.acknowledged:
            outcome = Outcome.DEAD_LETTERED  # stored, or already stored, in the dead-letter stream
        call = item.call
        call.outcomes[item.position] = outcome
        self.stats.count(outcome, original.doc.component)
        call.remaining -= 1
        self._unacked_bytes -= len(original.payload)
        self._room.set()
        if call.remaining == 0 and not call.future.done():
            call.future.set_result(call.outcomes)  # type: ignore[arg-type]  # all set by now


class _RetryRequest(Exception):
    """The whole bulk request must be sent again."""


class _SplitRequest(Exception):
    """The bulk request was too large: send each half on its own."""


def _encode(doc: Document) -> bytes:
    action = orjson.dumps({doc.op: {"_index": doc.index, "_id": doc.id}})
    return b"%b\n%b\n" % (action, source_json(doc.source))


def _fields(error: dict[str, str]) -> dict[str, Any]:
    return {"error": error["type"], "reason": error["reason"]}


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

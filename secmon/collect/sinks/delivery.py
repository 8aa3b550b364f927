"""Delivery: the one way both sinks get a batch of documents accepted by their receiver.

A sink supplies a :class:`Transport` (send one batch, read what became of each document) and
:class:`DeadLetters` (keep what the receiver refuses for good). :class:`Delivery` does the rest::

    batch ──Transport.send──▶ receiver (Elasticsearch's _bulk, a central secmon's _bulk)
      │ per document: stored · duplicate (its id is there already) · retry · Refusal
      │ whole batch:  RetryRequest (connection, timeout, 401/403, 429, 5xx): wait, send it again
      │               RequestRefused (400, 413): halve it; a batch of one is refused
      ▼
    Refusal ──DeadLetters.keep──▶ a final outcome, or a stand-in envelope delivered in its place

Retries wait as long as the receiver's ``Retry-After`` asks, or else with jittered exponential
backoff (``retry_initial`` doubling up to ``retry_max``), for as long as it takes: nothing is
dropped, the buffer upstream holds what waits. Each document's final outcome goes to the
:class:`Receipt` of its write call, which returns the call's outcomes in the order of its documents.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from secmon.log import get_logger
from secmon.store.documents import Document, Outcome

log = get_logger(__name__)

RETRY_AFTER_MAX = 3600.0  # seconds: a Retry-After beyond this is taken as this


@dataclass(slots=True)
class DeliveryStats:
    """Counters of one sink, for telemetry and benchmarks."""

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


class Receipt:
    """The outcomes of one write call's documents, in order; :meth:`wait` returns them once all are final."""

    __slots__ = ("_future", "_outcomes", "_remaining", "created")

    def __init__(self, count: int) -> None:
        self._future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self._outcomes: list[Outcome | None] = [None] * count
        self._remaining = count
        self.created = time.monotonic()  # when the call was made: a batch waits for its oldest
        if count == 0:
            self._future.set_result([])

    def settle(self, position: int, outcome: Outcome) -> None:
        """Record the final outcome of the call's document at ``position``."""
        self._outcomes[position] = outcome
        self._remaining -= 1
        if self._remaining == 0 and not self._future.done():
            self._future.set_result(self._outcomes)  # type: ignore[arg-type]  # all set by now

    def abandon(self) -> None:
        """Give up on the call: :meth:`wait` raises ``CancelledError`` (its source will send it again)."""
        if not self._future.done():
            self._future.cancel()

    async def wait(self) -> list[Outcome]:
        """Each document's outcome, in order, once every one is final."""
        return await self._future


@dataclass(slots=True, eq=False)
class Envelope:
    """One document on its way: what is sent for it, and where its outcome goes."""

    doc: Document
    payload: bytes  # the transport's encoding of it, made once however often it is sent
    receipt: Receipt
    position: int  # in its write call
    stands_for: Envelope | None = None  # a dead letter: the refused envelope it is delivered in place of


class Verdict(Enum):
    """What the receiver did with one document, short of refusing it (see :class:`Refusal`)."""

    STORED = "stored"
    DUPLICATE = "duplicate"  # its id was stored already: a replay, or a retry after a lost answer
    RETRY = "retry"  # not now (429, 5xx): send it again


@dataclass(frozen=True, slots=True)
class Refusal:
    """The receiver refused one document for good, with its reason (a mapping conflict, another agency's id)."""

    type: str
    reason: str


Result = Verdict | Refusal


class RetryRequest(Exception):
    """The receiver did not take the batch; send all of it again, after ``retry_after`` seconds if it said."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class RequestRefused(Exception):
    """The receiver refused the request as a whole (400, 413): it holds a document it cannot take, or is too large."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


class Transport(Protocol):
    """How a sink sends one batch and reads what became of each document.

    ``send`` returns one :data:`Result` per envelope, in order, or raises :class:`RetryRequest`
    or :class:`RequestRefused` for the batch as a whole. It counts ``requests`` and
    ``bytes_sent`` in the sink's stats, since only it knows what went over the wire.
    """

    receiver: str  # who it sends to, for the logs

    async def send(self, batch: Sequence[Envelope]) -> Sequence[Result]: ...


class DeadLetters(Protocol):
    """Where a sink keeps what its receiver refused for good.

    ``keep`` answers, for each refused envelope in order, its final outcome (``DEAD_LETTERED``,
    or ``FAILED`` where it could not be kept) or a stand-in envelope (``stands_for`` set) that
    :class:`Delivery` delivers in its place; a stand-in refused in turn fails.
    """

    async def keep(self, refused: Sequence[tuple[Envelope, Refusal]]) -> Sequence[Envelope | Outcome]: ...


@dataclass(slots=True)
class Backoff:
    """The waits between attempts at one batch: jittered, doubling from ``initial`` up to ``maximum``."""

    initial: float
    maximum: float
    _delay: float = field(init=False)

    def __post_init__(self) -> None:
        self._delay = self.initial

    def next(self, retry_after: float | None = None) -> float:
        """Seconds to wait before the next attempt: what the receiver asked for, else the backoff."""
        wait = min(retry_after, RETRY_AFTER_MAX) if retry_after is not None else self._delay * random.uniform(0.5, 1.0)
        self._delay = min(self._delay * 2, self.maximum)
        return wait


class Delivery:
    """Sends batches through a :class:`Transport` until every document in them is final; see the module docstring.

    ``on_final`` is called with each envelope handed in, once its outcome is settled (the bulk
    writer frees room for more documents then).
    """

    def __init__(
        self,
        transport: Transport,
        dead_letters: DeadLetters,
        stats: DeliveryStats,
        *,
        retry_initial: float,
        retry_max: float,
        sleep: Callable[[float], Any] = asyncio.sleep,
        on_final: Callable[[Envelope], None] | None = None,
    ) -> None:
        self._transport = transport
        self._dead_letters = dead_letters
        self.stats = stats
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._sleep = sleep
        self._on_final = on_final

    async def deliver(self, batch: Sequence[Envelope]) -> None:
        """Send ``batch`` until every envelope in it is settled."""
        pending = list(batch)
        backoff = Backoff(self._retry_initial, self._retry_max)
        while pending:
            retry_after: float | None = None
            whole_batch_retried: str | None = None  # why, when the receiver did not take the batch at all
            try:
                results = await self._transport.send(pending)
            except RequestRefused as exc:
                if len(pending) > 1:  # find the one document the receiver cannot take
                    half = len(pending) // 2
                    await asyncio.gather(self.deliver(pending[:half]), self.deliver(pending[half:]))
                    return
                results = [exc.refusal]
            except RetryRequest as exc:
                results = [Verdict.RETRY] * len(pending)
                retry_after = exc.retry_after
                whole_batch_retried = str(exc)
            retry, resend = await self._settle(pending, results)
            if retry:
                self.stats.retries += 1
                wait = backoff.next(retry_after)
                if whole_batch_retried is not None:
                    log.warning(
                        "The receiver did not take a batch; retrying.",
                        receiver=self._transport.receiver,
                        reason=whole_batch_retried,
                        delay=round(wait, 2),
                    )
                await self._sleep(wait)
            pending = retry + resend

    async def _settle(
        self, pending: list[Envelope], results: Sequence[Result]
    ) -> tuple[list[Envelope], list[Envelope]]:
        """Settle what ``results`` make final; return the envelopes to retry and the stand-ins to send."""
        retry: list[Envelope] = []
        refused: list[tuple[Envelope, Refusal]] = []
        for envelope, result in zip(pending, results, strict=True):
            if result is Verdict.STORED:
                self._finish(envelope, Outcome.STORED)
            elif result is Verdict.DUPLICATE:
                self._finish(envelope, Outcome.DUPLICATE)
            elif result is Verdict.RETRY:
                retry.append(envelope)
            elif envelope.stands_for is not None:  # a refused dead letter: nothing more can be done
                log.error(
                    "The dead-letter store refused a document.",
                    id=envelope.doc.id,
                    error=result.type,
                    reason=result.reason,
                )
                self._finish(envelope, Outcome.FAILED)
            else:
                refused.append((envelope, result))
        return retry, await self.dead_letter(refused) if refused else []

    async def dead_letter(self, refused: Sequence[tuple[Envelope, Refusal]]) -> list[Envelope]:
        """Hand ``refused`` to the dead-letter store and settle what it keeps; return the stand-ins to send.

        A sink calls it too for what it refuses itself, without sending (the forwarder's local documents).
        """
        stand_ins: list[Envelope] = []
        for (envelope, _), kept in zip(refused, await self._dead_letters.keep(refused), strict=True):
            if isinstance(kept, Outcome):
                self._finish(envelope, kept)
            else:
                stand_ins.append(kept)
        return stand_ins

    def _finish(self, envelope: Envelope, outcome: Outcome) -> None:
        original = envelope.stands_for or envelope
        if envelope.stands_for is not None and outcome.acknowledged:
            outcome = Outcome.DEAD_LETTERED  # stored, or already stored, where dead letters go
        original.receipt.settle(original.position, outcome)
        self.stats.count(outcome, original.doc.component)
        if self._on_final is not None:
            self._on_final(original)


def all_stored(batch: Sequence[Envelope]) -> list[Result]:
    """The results of a batch the receiver stored whole."""
    return [Verdict.STORED] * len(batch)


def bulk_results(items: object, batch: Sequence[Envelope]) -> list[Result]:
    """Each envelope's result from the ``items`` of an Elasticsearch-shaped ``_bulk`` answer, in order.

    ``[{"create": {"status": 201}}, {"create": {"status": 409, "error": {...}}}, ...]``: 2xx is
    stored, 409 on a ``create`` a duplicate, 429, 5xx and a missing status are retried, the rest refused.
    An answer that does not report every document is no answer: the batch is sent again.
    """
    if not isinstance(items, list) or len(items) != len(batch):
        raise RetryRequest("the answer does not report every document")
    results: list[Result] = []
    for envelope, entry in zip(batch, items, strict=True):
        answer = next(iter(entry.values()), None) if isinstance(entry, dict) else None
        answer = answer if isinstance(answer, dict) else {}
        status = answer.get("status")
        status = status if isinstance(status, int) else 0
        if 200 <= status < 300:
            results.append(Verdict.STORED)
        elif status == 409 and envelope.doc.op == "create":
            results.append(Verdict.DUPLICATE)
        elif status == 429 or status >= 500 or status == 0:
            results.append(Verdict.RETRY)
        else:
            results.append(refusal_of(status, answer.get("error")))
    return results


def refusal_of(status: int, error: object) -> Refusal:
    """The :class:`Refusal` an HTTP ``status`` and its Elasticsearch-shaped ``error`` ({type, reason}) give."""
    fields: Mapping[str, Any] = error if isinstance(error, dict) else {"reason": error} if error else {}
    return Refusal(str(fields.get("type") or f"http_{status}"), str(fields.get("reason") or f"HTTP {status}"))


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)

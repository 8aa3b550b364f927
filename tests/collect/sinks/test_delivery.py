"""The delivery loop itself, through a transport of the test's own (the extension point a sink implements).

What Elasticsearch and a central secmon answer is tested against the real servers beside this
module; here are the rules that hold whatever the receiver: order, stand-ins, backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from secmon.collect.sinks.delivery import (
    RETRY_AFTER_MAX,
    Backoff,
    Delivery,
    DeliveryStats,
    Envelope,
    Receipt,
    Refusal,
    RequestRefused,
    Result,
    Verdict,
)
from secmon.store import Document, Outcome

REFUSED = Refusal("mapper_parsing_exception", "not an ip")


class Scripted:
    """A transport answering by document id: ``results[id]`` (stored when absent); requests of more than one
    document are refused whole while ``split`` is set. The first half waits for the second to be answered."""

    receiver = "scripted"

    def __init__(self, results: dict[str, Result], *, split: bool = False) -> None:
        self.results = results
        self.split = split
        self.sent: list[list[str]] = []
        self.second_half_answered = asyncio.Event()

    async def send(self, batch: Sequence[Envelope]) -> list[Result]:
        ids = [envelope.doc.id for envelope in batch]
        self.sent.append(ids)
        if self.split and len(batch) > 1:
            raise RequestRefused(Refusal("http_413", "too large"))
        if ids == ["a"]:
            await self.second_half_answered.wait()
        if ids == ["b"]:
            self.second_half_answered.set()
        return [self.results.get(id, Verdict.STORED) for id in ids]


class StandIns:
    """Dead letters delivered through the same transport, under the id ``dl-<id>``."""

    async def keep(self, refused: Sequence[tuple[Envelope, Refusal]]) -> list[Envelope]:
        return [
            Envelope(Document("dead", f"dl-{e.doc.id}", {}), b"", e.receipt, e.position, stands_for=e)
            for e, _ in refused
        ]


def envelopes(receipt: Receipt, *ids: str) -> list[Envelope]:
    return [Envelope(Document("x", id, {}, component="test"), b"", receipt, n) for n, id in enumerate(ids)]


async def test_outcomes_come_back_in_the_order_of_the_documents_however_the_halves_finish() -> None:
    transport = Scripted({"b": Verdict.DUPLICATE}, split=True)
    finished: list[str] = []
    stats = DeliveryStats()
    delivery = Delivery(
        transport, StandIns(), stats, retry_initial=0.01, retry_max=0.1, on_final=lambda e: finished.append(e.doc.id)
    )
    receipt = Receipt(2)
    await delivery.deliver(envelopes(receipt, "a", "b"))

    assert finished == ["b", "a"]
    assert await receipt.wait() == [Outcome.STORED, Outcome.DUPLICATE]
    assert transport.sent == [["a", "b"], ["a"], ["b"]]


async def test_a_refused_document_is_dead_lettered_and_a_refused_dead_letter_fails() -> None:
    transport = Scripted({"p": REFUSED, "q": REFUSED, "dl-q": REFUSED})
    stats = DeliveryStats()
    finished: list[str] = []
    delivery = Delivery(
        transport, StandIns(), stats, retry_initial=0.01, retry_max=0.1, on_final=lambda e: finished.append(e.doc.id)
    )
    receipt = Receipt(3)
    await delivery.deliver(envelopes(receipt, "p", "q", "r"))

    assert await receipt.wait() == [Outcome.DEAD_LETTERED, Outcome.FAILED, Outcome.STORED]
    assert transport.sent == [["p", "q", "r"], ["dl-p", "dl-q"]]
    assert sorted(finished) == ["p", "q", "r"]  # each document handed in, once: never its stand-in
    assert (stats.stored, stats.dead_lettered, stats.failed, stats.retries) == (1, 1, 1, 0)
    assert stats.by_component["test"] == {Outcome.STORED: 1, Outcome.DEAD_LETTERED: 1, Outcome.FAILED: 1}


async def test_only_the_documents_to_retry_are_sent_again_after_a_backoff() -> None:
    transport = Scripted({"b": Verdict.RETRY})
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        transport.results.clear()

    delivery = Delivery(transport, StandIns(), DeliveryStats(), retry_initial=0.4, retry_max=1.0, sleep=sleep)
    receipt = Receipt(3)
    await delivery.deliver(envelopes(receipt, "a", "b", "c"))

    assert await receipt.wait() == [Outcome.STORED] * 3
    assert transport.sent == [["a", "b", "c"], ["b"]]
    assert len(waits) == 1 and 0.2 <= waits[0] <= 0.4


@pytest.mark.parametrize("attempt", range(6))
def test_the_backoff_doubles_up_to_its_maximum_with_jitter_and_yields_to_retry_after(attempt: int) -> None:
    backoff = Backoff(0.5, 3.0)
    waits = [backoff.next() for _ in range(attempt + 1)]
    expected = min(0.5 * 2**attempt, 3.0)
    assert expected / 2 <= waits[-1] <= expected
    assert backoff.next(retry_after=7.0) == 7.0
    assert backoff.next(retry_after=10 * RETRY_AFTER_MAX) == RETRY_AFTER_MAX

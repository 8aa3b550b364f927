"""One direction of a TCP connection put back in sequence order for the application parsers.

Segments are often reordered on real links, so a segment that arrives ahead of the next
expected byte waits in a small store until the bytes before it arrive; then it and every held
segment that now follows are delivered in order, their overlap with bytes already delivered
cut off. Old data (a retransmission) is dropped. The store is bounded
(:data:`MAX_HELD_SEGMENTS`, :data:`MAX_HELD_BYTES`): a hole that stays open while it fills is
a segment the capture missed, and the direction is given up (:attr:`TcpStream.gave_up`), as
it is when the connection ends with a hole still open (:attr:`TcpStream.held` not empty).
The store is made on the first segment that must wait: most connections never need one.

A parser may say how many of its next bytes it would discard unread (an HTTP body of known
length): a hole that lies wholly inside them is skipped at once, reported as a gap, instead of
waited for; bytes that fill it later are old data and dropped.

Sequence numbers are 32-bit and wrap: every comparison is the distance modulo 2**32, read as
ahead when below 2**31 and behind otherwise (RFC 9293 §3.4).
"""

from __future__ import annotations

from bisect import bisect_left

SEQ_MASK = 0xFFFFFFFF
_SEQ_MODULUS = 1 << 32
_HALF = 1 << 31

# A reordering is a few segments deep; a full store means a hole that will not fill. 64 KiB is
# the receive window without window scaling, and what TLS and HTTP heads are bounded to here.
MAX_HELD_SEGMENTS = 32
MAX_HELD_BYTES = 64 * 1024


class TcpStream:
    """The reassembly state of one direction: the next expected sequence number and the segments held ahead of it.

    The caller sets :attr:`next_seq` from a SYN (its number + 1). The common case, the segment
    that starts at :attr:`next_seq` with nothing held, is meant to be handled by the caller
    without a call (advance :attr:`next_seq` by its length); everything else goes through
    :meth:`accept`.
    """

    __slots__ = ("gave_up", "held", "next_seq")

    def __init__(self) -> None:
        self.next_seq: int | None = None  # unknown until the SYN or the first data segment
        self.held: list[tuple[int, bytes]] | None = None  # (seq, payload), nearest first
        self.gave_up = False

    def accept(self, seq: int, payload: bytes, skippable: int = 0) -> list[bytes | int]:
        """The pieces now deliverable in order after the segment ``seq``/``payload`` arrived.

        A piece is bytes, or an ``int``: a hole of that many bytes skipped because the parser
        said it would discard its next ``skippable`` bytes anyway; it comes first. Returns
        nothing while a hole waits, and gives up (:attr:`gave_up`) when the store overflows.
        """
        if self.gave_up or not payload:
            return []
        expected = self.next_seq
        if expected is None:
            self.next_seq = expected = seq  # no SYN seen: the first bytes start the stream
        ahead = (seq - expected) & SEQ_MASK
        pieces: list[bytes | int] = []
        if ahead >= _HALF:  # starts before the expected byte: a retransmission, wholly or partly old
            behind = _SEQ_MODULUS - ahead
            if behind >= len(payload):
                return pieces
            pieces.append(payload[behind:])
            expected = (seq + len(payload)) & SEQ_MASK
        elif ahead == 0:
            pieces.append(payload)
            expected = (seq + len(payload)) & SEQ_MASK
        else:
            held = self._hold(seq, payload, expected)
            hole = (held[0][0] - expected) & SEQ_MASK
            if hole > skippable:
                if len(held) > MAX_HELD_SEGMENTS or sum(len(data) for _, data in held) > MAX_HELD_BYTES:
                    self.give_up()
                return pieces
            pieces.append(hole)
            expected = (expected + hole) & SEQ_MASK
        self.next_seq = self._release(self.held, pieces, expected) if self.held else expected
        return pieces

    def give_up(self) -> None:
        """Stop reassembling this direction and let go of what it held."""
        self.gave_up = True
        self.held = None

    def _hold(self, seq: int, payload: bytes, expected: int) -> list[tuple[int, bytes]]:
        """Put a segment that arrived ahead of ``expected`` in the store, in sequence order; the store."""
        held = self.held
        if held is None:
            held = self.held = []
        where = bisect_left(held, (seq - expected) & SEQ_MASK, key=lambda item: (item[0] - expected) & SEQ_MASK)
        if where < len(held) and held[where][0] == seq:  # the same start again: keep the longer
            if len(held[where][1]) < len(payload):
                held[where] = (seq, payload)
        else:
            held.insert(where, (seq, payload))
        return held

    def _release(self, held: list[tuple[int, bytes]], pieces: list[bytes | int], expected: int) -> int:
        """Move the held segments that now follow ``expected`` to ``pieces``, overlaps cut off; the next expected."""
        taken = 0
        for seq, payload in held:
            ahead = (seq - expected) & SEQ_MASK
            if ahead and ahead < _HALF:
                break  # another hole
            taken += 1
            new = payload
            if ahead:  # partly or wholly delivered already (overlapping segments)
                behind = _SEQ_MODULUS - ahead
                if behind >= len(payload):
                    continue
                new = payload[behind:]
            pieces.append(new)
            expected = (expected + len(new)) & SEQ_MASK
        del held[:taken]
        return expected

"""IPv4 and IPv6 fragment reassembly, so a fragmented DNS answer or HTTP request still gives its event.

:class:`Defragmenter` holds the fragments of each datagram in progress and hands back the
reassembled transport bytes once every piece from offset 0 to the last fragment is there.
Datagrams are keyed as the receiving host keys them: IPv4 by source, destination,
identification and protocol (RFC 791); IPv6 by source, destination and the Fragment header's
32-bit identification, the protocol being the one the first fragment names (RFC 8200 4.5).

Policies, chosen so that what secmon reassembles is what a current host accepts and an
evasion attempt is seen rather than silently resolved one way:

* **Overlap: the datagram is discarded** (RFC 5722 for IPv6; current Linux treats IPv4 the
  same way). Stacks that do accept overlaps disagree on whose bytes win, so a monitor that picked
  one would show some hosts' reading and not others'. Fragments of that datagram arriving later
  are discarded too until its timeout, as RFC 5722 asks.
* **Exact duplicates are dropped, the datagram kept**: a fragment that lies wholly within bytes
  already held and carries the same bytes is a copy the network made (RFC 8200 4.5 allows this).
* **Time**: a datagram not complete ``timeout`` seconds (by packet time) after its first
  fragment is discarded; expiry is checked on each :meth:`Defragmenter.add`.
* **Bounds**: at most ``max_datagrams`` in progress and ``max_bytes`` held (fragment bytes plus a
  per-fragment bookkeeping cost, so floods of tiny fragments are bounded too), the oldest
  evicted first; at most ``max_fragments`` per datagram; a reassembled packet larger than
  65,535 bytes ("ping of death") is discarded.
* A datagram that went wrong for any reason (overlap, too large, inconsistent end, too many
  pieces) stays discarded until its timeout: its later fragments are counted under the same
  reason rather than starting a new datagram that could only time out.

Counts go to the caller's ``dropped`` counter (:attr:`DecodeStats.dropped`), one per fragment
frame that is not part of a delivered datagram, by reason:

* ``ip_fragment_timeout``: its datagram was still incomplete after ``timeout``;
* ``ip_fragment_incomplete``: still incomplete at :meth:`Defragmenter.flush` (end of capture);
* ``ip_fragment_overlap``: its datagram had overlapping fragments;
* ``ip_fragment_duplicate``: an exact copy of held bytes (its datagram goes on);
* ``ip_fragment_oversize``: its datagram would exceed 65,535 bytes;
* ``ip_fragment_invalid``: a fragment before the last not a multiple of 8 bytes long, data past
  the last fragment's end, or two last fragments that disagree;
* ``ip_fragment_too_many``: more than ``max_fragments`` pieces;
* ``ip_fragment_evicted``: pushed out, oldest first, by ``max_datagrams`` or ``max_bytes``.

:func:`~.decode.decode_frame` adds ``ip_fragment`` (no defragmenter given) and
``ip_fragment_truncated`` (a fragment cut by the snap length, which can never be rebuilt).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

MAX_DATAGRAM = 65535  # the IPv4 total length and IPv6 payload length fields are 16 bits
# What one held fragment costs beyond its bytes (tuple, bytes object, list slot), so that the
# memory bound holds against floods of 8-byte fragments as well as against large ones.
_FRAGMENT_COST = 96


@dataclass(slots=True, frozen=True)
class Datagram:
    """A reassembled datagram: its transport protocol and bytes, and what its fragments' frames weighed.

    ``frame_bytes`` is the sum of the frame lengths of every fragment that arrived for it,
    duplicates included, so that flows count the bytes that went over the wire.
    """

    proto: int
    payload: bytes
    frame_bytes: int


class _InProgress:
    """The pieces of one datagram: disjoint ``(start, end, data)`` sorted by ``start``."""

    __slots__ = ("failed", "frame_bytes", "frames", "held", "pieces", "proto", "started", "total")

    def __init__(self, started: float, proto: int) -> None:
        self.started = started
        self.proto = proto  # IPv6: -1 until the offset-0 fragment says
        self.pieces: list[tuple[int, int, bytes]] = []
        self.held = 0  # bytes in pieces; the datagram is complete when it equals total
        self.total = -1  # end of the last fragment (More Fragments clear), -1 until seen
        self.frame_bytes = 0  # every fragment's frame, duplicates too: what flows count
        self.frames = 0  # fragments held or failing it, counted under a reason if it is dropped
        self.failed = ""  # the drop reason once discarded: later fragments are counted under it


class Defragmenter:
    """IP datagrams rebuilt from their fragments, within bounded memory and time (see the module docstring)."""

    def __init__(
        self,
        timeout: float = 30.0,
        max_datagrams: int = 1024,
        max_bytes: int = 8 * 1024 * 1024,
        max_fragments: int = 256,
    ) -> None:
        self.timeout = timeout
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self.max_fragments = max_fragments
        self.reassembled = 0  # datagrams delivered
        self._held_bytes = 0
        # Insertion order is first-fragment order: the oldest datagram comes first (packet time
        # going back can put a younger one ahead; add() checks each datagram's age on use too).
        self._datagrams: dict[tuple[bytes, bytes, int, int], _InProgress] = {}

    @property
    def in_progress(self) -> int:
        """Datagrams waiting for fragments (and discarded ones remembered until their timeout)."""
        return len(self._datagrams)

    @property
    def held_bytes(self) -> int:
        """Memory the held fragments are charged for (bytes plus a per-fragment cost)."""
        return self._held_bytes

    def add(
        self,
        ts: float,
        src: bytes,
        dst: bytes,
        ident: int,
        proto: int,
        *,
        offset: int,
        more: bool,
        data: bytes,
        frame_length: int,
        header_length: int,
        dropped: Counter[str],
    ) -> Datagram | None:
        """Take one fragment; the :class:`Datagram` when it completes one, else ``None``.

        ``offset`` is in bytes, ``data`` the fragment's bytes after the IP header (IPv6: after the
        Fragment header), ``proto`` the IPv4 protocol or the IPv6 Fragment header's next header,
        ``header_length`` the bytes of header the reassembled packet's size limit also counts
        (IPv4: the header; IPv6: extension headers before the Fragment header). Fragments not
        delivered are counted in ``dropped``.
        """
        datagrams = self._datagrams
        if datagrams:
            self._expire(ts, dropped)
        # RFC 8200: IPv6 fragments of one packet may name different next headers; only the first counts.
        key_proto = proto if len(src) == 4 else -1
        key = (src, dst, ident, key_proto)
        datagram = datagrams.get(key)
        if datagram is not None and ts - datagram.started > self.timeout:
            self._drop(key, "ip_fragment_timeout", dropped)  # packet time went back: _expire missed it
            datagram = None
        if datagram is None:
            if len(datagrams) >= self.max_datagrams:
                self._evict_oldest(dropped)
            datagram = datagrams[key] = _InProgress(ts, key_proto)
        if datagram.failed:
            dropped[datagram.failed] += 1
            return None
        datagram.frame_bytes += frame_length
        datagram.frames += 1

        end = offset + len(data)
        if more and (not data or len(data) & 7):
            reason = "ip_fragment_invalid"  # RFC 8200: all but the last fragment carry 8-byte units
        elif end + header_length > MAX_DATAGRAM:
            reason = "ip_fragment_oversize"
        elif (datagram.total != -1 and end > datagram.total) or (
            not more and (datagram.total not in (-1, end) or (datagram.pieces and datagram.pieces[-1][1] > end))
        ):
            reason = "ip_fragment_invalid"  # past the end the last fragment gave, or a second, other end
        else:
            reason = self._insert(datagram, offset, data, more=more, proto=proto, dropped=dropped)
        if reason:
            self._fail(datagram, reason, dropped)
            return None
        if datagram.held == datagram.total:
            return self._complete(key, datagram)
        while self._held_bytes > self.max_bytes:
            self._evict_oldest(dropped)
        return None

    def _insert(
        self, datagram: _InProgress, offset: int, data: bytes, *, more: bool, proto: int, dropped: Counter[str]
    ) -> str:
        """Add a checked fragment to its datagram's pieces; the reason to discard the datagram, or ``""``."""
        end = offset + len(data)
        pieces = datagram.pieces
        index = len(pieces)
        while index and pieces[index - 1][0] >= end:  # usually in order: search from the back
            index -= 1
        first = index
        while first and pieces[first - 1][1] > offset:
            first -= 1
        if first < index:  # meets bytes already held
            if not _repeats(pieces, first, offset, end, data):
                return "ip_fragment_overlap"
            dropped["ip_fragment_duplicate"] += 1
            datagram.frames -= 1  # counted now, not again if the datagram is dropped
        elif len(pieces) >= self.max_fragments:
            return "ip_fragment_too_many"
        else:
            pieces.insert(index, (offset, end, data))
            datagram.held += len(data)
            self._held_bytes += len(data) + _FRAGMENT_COST
            if offset == 0 and datagram.proto == -1:
                datagram.proto = proto
        if not more:
            datagram.total = end
        return ""

    def expire(self, now: float, dropped: Counter[str]) -> None:
        """Discard the datagrams older than the timeout at ``now`` (a live capture's clock), counted.

        :meth:`add` does this by packet time; this is for when no fragment comes for a while.
        """
        self._expire(now, dropped)

    def flush(self, dropped: Counter[str]) -> None:
        """Discard every datagram still in progress (the capture ended), counted as ``ip_fragment_incomplete``."""
        while self._datagrams:
            self._drop(next(iter(self._datagrams)), "ip_fragment_incomplete", dropped)

    def _expire(self, now: float, dropped: Counter[str]) -> None:
        datagrams = self._datagrams
        limit = now - self.timeout
        while datagrams:
            key = next(iter(datagrams))
            datagram = datagrams[key]
            if datagram.started >= limit:
                return
            self._drop(key, "ip_fragment_timeout", dropped)

    def _complete(self, key: tuple[bytes, bytes, int, int], datagram: _InProgress) -> Datagram:
        payload = b"".join(piece[2] for piece in datagram.pieces)
        del self._datagrams[key]
        self._release(datagram)
        self.reassembled += 1
        return Datagram(datagram.proto, payload, datagram.frame_bytes)

    def _fail(self, datagram: _InProgress, reason: str, dropped: Counter[str]) -> None:
        """Discard the datagram's fragments, and remember why until its timeout (RFC 5722)."""
        dropped[reason] += datagram.frames
        self._release(datagram)
        datagram.failed = reason

    def _drop(self, key: tuple[bytes, bytes, int, int], reason: str, dropped: Counter[str]) -> None:
        """Forget a datagram; its fragments are counted under ``reason`` unless counted when it failed."""
        datagram = self._datagrams.pop(key)
        if not datagram.failed:
            dropped[reason] += datagram.frames
            self._release(datagram)

    def _evict_oldest(self, dropped: Counter[str]) -> None:
        self._drop(next(iter(self._datagrams)), "ip_fragment_evicted", dropped)

    def _release(self, datagram: _InProgress) -> None:
        self._held_bytes -= datagram.held + len(datagram.pieces) * _FRAGMENT_COST
        datagram.pieces = []
        datagram.held = 0


def _repeats(pieces: list[tuple[int, int, bytes]], index: int, start: int, end: int, data: bytes) -> bool:
    """Whether ``data`` at ``start`` repeats bytes already held: covered by contiguous pieces, equal."""
    while start < end:
        if index >= len(pieces):
            return False
        piece_start, piece_end, piece_data = pieces[index]
        if piece_start > start:  # a hole: part of the fragment is new, so it overlaps rather than repeats
            return False
        stop = min(end, piece_end)
        if piece_data[start - piece_start : stop - piece_start] != data[: stop - start]:
            return False
        data = data[stop - start :]
        start = stop
        index += 1
    return True

"""The disk buffer: a bounded, crash-safe queue of documents between the sources and Elasticsearch.

Sources acknowledge a message once it is in this buffer; a drainer sends the buffer's content
to Elasticsearch in order and acknowledges it here only once stored, after which it is deleted.
So an Elasticsearch outage fills the buffer instead of losing events, and a collector killed
at any moment resumes from what the buffer holds: frames not yet acknowledged are sent again,
and their deterministic ids make the second delivery a no-op.

On disk, under ``directory``::

    000000000001.seg   frames: <u32 length><u32 crc32><payload>, appended in order
    000000000002.seg   a new segment every ``segment_bytes``
    ack                "<segment> <offset>": the first frame not yet stored

Frames are written to the operating system at every append (a killed process loses nothing)
and fsync'ed every ``fsync_interval`` seconds (a power cut may lose that much). A torn frame
at the end of the last segment, left by a crash mid-write, is cut off when the buffer opens.
"""

from __future__ import annotations

import asyncio
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from secmon.log import get_logger

log = get_logger(__name__)

_HEADER = struct.Struct("<II")


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """A place in the buffer: a segment number and a byte offset in it."""

    segment: int
    offset: int


class DiskBuffer:
    """A FIFO of byte frames on disk; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = 1 << 30,
        segment_bytes: int = 32 << 20,
        fsync_interval: float = 1.0,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync_interval = fsync_interval
        directory.mkdir(parents=True, exist_ok=True)
        self._acked = self._read_ack()
        segments = sorted(int(p.stem) for p in directory.glob("*.seg"))
        for number in segments:
            if number < self._acked.segment:
                self._segment_path(number).unlink()  # fully stored before the last shutdown
        self._segments = [n for n in segments if n >= self._acked.segment] or [max(self._acked.segment, 1)]
        self._repair_tail()
        self._sizes = {
            n: self._segment_path(n).stat().st_size if self._segment_path(n).exists() else 0 for n in self._segments
        }
        if self._acked.segment not in self._sizes:
            self._acked = Position(self._segments[0], 0)
        self._writer: BinaryIO = self._segment_path(self._segments[-1]).open("ab")
        self._reader: BinaryIO | None = None
        self._reader_segment = 0
        self._read_at = self._acked
        self._readable = asyncio.Event()
        self._room = asyncio.Event()
        self._dirty = False
        self._fsync_task: asyncio.Task[None] | None = None
        if self.pending_bytes:
            self._readable.set()

    # -- size ------------------------------------------------------------------------------

    @property
    def pending_bytes(self) -> int:
        """Bytes appended and not yet acknowledged."""
        return sum(self._sizes.values()) - self._acked.offset

    @property
    def empty(self) -> bool:
        return self.pending_bytes == 0

    # -- appending -------------------------------------------------------------------------

    async def append(self, frames: Sequence[bytes]) -> None:
        """Append ``frames`` in order; waits while the buffer is full (backpressure)."""
        await self.wait_for_room(frames)
        self.append_nowait(frames)

    def try_append(self, frames: Sequence[bytes]) -> bool:
        """Append ``frames`` if they fit now; False (nothing appended) when the buffer is full."""
        if not self.has_room(frames):
            return False
        self.append_nowait(frames)
        return True

    def has_room(self, frames: Sequence[bytes]) -> bool:
        """Whether ``frames`` fit now. An empty buffer takes any batch, or a huge one could never go in."""
        size = sum(len(frame) + _HEADER.size for frame in frames)
        return not self.pending_bytes or self.pending_bytes + size <= self.max_bytes

    async def wait_for_room(self, frames: Sequence[bytes]) -> None:
        """Return once ``frames`` fit (backpressure).

        An ``append_nowait`` right after, with no await in between, takes the room found.
        """
        while not self.has_room(frames):
            self._room.clear()
            await self._room.wait()

    def append_nowait(self, frames: Sequence[bytes]) -> None:
        if self._sizes[self._segments[-1]] >= self.segment_bytes:
            self._roll()
        data = b"".join(_HEADER.pack(len(frame), zlib.crc32(frame)) + frame for frame in frames)
        self._writer.write(data)
        self._writer.flush()  # in the OS from here on: a killed process loses nothing
        self._sizes[self._segments[-1]] += len(data)
        self._dirty = True
        self._readable.set()
        if self._fsync_task is None:
            self._fsync_task = asyncio.get_running_loop().create_task(self._fsync_loop())

    def _roll(self) -> None:
        self._sync()
        self._writer.close()
        number = self._segments[-1] + 1
        self._segments.append(number)
        self._sizes[number] = 0
        self._writer = self._segment_path(number).open("ab")

    async def _fsync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.fsync_interval)
            if self._dirty:
                self._dirty = False
                await asyncio.to_thread(os.fsync, self._writer.fileno())

    def _sync(self) -> None:
        self._writer.flush()
        os.fsync(self._writer.fileno())
        self._dirty = False

    # -- reading ---------------------------------------------------------------------------

    async def wait_readable(self) -> None:
        """Wait until a frame not yet read is there."""
        while not self._has_unread():
            self._readable.clear()
            await self._readable.wait()

    def _has_unread(self) -> bool:
        last = self._segments[-1]
        return self._read_at.segment < last or self._read_at.offset < self._sizes.get(last, 0)

    def read(self, max_frames: int, max_bytes: int) -> tuple[list[bytes], Position]:
        """Up to ``max_frames`` frames after the last read, and the position just past them."""
        frames: list[bytes] = []
        size = 0
        while len(frames) < max_frames and size < max_bytes and self._has_unread():
            segment, offset = self._read_at.segment, self._read_at.offset
            end = self._sizes[segment]
            if offset >= end:
                self._read_at = Position(self._segments[self._segments.index(segment) + 1], 0)
                continue
            # One read of many frames: a seek and two reads per frame would be a syscall each.
            reader = self._reader_for(segment)
            reader.seek(offset)
            chunk = reader.read(min(end - offset, max(max_bytes - size, 1 << 16) + _HEADER.size))
            position = 0
            while len(frames) < max_frames and size < max_bytes and position + _HEADER.size <= len(chunk):
                length, crc = _HEADER.unpack_from(chunk, position)
                start, stop = position + _HEADER.size, position + _HEADER.size + length
                if offset + stop > end:
                    frame = None  # a length pointing past the segment's end: corrupt
                elif stop > len(chunk):
                    if frames:
                        self._read_at = Position(segment, offset + position)
                        return frames, self._read_at  # the next read starts at this frame
                    reader.seek(offset)  # the first frame is larger than the chunk: read all of it
                    chunk = reader.read(stop)
                    continue
                else:
                    frame = chunk[start:stop]
                if frame is None or zlib.crc32(frame) != crc:
                    # Only disk corruption can do this (torn tails are cut at open): skip the segment.
                    log.error(
                        "A buffer segment is corrupt; skipping its rest.", segment=segment, offset=offset + position
                    )
                    position = end - offset
                    break
                frames.append(frame)
                size += length
                position = stop
            self._read_at = Position(segment, offset + position)
        return frames, self._read_at

    def _reader_for(self, segment: int) -> BinaryIO:
        if self._reader is None or self._reader_segment != segment:
            if self._reader is not None:
                self._reader.close()
            self._reader = self._segment_path(segment).open("rb")
            self._reader_segment = segment
        return self._reader

    def rewind(self) -> None:
        """Read again from the first frame not acknowledged (after a failed delivery)."""
        self._read_at = self._acked
        if self._has_unread():
            self._readable.set()

    # -- acknowledging ---------------------------------------------------------------------

    def acknowledge(self, position: Position) -> None:
        """Everything before ``position`` is stored: forget it, and delete finished segments."""
        if position <= self._acked:
            return
        while self._segments[0] < position.segment:
            finished = self._segments.pop(0)
            del self._sizes[finished]
            if finished == self._reader_segment and self._reader is not None:
                self._reader.close()
                self._reader = None
            self._segment_path(finished).unlink(missing_ok=True)
        self._acked = position
        self._write_ack()
        self._room.set()

    def close(self) -> None:
        """Flush and fsync what was appended; the buffer can be opened again later."""
        if self._fsync_task is not None:
            self._fsync_task.cancel()
        self._sync()
        self._writer.close()
        if self._reader is not None:
            self._reader.close()

    # -- files -----------------------------------------------------------------------------

    def _segment_path(self, number: int) -> Path:
        return self.directory / f"{number:012d}.seg"

    def _read_ack(self) -> Position:
        try:
            segment, offset = (self.directory / "ack").read_text().split()
            return Position(int(segment), int(offset))
        except (OSError, ValueError):
            return Position(1, 0)

    def _write_ack(self) -> None:
        temporary = self.directory / "ack.tmp"
        temporary.write_text(f"{self._acked.segment} {self._acked.offset}\n")
        temporary.replace(self.directory / "ack")

    def _repair_tail(self) -> None:
        """Cut a torn frame off the end of the last segment (a crash in the middle of a write)."""
        path = self._segment_path(self._segments[-1])
        if not path.exists():
            return
        good = 0
        with path.open("rb") as segment:
            data = segment.read()
        while good + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, good)
            end = good + _HEADER.size + length
            if end > len(data) or zlib.crc32(data[good + _HEADER.size : end]) != crc:
                break
            good = end
        if good != len(data):
            log.warning("Cutting a torn write off the disk buffer.", segment=path.name, bytes=len(data) - good)
            with path.open("r+b") as segment:
                segment.truncate(good)

"""Read Windows event log files (.evtx) record by record, and the ``evtx`` source that collects them live.

The Rust ``evtx`` parser decodes the records; this module adds what a collector needs around it.
A file that is not an EVTX file at all raises :class:`~secmon.errors.IngestError`. Damage inside
a file (a truncated tail, a broken chunk, a record the parser cannot decode) is reported as an
:class:`EvtxReadFailure`, and reading carries on with the rest of the file.

The parser drops some damage without a word: a chunk cut short by truncation, the records
of a chunk after one whose header is broken, a chunk whose header is damaged. So
:func:`read_evtx` also reads the file header (checked against its checksum) and the chunk
headers itself (each one declares the first and last record id of its chunk) and, at the end,
reports the declared records the parser did not return, the ids missing between readable chunks
and those the file header declares beyond them.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import io
import itertools
import os
import re
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import evtx
import orjson

from secmon.collect.sources import SourceEnvironment
from secmon.collect.sources.checkpoints import load_checkpoints, matching_paths, save_checkpoints
from secmon.collect.sources.settings import EvtxSourceSettings
from secmon.collect.sources.stopping import finish_within
from secmon.collect.topology import Agency, Pipeline, SourceContext
from secmon.errors import IngestError
from secmon.events import Record
from secmon.log import get_logger

log = get_logger(__name__)

FILE_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
FILE_HEADER_SIZE = 4096
CHUNK_SIZE = 65536
# File header: next record id at byte 24, number of chunks at byte 42.
_NEXT_RECORD_ID = struct.Struct("<Q")
_CHUNK_COUNT = struct.Struct("<H")
# Chunk header: first and last record id at bytes 24 and 32.
_CHUNK_RECORD_IDS = struct.Struct("<QQ")
_CHUNK_HEADER_READ = 40
# File header: a CRC32 of its first 120 bytes at byte 124.
_HEADER_CHECKSUMMED = 120
_CHECKSUM = struct.Struct("<I")

# What the parser's error messages say about where they happened.
_CHUNK_NUMBER = re.compile(r"chunk number (\d+)")
_RECORD_NUMBER = re.compile(r"record number (\d+)")
_RECORD_ID_RANGE = re.compile(r"record IDs (\d+)\.\.(\d+)")


@dataclass(frozen=True, slots=True)
class EvtxRecord:
    """One event record: the file it came from, its record id and its parsed ``Event`` object.

    ``record_id`` is the file's own number for the record, unique within the file, so
    ``(path, record_id)`` names a record for a replay. It is not always System/EventRecordID:
    a log exported with "Save As" numbers its records from 1 again, and keeps the original
    numbers in EventRecordID (which becomes ``winlog.record_id``).
    """

    path: Path
    record_id: int
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EvtxReadFailure:
    """Part of a file that could not be read: why, and where when it is known."""

    path: Path
    reason: str
    record_id: int | None = None  # the first record concerned
    offset: int | None = None  # bytes from the start of the file: the chunk concerned, or where the file ends

    def __str__(self) -> str:
        """The failure as a hunt's or an import's summary lists it: the file, then why."""
        return f"{self.path}: {self.reason}"


OnReadFailure = Callable[[EvtxReadFailure], None]


@dataclass(frozen=True, slots=True)
class _Chunk:
    offset: int
    first_record_id: int
    last_record_id: int


@dataclass(frozen=True, slots=True)
class _Layout:
    size: int
    declared_chunks: int
    next_record_id: int
    chunks: tuple[_Chunk, ...]  # the chunks whose header could be read, in file order
    damaged_chunks: tuple[_Chunk, ...] = ()  # chunks with their magic but record ids no chunk can hold
    header_intact: bool = True  # the file header's checksum matches it


def read_evtx(path: Path, *, on_failure: OnReadFailure | None = None, threads: int = 0) -> Iterator[EvtxRecord]:
    """The records of the EVTX file ``path``; damaged parts go to ``on_failure`` (by default, logged).

    ``threads`` limits the parser's threads (0: one per core); a worker process of a parallel
    hunt takes 1, the cores being shared out among processes already.
    """
    plan = plan_evtx(path)
    return _whole(plan, plan.parts[0], on_failure or _log_failure, threads)


def _whole(plan: EvtxPlan, part: EvtxPart, report: OnReadFailure, threads: int) -> Iterator[EvtxRecord]:
    reading = PartReading(report)
    truncated = plan.report_before(reading)
    yield from read_evtx_part(part, reading, threads)
    if not reading.stopped:
        plan.report_after([reading.runs()], reading.reports, report, truncated=truncated)


@dataclass(frozen=True, slots=True)
class EvtxPart:
    """A run of an EVTX file's chunk slots, read on its own: one worker's share of a big file."""

    path: Path
    first_slot: int  # chunk slots are numbered from 0, the one right after the file header
    end_slot: int  # after the last slot of the part
    layout: _Layout  # the whole file's (the chunks of the part are read from it)

    @property
    def bytes(self) -> int:
        return (self.end_slot - self.first_slot) * CHUNK_SIZE

    @property
    def chunks(self) -> tuple[_Chunk, ...]:
        start, end = _slot_offset(self.first_slot), _slot_offset(self.end_slot)
        return tuple(chunk for chunk in self.layout.chunks if start <= chunk.offset < end)


@dataclass(frozen=True, slots=True)
class EvtxPlan:
    """An EVTX file cut into parts, and the reports that concern the whole file.

    A file's damage is reported as one reading of it reports it, whoever reads its parts:
    :meth:`report_before` (header, truncation) ahead of the parts' reports, in part order, then
    :meth:`report_after` (records no readable chunk holds) with every part's record ids.
    """

    path: Path
    layout: _Layout
    parts: tuple[EvtxPart, ...]

    def report_before(self, reading: PartReading) -> bool:
        """Report the file header's and the file's size's damage; True when it is truncated."""
        if not self.layout.header_intact:
            # Then what it says of chunks and record ids may be wrong, and some damage may go unseen.
            reading.report(
                EvtxReadFailure(self.path, "the file header is damaged: its checksum does not match", offset=0)
            )
        return _report_truncation(self.path, self.layout, reading.counted)

    def report_after(
        self, runs: Iterable[list[tuple[int, int]]], reported: int, report: OnReadFailure, *, truncated: bool
    ) -> None:
        """Report the records no part returned nor reported; ``runs``: each part's ids, :meth:`PartReading.runs`.

        ``reported``: the damage reports counted so far, the file's and its parts'.
        """
        merged = list(_runs_union(run for part_runs in runs for run in part_runs))
        _report_unseen(self.path, self.layout, merged, report, truncated=truncated, reported=reported > 0)


def plan_evtx(path: Path, *, part_bytes: int | None = None) -> EvtxPlan:
    """``path`` cut into parts of about ``part_bytes`` (None: one part); IngestError if it is not EVTX."""
    layout = _read_layout(path)
    slots = max(1, -(-(layout.size - FILE_HEADER_SIZE) // CHUNK_SIZE))
    per_part = slots if part_bytes is None else max(1, part_bytes // CHUNK_SIZE)
    cuts = range(0, slots, per_part)
    return EvtxPlan(path, layout, tuple(EvtxPart(path, start, min(start + per_part, slots), layout) for start in cuts))


class PartReading:
    """What reading one part leaves for its file's reports: the record ids accounted for, and damage seen."""

    __slots__ = ("accounted", "report", "reports", "stopped")

    def __init__(self, report: OnReadFailure) -> None:
        self.report = report
        self.accounted: set[int] = set()  # record ids returned, or already reported as failed
        self.reports = 0  # of damage to chunks and records
        self.stopped = False  # the parser went round in circles: what it did not return is not worth reporting

    def counted(self, failure: EvtxReadFailure) -> None:
        self.reports += 1
        self.report(failure)

    def runs(self) -> list[tuple[int, int]]:
        """The accounted ids as (first, last) runs: little to send, even for a part of millions of records."""
        return list(_runs(sorted(self.accounted)))


def read_evtx_part(part: EvtxPart, reading: PartReading, threads: int = 0) -> Iterator[EvtxRecord]:
    """The records of one part of a file (its chunks' damage reported to ``reading``).

    The parser reads a view of the file made of its header and the part's chunk slots, so a
    part of a file of many gigabytes costs its own share of reading only.
    """
    path = part.path
    whole = part.first_slot == 0 and _slot_offset(part.end_slot) >= part.layout.size
    try:
        source: str | _PartView = str(path) if whole else _PartView(path, part)
        parser = evtx.PyEvtxParser(source, number_of_threads=threads, indent=False)
    except (RuntimeError, OSError) as error:
        raise IngestError(f"{path}: cannot be read as EVTX: {error}") from error
    yield from _records(part, parser.records_json(), reading)


def _slot_offset(slot: int) -> int:
    return FILE_HEADER_SIZE + slot * CHUNK_SIZE


class _PartView(io.RawIOBase):
    """A file-like EVTX file made of ``part.path``'s header and the part's chunk slots, read on demand."""

    def __init__(self, path: Path, part: EvtxPart) -> None:
        super().__init__()
        self._file = path.open("rb")
        self._start = _slot_offset(part.first_slot)
        self._size = FILE_HEADER_SIZE + min(part.bytes, part.layout.size - self._start)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        if self._position >= self._size:
            return 0
        if self._position < FILE_HEADER_SIZE:  # the header, and nothing past it in one read
            self._file.seek(self._position)
            wanted = min(len(buffer), FILE_HEADER_SIZE - self._position)
        else:
            self._file.seek(self._start + self._position - FILE_HEADER_SIZE)
            wanted = min(len(buffer), self._size - self._position)
        data = self._file.read(wanted)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()


def _read_layout(path: Path) -> _Layout:
    """The file header and every readable chunk header, or IngestError when ``path`` is not an EVTX file."""
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            header = file.read(FILE_HEADER_SIZE)
            if len(header) < FILE_HEADER_SIZE or not header.startswith(FILE_MAGIC):
                found = header[: len(FILE_MAGIC)]
                raise IngestError(
                    f"{path}: not an EVTX file: it does not start with an EVTX file header"
                    f" ({len(header)} bytes, starting with {found!r}; expected {FILE_MAGIC!r})"
                )
            chunks: list[_Chunk] = []
            damaged: list[_Chunk] = []
            for offset in range(FILE_HEADER_SIZE, size, CHUNK_SIZE):
                file.seek(offset)
                chunk_header = file.read(_CHUNK_HEADER_READ)
                if len(chunk_header) < _CHUNK_HEADER_READ or not chunk_header.startswith(CHUNK_MAGIC):
                    continue  # unused (preallocated) space, or a chunk too damaged to say what it held
                first, last = _CHUNK_RECORD_IDS.unpack_from(chunk_header, 24)
                (chunks if _plausible_record_ids(first, last) else damaged).append(_Chunk(offset, first, last))
    except OSError as error:
        raise IngestError(f"{path}: cannot be read: {error}") from error
    return _Layout(
        size=size,
        declared_chunks=_CHUNK_COUNT.unpack_from(header, 42)[0],
        next_record_id=_NEXT_RECORD_ID.unpack_from(header, 24)[0],
        chunks=tuple(chunks),
        damaged_chunks=tuple(damaged),
        header_intact=zlib.crc32(header[:_HEADER_CHECKSUMMED]) == _CHECKSUM.unpack_from(header, 124)[0],
    )


def _records(part: EvtxPart, raw_records: Any, reading: PartReading) -> Iterator[EvtxRecord]:
    path, accounted, counted = part.path, reading.accounted, reading.counted
    chunks = part.chunks
    # Each parser error costs it a chunk or a record; more errors than that means it is going round in circles.
    errors_left = part.bytes // CHUNK_SIZE + sum(c.last_record_id - c.first_record_id + 1 for c in chunks) + 1
    while True:
        try:
            raw = next(raw_records)
        except StopIteration:
            break
        except (RuntimeError, OSError) as error:
            counted(_parser_failure(path, error, accounted, part.first_slot))
            errors_left -= 1
            if errors_left == 0:
                counted(
                    EvtxReadFailure(path, "stopped reading: the parser reports more errors than the file has parts")
                )
                reading.stopped = True
                return
            continue
        record_id = raw.get("event_record_id")
        try:
            event = orjson.loads(raw["data"])["Event"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            event = None
        if not isinstance(record_id, int) or not isinstance(event, dict):
            counted(
                EvtxReadFailure(path, "the parser returned a record without an Event object", _int_or_none(record_id))
            )
            continue
        accounted.add(record_id)
        yield EvtxRecord(path, record_id, event)
    for chunk in chunks:
        for first, last in _runs(
            i for i in range(chunk.first_record_id, chunk.last_record_id + 1) if i not in accounted
        ):
            counted(
                EvtxReadFailure(
                    path,
                    f"records {first}..{last} are declared by the chunk at byte {chunk.offset}"
                    " but the parser did not return them (a damaged record or a truncated chunk)",
                    record_id=first,
                    offset=chunk.offset,
                )
            )


def _report_unseen(
    path: Path,
    layout: _Layout,
    accounted: list[tuple[int, int]],
    report: OnReadFailure,
    *,
    truncated: bool,
    reported: bool,
) -> None:
    """Report records that neither came back nor were reported: the parser skips some damage without a word.

    A log's record ids follow each other: ids missing between two readable chunks, or after the
    last one up to the next id the file header declares, were in a chunk that could not be read
    (one whose header is damaged, say). A file in which no chunk at all is found says so.
    """
    damaged = ", ".join(str(chunk.offset) for chunk in layout.damaged_chunks)
    hint = f" (damaged chunk headers at byte {damaged})" if damaged else ""
    known = sorted(layout.chunks, key=lambda chunk: chunk.first_record_id)
    gaps = [
        (before.last_record_id + 1, after.first_record_id - 1)
        for before, after in itertools.pairwise(known)
        if before.last_record_id + 1 < after.first_record_id
    ]
    # ``accounted``: sorted runs of the ids returned or reported; a run ending in [low, high] or
    # beyond it, and starting at or before high, holds one of them.
    ends = [last for _, last in accounted]
    for low, high in gaps:
        at = bisect.bisect_left(ends, low)
        if at == len(accounted) or accounted[at][0] > high:  # none of them came back
            report(
                EvtxReadFailure(path, f"records {low}..{high} are in no chunk that could be read{hint}", record_id=low)
            )
    seen = max(max((chunk.last_record_id for chunk in known), default=0), max(ends, default=0))
    if not truncated and layout.next_record_id - 1 > seen:
        report(
            EvtxReadFailure(
                path,
                f"records {seen + 1}..{layout.next_record_id - 1}, which the file header declares, are in no chunk"
                f" that could be read{hint}",
                record_id=seen + 1,
            )
        )
    elif not (accounted or reported or known or damaged) and _holds_data_after_header(path):
        report(
            EvtxReadFailure(
                path,
                f"no chunk could be found in the {layout.size - FILE_HEADER_SIZE} bytes after the file header",
                offset=FILE_HEADER_SIZE,
            )
        )


def _holds_data_after_header(path: Path) -> bool:
    """Whether anything but zeros (space preallocated for chunks) follows the file header."""
    with path.open("rb") as file:
        file.seek(FILE_HEADER_SIZE)
        while block := file.read(CHUNK_SIZE):
            if block.strip(b"\x00"):
                return True
    return False


def _report_truncation(path: Path, layout: _Layout, report: OnReadFailure) -> bool:
    """Report a file shorter than its header says (the parser silently skips what is cut off); True if it is."""
    expected = FILE_HEADER_SIZE + layout.declared_chunks * CHUNK_SIZE
    if layout.size >= expected:
        return False
    report(
        EvtxReadFailure(
            path,
            f"the file is truncated: its header declares {layout.declared_chunks} chunks ({expected} bytes)"
            f" but it has {layout.size} bytes",
            offset=layout.size,
        )
    )
    # Records of chunks wholly cut off: their headers are gone, but the file header knows the last id.
    last_known = max((chunk.last_record_id for chunk in layout.chunks), default=0)
    if layout.next_record_id - 1 > last_known:
        report(
            EvtxReadFailure(
                path,
                f"records {last_known + 1}..{layout.next_record_id - 1} were in chunks beyond the end of the file",
                record_id=last_known + 1,
                offset=layout.size,
            )
        )
    return True


def _parser_failure(path: Path, error: BaseException, accounted: set[int], first_slot: int = 0) -> EvtxReadFailure:
    """An EvtxReadFailure from the parser's error, with the chunk or record its message names.

    The parser numbers the chunks of what it reads: of a part, from ``first_slot`` on.
    """
    reason = str(error)
    offset = record_id = None
    if match := _CHUNK_NUMBER.search(reason):
        number = first_slot + int(match[1])
        offset = _slot_offset(number)
        if first_slot:
            reason = _CHUNK_NUMBER.sub(f"chunk number {number}", reason, count=1)
    if match := _RECORD_ID_RANGE.search(reason):
        record_id, last = int(match[1]), int(match[2])
        # The parser takes the range from the chunk's header, which may be the damage itself
        # (1..2**64 would be a set no memory holds): only a range a chunk can hold is noted.
        if _plausible_record_ids(record_id, last):
            accounted.update(range(record_id, last + 1))
    elif match := _RECORD_NUMBER.search(reason):
        record_id = int(match[1])  # the parser numbers records by their record id
        accounted.add(record_id)
    return EvtxReadFailure(path, reason, record_id=record_id, offset=offset)


def _plausible_record_ids(first: int, last: int) -> bool:
    """Whether a chunk header's record id range can be real: a chunk cannot hold more records than bytes."""
    return first <= last < first + CHUNK_SIZE


def _runs_union(runs: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Runs of ids (from several parts, overlapping or not) as sorted, disjoint runs."""
    first = last = None
    for low, high in sorted(runs):
        if last is not None and low <= last + 1:
            last = max(last, high)
            continue
        if first is not None and last is not None:
            yield first, last
        first, last = low, high
    if first is not None and last is not None:
        yield first, last


def _runs(ids: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Ascending ids as (first, last) runs of consecutive ids."""
    first = last = None
    for i in ids:
        if last is not None and i == last + 1:
            last = i
            continue
        if first is not None and last is not None:
            yield first, last
        first = last = i
    if first is not None and last is not None:
        yield first, last


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _log_failure(failure: EvtxReadFailure) -> None:
    log.warning(
        "Part of an EVTX file could not be read.",
        file=str(failure.path),
        record_id=failure.record_id,
        offset=failure.offset,
        reason=failure.reason,
    )


# -- the evtx source ---------------------------------------------------------------------------

_BATCH = 500
_RECORD_HEADER = struct.Struct("<4sI")  # magic, size
_RECORD_MAGIC = b"\x2a\x2a\x00\x00"
_MAX_SETTLE_WAIT = 30.0  # seconds: a file written to at every poll is read anyway after this long
_MAX_REPORTED = 1000  # failures remembered per file, so that each is dead-lettered once


@dataclass(slots=True)
class _Pass:
    """One reading of a file: what it is, and where its checkpoint stood when the reading began."""

    path: Path
    key: str  # dev:inode:fingerprint, the checkpoint's key and the prefix of each record's key
    floor: int  # records up to this id were stored by an earlier pass
    ordered: bool  # chunks in ascending record-id order: the checkpoint may advance batch by batch


class EvtxSource:
    """Polls ``settings.include`` for EVTX files and submits each record once, including records added later.

    A file is read when it has not changed (size, mtime) since the previous poll, so a copy in
    progress is read once complete. It is known by device, inode and a fingerprint (a hash of its
    first record, which appending does not change): a rename keeps its checkpoint, while a file
    rewritten in place or replaced (a new inode) is read from its start. The checkpoint, the last
    record id stored, moves only after the pipeline accepted the records; each record's key is
    ``dev:inode:fingerprint:record_id``, so a record read again after a crash keeps its document id.
    """

    def __init__(self, component: str, settings: EvtxSourceSettings, pipeline: Pipeline, state_dir: Path) -> None:
        self.component = component
        self.settings = settings
        self.pipeline = pipeline
        agency = Agency(settings.agency, settings.agency_name) if settings.agency else None
        self.context = SourceContext(component, settings.format, agency, settings.dataset)
        self.checkpoint_path = state_dir / "checkpoints" / f"{component}.json"
        self._checkpoints = load_checkpoints(self.checkpoint_path)
        self._last_seen: dict[str, tuple[int, int, int, int]] = {}  # path: (dev, inode, size, mtime) at the last poll
        self._last_read: dict[str, tuple[int, int, int, int]] = {}  # path: the same, when it was last read
        self._changing_since: dict[str, float] = {}  # path: when it was first seen changing, unread
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"evtx-source-{self.component}")

    async def stop(self) -> None:
        """Finish the file being read, for up to ``stop_grace`` seconds; files not begun are read at the next start."""
        await finish_within(
            self._task,
            self._stopping,
            self.settings.stop_grace,
            component=self.component,
            cut_short="Stopping before an EVTX file was read to its end; it is read at the next start.",
        )
        self._save_checkpoints()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.poll()
            except Exception as exc:  # a bug on one poll must not end the source: log, count, poll again
                self.pipeline.telemetry.errors.labels(self.component, "read").inc()
                log.error("Polling EVTX files failed.", component=self.component, error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.poll_interval)

    async def poll(self) -> int:
        """Read the files that changed and then settled; returns the number of records submitted."""
        submitted = 0
        present: set[str] = set()
        seen: dict[str, tuple[int, int, int, int]] = {}
        for path in self._paths():
            try:
                stat = os.stat(path)
            except OSError:
                continue
            signature = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
            seen[path] = signature
            present.add(f"{stat.st_dev}:{stat.st_ino}:")
            if self._last_read.get(path) == signature:
                continue  # nothing new
            if self._last_seen.get(path) != signature:
                # Still being written (a copy in progress): wait until it settles, but not for ever.
                since = self._changing_since.setdefault(path, time.monotonic())
                if time.monotonic() - since < _MAX_SETTLE_WAIT:
                    continue
            if self._stopping.is_set():
                continue  # stopping: a file not begun is read at the next start
            self._changing_since.pop(path, None)
            submitted += await self._read(Path(path), stat)
            self._last_read[path] = signature
        self._last_seen = seen
        self._changing_since = {path: since for path, since in self._changing_since.items() if path in seen}
        self._last_read = {path: signature for path, signature in self._last_read.items() if path in seen}
        for key in [key for key in self._checkpoints if _identity(key) not in present]:
            del self._checkpoints[key]  # the file is gone (or replaced by a new inode)
        self._save_checkpoints()
        return submitted

    def _paths(self) -> list[str]:
        return [p for p in matching_paths(self.settings.include, self.settings.exclude) if os.path.isfile(p)]

    async def _read(self, path: Path, stat: os.stat_result) -> int:
        identity = f"{stat.st_dev}:{stat.st_ino}:"
        try:
            key, ordered = await asyncio.to_thread(_identify, path)
        except IngestError as exc:
            self._refuse(path, identity, str(exc))
            return 0
        key = identity + key
        for other in [k for k in self._checkpoints if k.startswith(identity) and k != key]:
            del self._checkpoints[other]  # rewritten in place: the old content's checkpoint is void
        checkpoint = self._checkpoints.setdefault(key, {"path": str(path), "last": 0, "reported": []})
        checkpoint["path"] = str(path)
        current = _Pass(path, key, int(checkpoint["last"]), ordered)
        failures: list[EvtxReadFailure] = []
        try:
            records = await asyncio.to_thread(read_evtx, path, on_failure=failures.append)
        except IngestError as exc:
            self._refuse(path, identity, str(exc))
            return 0
        submitted = 0
        highest = current.floor
        while True:
            batch = await asyncio.to_thread(_take, records, current.floor)
            await self._report(current, checkpoint, failures)
            if batch is None:
                break
            await self.pipeline.submit([self._record(current, record) for record in batch], self.context)
            submitted += len(batch)
            ids = [record.record_id for record in batch]
            current.ordered = current.ordered and ids == sorted(ids) and ids[0] > highest
            highest = max(highest, *ids)
            if current.ordered:  # every record up to `highest` is stored: a restart may skip them
                checkpoint["last"] = highest
                self._save_checkpoints()
        checkpoint["last"] = highest
        if submitted:
            log.info("Read an EVTX file.", component=self.component, path=str(path), records=submitted, last=highest)
        return submitted

    def _record(self, current: _Pass, record: EvtxRecord) -> Record:
        # Message and origin as `secmon import evtx` makes them, so live and imported events are the same.
        origin = {"log": {"file": {"path": str(current.path)}}}
        key = f"{current.key}:{record.record_id}"
        # The JSON is the content the id is made of, and event.original; the parser takes the object.
        return Record(orjson.dumps(record.event).decode(), origin, time.time(), key=key, document=record.event)

    async def _report(self, current: _Pass, checkpoint: dict[str, Any], failures: list[EvtxReadFailure]) -> None:
        """Dead-letter the damage the reader found, each piece once across passes and restarts."""
        reported: list[str] = checkpoint["reported"]
        for failure in failures:
            if failure.record_id is not None and failure.record_id <= current.floor:
                continue  # reported when the records up to the checkpoint were read
            signature = f"{failure.record_id}:{failure.offset}:{failure.reason}"
            if signature in reported:
                continue
            reported.append(signature)
            del reported[:-_MAX_REPORTED]
            _log_failure(failure)
            where = f"{failure.path}" + (f" record {failure.record_id}" if failure.record_id is not None else "")
            where += f" byte {failure.offset}" if failure.offset is not None else ""
            await self.pipeline.reject("", failure.reason, self.context, where)
        failures.clear()

    def _refuse(self, path: Path, identity: str, reason: str) -> None:
        """Skip a file that is not EVTX, saying so once (again only if it changes)."""
        key = f"{identity}refused"
        signature = self._last_seen.get(str(path))
        if self._checkpoints.get(key, {}).get("signature") == list(signature or ()):
            return
        self._checkpoints[key] = {"path": str(path), "signature": list(signature or ())}
        self.pipeline.telemetry.errors.labels(self.component, "read").inc()
        log.warning("Skipping a file that is not EVTX.", component=self.component, path=str(path), reason=reason)

    # -- checkpoints -----------------------------------------------------------------------

    def _save_checkpoints(self) -> None:
        save_checkpoints(self.checkpoint_path, self._checkpoints)


def _identify(path: Path) -> tuple[str, bool]:
    """A fingerprint of the file's first record and whether its chunks are in record-id order.

    IngestError when ``path`` is not an EVTX file.
    """
    layout = _read_layout(path)
    ordered = all(a.last_record_id < b.first_record_id for a, b in itertools.pairwise(layout.chunks))
    first = FILE_HEADER_SIZE + 512  # the first record follows the first chunk's 512-byte header
    with path.open("rb") as file:
        file.seek(first)
        header = file.read(_RECORD_HEADER.size)
        record = b""
        if len(header) == _RECORD_HEADER.size:
            magic, size = _RECORD_HEADER.unpack(header)
            if magic == _RECORD_MAGIC and size <= CHUNK_SIZE - 512:
                file.seek(first)
                record = file.read(size)
    return hashlib.blake2b(record, digest_size=8).hexdigest(), ordered


def _take(records: Iterator[EvtxRecord], floor: int) -> list[EvtxRecord] | None:
    """Up to a batch of the records after ``floor``; None when there are no more (run in a thread)."""
    batch: list[EvtxRecord] = []
    for record in records:
        if record.record_id > floor:
            batch.append(record)
            if len(batch) >= _BATCH:
                return batch
    return batch or None


def _identity(key: str) -> str:
    """``dev:inode:`` of a checkpoint key."""
    dev, inode, _ = key.split(":", 2)
    return f"{dev}:{inode}:"


def build(component: str, settings: EvtxSourceSettings, environment: SourceEnvironment) -> EvtxSource:
    """The :data:`~secmon.collect.sources.SOURCES` entry of ``type: evtx``."""
    return EvtxSource(component, settings, environment.pipeline, environment.state_dir)

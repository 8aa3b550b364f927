"""Read Windows event log files (.evtx) record by record.

The Rust ``evtx`` parser decodes the records; this module adds what a collector needs around it.
A file that is not an EVTX file at all raises :class:`~secmon.errors.IngestError`. Damage inside
a file (a truncated tail, a broken chunk, a record the parser cannot decode) is reported as an
:class:`EvtxReadFailure`, and reading carries on with the rest of the file.

The parser drops some damage without a word: a chunk cut short by truncation, or the records
of a chunk after one whose header is broken. So :func:`read_evtx` also reads the chunk headers
itself (each one declares the first and last record id of its chunk) and, at the end, reports
the declared records the parser did not return.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import evtx
import orjson

from secmon.errors import IngestError
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


def read_evtx(path: Path, *, on_failure: OnReadFailure | None = None) -> Iterator[EvtxRecord]:
    """The records of the EVTX file ``path``; damaged parts go to ``on_failure`` (by default, logged)."""
    layout = _read_layout(path)
    try:
        # indent=False: compact JSON is less text to decode. Threads: the parser's default (one per core).
        parser = evtx.PyEvtxParser(str(path), indent=False)
    except (RuntimeError, OSError) as error:
        raise IngestError(f"{path}: cannot be read as EVTX: {error}") from error
    return _records(path, parser.records_json(), layout, on_failure or _log_failure)


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
            chunks = []
            for offset in range(FILE_HEADER_SIZE, size, CHUNK_SIZE):
                file.seek(offset)
                chunk_header = file.read(_CHUNK_HEADER_READ)
                if len(chunk_header) < _CHUNK_HEADER_READ or not chunk_header.startswith(CHUNK_MAGIC):
                    continue  # unused (preallocated) space, or a chunk too damaged to say what it held
                first, last = _CHUNK_RECORD_IDS.unpack_from(chunk_header, 24)
                if first <= last < first + CHUNK_SIZE:  # a chunk cannot hold more records than bytes
                    chunks.append(_Chunk(offset, first, last))
    except OSError as error:
        raise IngestError(f"{path}: cannot be read: {error}") from error
    return _Layout(
        size=size,
        declared_chunks=_CHUNK_COUNT.unpack_from(header, 42)[0],
        next_record_id=_NEXT_RECORD_ID.unpack_from(header, 24)[0],
        chunks=tuple(chunks),
    )


def _records(path: Path, raw_records: Any, layout: _Layout, report: OnReadFailure) -> Iterator[EvtxRecord]:
    accounted: set[int] = set()  # record ids returned, or already reported as failed
    _report_truncation(path, layout, report)
    # Each parser error costs it a chunk or a record; more errors than that means it is going round in circles.
    errors_left = layout.size // CHUNK_SIZE + sum(c.last_record_id - c.first_record_id + 1 for c in layout.chunks) + 1
    while True:
        try:
            raw = next(raw_records)
        except StopIteration:
            break
        except (RuntimeError, OSError) as error:
            failure = _parser_failure(path, error, accounted)
            report(failure)
            errors_left -= 1
            if errors_left == 0:
                report(EvtxReadFailure(path, "stopped reading: the parser reports more errors than the file has parts"))
                return
            continue
        record_id = raw.get("event_record_id")
        try:
            event = orjson.loads(raw["data"])["Event"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            event = None
        if not isinstance(record_id, int) or not isinstance(event, dict):
            report(
                EvtxReadFailure(path, "the parser returned a record without an Event object", _int_or_none(record_id))
            )
            continue
        accounted.add(record_id)
        yield EvtxRecord(path, record_id, event)
    for chunk in layout.chunks:
        for first, last in _runs(
            i for i in range(chunk.first_record_id, chunk.last_record_id + 1) if i not in accounted
        ):
            report(
                EvtxReadFailure(
                    path,
                    f"records {first}..{last} are declared by the chunk at byte {chunk.offset}"
                    " but the parser did not return them (a damaged record or a truncated chunk)",
                    record_id=first,
                    offset=chunk.offset,
                )
            )


def _report_truncation(path: Path, layout: _Layout, report: OnReadFailure) -> None:
    """Report a file shorter than its header says: the parser silently skips what is cut off."""
    expected = FILE_HEADER_SIZE + layout.declared_chunks * CHUNK_SIZE
    if layout.size >= expected:
        return
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


def _parser_failure(path: Path, error: BaseException, accounted: set[int]) -> EvtxReadFailure:
    """An EvtxReadFailure from the parser's error, with the chunk or record its message names."""
    reason = str(error)
    offset = record_id = None
    if match := _CHUNK_NUMBER.search(reason):
        offset = FILE_HEADER_SIZE + int(match[1]) * CHUNK_SIZE
    if match := _RECORD_ID_RANGE.search(reason):
        record_id = int(match[1])
        accounted.update(range(record_id, int(match[2]) + 1))
    elif match := _RECORD_NUMBER.search(reason):
        record_id = int(match[1])  # the parser numbers records by their record id
        accounted.add(record_id)
    return EvtxReadFailure(path, reason, record_id=record_id, offset=offset)


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

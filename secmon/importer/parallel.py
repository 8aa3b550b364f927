"""``secmon import --jobs N``: worker processes make and match the documents; the importing process stores them.

The files are cut into units of work. Log files become ranges of whole lines (a big file gives
several), small EVTX files go together, a big EVTX file is cut into parts of its chunks
(:func:`secmon.offline.parallel.work_units`). A worker reads its unit's records and turns them
into documents and buffer frames with a :class:`~secmon.collect.topology.DocumentMaker`: the
pipeline's own transform, stamp and ids, so a document gets the id one process gives it and
importing again stores nothing twice. It then matches them with the rule set the importing
process loaded (forked with it) and sends back the frames and, per batch, what each event matched
and its time.

The importing process takes the units in order and stores each batch through its pipeline
(:meth:`~secmon.collect.topology.Pipeline.submit_frames`). Its detection stage counts the
correlations and builds the alerts from what the workers matched
(:meth:`~secmon.detection.stage.DetectionStage.detect`): the alerts, their groups and the
correlation windows are those of one process reading the files in order.

A worker that starts in the middle of a log's lines first reads up to ``PRIME_BYTES`` before them
and drops the events, so that auditd lines waiting for their EXECVE are joined as one reader joins
them. At most two units per worker are in flight: memory grows with the workers, not with the input.
Where processes cannot be forked, the workers only make documents and the importing process matches them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from secmon.collect.sources.evtx import PartReading, read_evtx, read_evtx_part
from secmon.collect.topology import DocumentMaker, Pipeline, SourceContext, Stage
from secmon.config import Settings
from secmon.detection.detector import Detector
from secmon.detection.fields import event_time
from secmon.detection.stage import DetectionStage, Matched
from secmon.errors import IngestError
from secmon.events import Record
from secmon.importer import ImportSummary, batches, counted, evtx_records, import_service, read_lines
from secmon.log import get_logger
from secmon.offline.parallel import PartReports, WorkUnit, work_units
from secmon.store import Document, IndexNames

log = get_logger(__name__)

RANGE_BYTES = 4 * 1024 * 1024  # a log file's lines are cut into ranges of about this size
EVTX_PART_BYTES = 8 * 1024 * 1024  # an EVTX file above this is read in parts: a part's frames are ~4x its size
PRIME_BYTES = 64 * 1024  # read before a range that starts in a file's middle, for the state lines leave
UNITS_PER_WORKER = 2


@dataclass(frozen=True, slots=True)
class LineRange:
    """The lines of a file that start at or after ``start`` and before ``end`` (byte offsets)."""

    path: Path
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class LogUnit:
    """Ranges of log lines one worker reads in order, after priming its transforms with ``prime``."""

    ranges: tuple[LineRange, ...]
    prime: LineRange | None = None  # the end of the range before the first one (its start not yet at a line)

    @property
    def size(self) -> int:
        return sum(part.end - part.start for part in self.ranges)


Unit = LogUnit | WorkUnit


@dataclass(slots=True)
class _Worked:
    """What a worker sends back of a unit."""

    batches: list[tuple[list[bytes], Matched | None]] = field(default_factory=list)
    parse_failures: int = 0
    parser_errors: int = 0
    match_errors: int = 0
    failures: list[str] = field(default_factory=list)  # what could not be read, and where
    runs: list[tuple[int, int]] = field(default_factory=list)  # an EVTX part's record ids
    reports: int = 0  # an EVTX part's damage reports
    stopped: bool = False

    @property
    def records(self) -> int:
        return sum(len(frames) for frames, _ in self.batches)


def log_units(files: Sequence[Path], range_bytes: int = RANGE_BYTES) -> Iterator[LogUnit]:
    """``files``' lines as units, in order: small files together, big ones in ranges of ``range_bytes``."""
    pending: list[LineRange] = []
    size = 0
    previous: LineRange | None = None  # the last range of the unit before
    for path in files:
        for part in _line_ranges(path, range_bytes):
            pending.append(part)
            size += part.end - part.start
            if size >= range_bytes:
                yield LogUnit(tuple(pending), _prime_of(previous))
                previous, pending, size = pending[-1], [], 0
    if pending:
        yield LogUnit(tuple(pending), _prime_of(previous))


def evtx_units(files: Sequence[Path], part_bytes: int = EVTX_PART_BYTES) -> Iterator[WorkUnit]:
    """``files`` as units, in order: small files together, big ones in parts of ``part_bytes``."""
    return work_units(files, part_bytes)


async def import_units(
    settings: Settings,
    units: Iterable[Unit],
    context: SourceContext,
    jobs: int,
    *,
    failures: list[str],
    progress: Callable[[int], None] = lambda done: None,
) -> ImportSummary:
    """Import ``units`` with ``jobs`` worker processes; the counts.

    What could not be read is added to ``failures``; ``progress`` is told the bytes of each unit
    once its documents are in the buffer.
    """
    async with import_service(settings) as running:
        before = counted(running, context.component)
        stage = running.detection
        parts = PartReports(failures.append)
        read = 0
        with _pool(jobs, running.pipeline.names, context, stage.detector if stage is not None else None) as pool:
            window: deque[tuple[Unit, asyncio.Future[_Worked] | None]] = deque()

            async def store_next() -> None:
                nonlocal read
                unit, future = window.popleft()
                read += await _store(running.pipeline, stage, context, unit, future, parts=parts, failures=failures)
                progress(_bytes(unit))

            try:
                for unit in units:
                    error = unit.error if isinstance(unit, WorkUnit) else None
                    window.append((unit, None if error else asyncio.wrap_future(pool.submit(_work, unit))))
                    if len(window) >= jobs * UNITS_PER_WORKER:
                        await store_next()
                while window:
                    await store_next()
            finally:
                _forget(future for _, future in window)
                pool.shutdown(cancel_futures=True)
        await running.pipeline.wait_drained()  # every document's outcome is counted once its frame is acknowledged
        summary = counted(running, context.component).since(before)
    summary.read = read
    return summary


async def _store(
    pipeline: Pipeline,
    stage: DetectionStage | None,
    context: SourceContext,
    unit: Unit,
    future: asyncio.Future[_Worked] | None,
    *,
    parts: PartReports,
    failures: list[str],
) -> int:
    """Store one unit's documents, in order, with the alerts they raise; the number of records."""
    if future is None:  # a big file that is not EVTX: said, and the import goes on
        assert isinstance(unit, WorkUnit) and unit.error is not None
        failures.append(str(unit.error))
        return 0
    if isinstance(unit, WorkUnit):
        parts.file_opened(unit)
    try:
        worked = await future
    except BrokenProcessPool as error:  # killed (out of memory, a signal): the units in flight are lost
        paths = _paths(unit)
        where = f"{paths[0]}" + (f" and {len(paths) - 1} more files" if len(paths) > 1 else "")
        raise IngestError(f"a worker process died while reading {where}; import again to store the rest") from error
    errors = pipeline.telemetry.errors
    errors.labels(context.component, "parse").inc(worked.parse_failures)
    errors.labels(context.component, "normalize").inc(worked.parser_errors)
    errors.labels("detection", "match").inc(worked.match_errors)
    failures += worked.failures
    for frames, matched in worked.batches:
        stages: list[Stage] = []
        if stage is not None:
            stages.append(stage if matched is None else _WorkedDetection(stage, matched))
        await pipeline.submit_frames(frames, context, stages)
    if isinstance(unit, WorkUnit) and unit.part is not None:
        parts.part_read(unit, worked.runs, worked.reports, worked.stopped)
    return worked.records


class _WorkedDetection:
    """The detection stage, on a batch a worker has matched already."""

    def __init__(self, stage: DetectionStage, matched: Matched) -> None:
        self.stage = stage
        self.matched = matched

    def __call__(self, events: Sequence[Document]) -> list[Document]:
        return self.stage.detect(events, self.matched).alerts

    def buffered(self, added: Sequence[Document]) -> None:
        self.stage.buffered(added)


def _forget(futures: Iterable[asyncio.Future[_Worked] | None]) -> None:
    """Let go of units in flight when the import stops early: cancelled, or their failure taken (not logged twice)."""
    for future in futures:
        if future is not None and not future.cancel() and not future.cancelled():
            future.exception()


def _paths(unit: Unit) -> list[Path]:
    paths = [part.path for part in unit.ranges] if isinstance(unit, LogUnit) else unit.paths
    return list(dict.fromkeys(paths))  # a file's ranges once


def _bytes(unit: Unit) -> int:
    if isinstance(unit, LogUnit):
        return unit.size
    return unit.part.bytes if unit.part is not None else unit.size


# -- planning ----------------------------------------------------------------------------------


def _line_ranges(path: Path, range_bytes: int) -> Iterator[LineRange]:
    """``path`` cut into ranges of about ``range_bytes``, each starting at a line."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            start = 0
            while start < size:
                end = _line_start(handle, start + range_bytes) if start + range_bytes < size else size
                yield LineRange(path, start, end)
                start = end
    except OSError as error:  # unreadable: the worker reading it says so
        yield LineRange(path, 0, 1)
        log.debug("Could not plan the file's ranges.", path=str(path), error=repr(error))


def _line_start(handle: BinaryIO, offset: int) -> int:
    """The offset of the first line that starts at or after ``offset`` (the file's size if none does)."""
    if offset == 0:
        return 0
    handle.seek(offset - 1)
    while block := handle.read(64 * 1024):
        newline = block.find(b"\n")
        if newline >= 0:
            return handle.tell() - len(block) + newline + 1
    return handle.tell()


def _prime_of(previous: LineRange | None) -> LineRange | None:
    if previous is None:
        return None
    return LineRange(previous.path, max(previous.start, previous.end - PRIME_BYTES), previous.end)


# -- in the workers ----------------------------------------------------------------------------


class _Worker:
    """A worker's state: the parent's rule set (forked; None: the parent matches), its maker and context."""

    detector: Detector | None = None
    maker: DocumentMaker | None = None
    context: SourceContext | None = None
    worked: _Worked | None = None  # the unit being worked on, for the maker's counts


def _pool(jobs: int, names: IndexNames, context: SourceContext, detector: Detector | None) -> ProcessPoolExecutor:
    if "fork" in multiprocessing.get_all_start_methods():
        # A forked worker starts with the parent's compiled rules: nothing to load, and the pages
        # are shared until written. Set before the pool forks its workers (on first submit).
        _Worker.detector = detector
        method = "fork"
    else:
        _Worker.detector = None
        method = "spawn"
    context_of = multiprocessing.get_context(method)
    return ProcessPoolExecutor(jobs, mp_context=context_of, initializer=_start, initargs=(names, context, method))


def _start(names: IndexNames, context: SourceContext, method: str) -> None:
    # A maker of its own in each worker: its sequential ids have a prefix of their own.
    if method != "fork":
        _Worker.detector = None
    _Worker.maker = DocumentMaker(names, _count_parse_failure, _count_parser_error)
    _Worker.context = context


def _count_parse_failure(_: str) -> None:
    if _Worker.worked is not None:
        _Worker.worked.parse_failures += 1


def _count_parser_error(_: str, __: BaseException) -> None:
    if _Worker.worked is not None:
        _Worker.worked.parser_errors += 1


def _work(unit: Unit) -> _Worked:
    maker, context = _Worker.maker, _Worker.context
    assert maker is not None and context is not None
    worked = _Worker.worked = _Worked()
    if isinstance(unit, LogUnit):
        if unit.prime is not None:
            maker.prime(list(_lines(unit.prime, worked, align=True)), context)
            worked.parse_failures = worked.parser_errors = 0  # of the primer's events, which are not stored
        records: Iterable[Record] = (record for part in unit.ranges for record in _lines(part, worked))
    else:
        records = _evtx(unit, worked)
    detector = _Worker.detector
    for batch in batches(records):
        docs, frames = maker.records(batch, context)
        worked.batches.append((frames, _match(detector, docs, worked) if detector is not None else None))
    _Worker.worked = None
    return worked


def _lines(part: LineRange, worked: _Worked, *, align: bool = False) -> Iterator[Record]:
    try:
        start = part.start
        if align:
            with part.path.open("rb") as handle:
                start = _line_start(handle, start)
        yield from read_lines(part.path, start, part.end)
    except OSError as error:
        worked.failures.append(f"{part.path}: cannot be read: {error}")


def _evtx(unit: WorkUnit, worked: _Worked) -> Iterator[Record]:
    if unit.part is not None:
        reading = PartReading(lambda failure: worked.failures.append(str(failure)))
        try:
            yield from evtx_records(unit.part.path, read_evtx_part(unit.part, reading, threads=1))
        except IngestError as error:
            worked.failures.append(str(error))
        worked.runs, worked.reports, worked.stopped = reading.runs(), reading.reports, reading.stopped
        return
    for path in unit.paths:
        try:
            records = read_evtx(path, on_failure=lambda failure: worked.failures.append(str(failure)), threads=1)
            yield from evtx_records(path, records)
        except IngestError as error:  # not an EVTX file: said, and the files after it are read
            worked.failures.append(str(error))


def _match(detector: Detector, docs: Sequence[Document], worked: _Worked) -> Matched:
    match = detector.engine.match
    rules: dict[int, tuple[str, ...]] = {}
    for place, doc in enumerate(docs):
        try:
            matched = match(doc.source)
        except Exception as exc:  # a matcher bug costs one event's detection, never the event
            log.error("Detection failed on an event.", id=doc.id, error=repr(exc))
            worked.match_errors += 1
            continue
        if matched:
            rules[place] = tuple(rule.id for rule in matched)
    times = [event_time(doc.source) for doc in docs] if detector.correlation.rules else []
    return Matched(rules, times)

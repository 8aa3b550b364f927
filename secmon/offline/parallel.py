"""``secmon detect --jobs N``: files, and parts of big EVTX files, hunted by worker processes.

The work is cut into units: a file, or a part of an EVTX file bigger than ``part_bytes`` (its
chunks are independent, so a worker reads its share through a view of the file and a file of
gigabytes is never read whole by anyone). A worker reads, normalizes and matches its unit's
events with the rule set the parent loaded (inherited when it is forked, else read from the rule
cache) and sends back only what the parent needs: for each event that matched, where it was read,
its time, the ids of the alerting rules it matched, and for the correlations that count it the
rules they count and the fields they read of it.

The parent takes the results in unit order, which is the order one process reads the files in,
counts the correlations in that order (their windows span files), reports each big file's damage
as one reading of it would, and so yields the findings of :func:`secmon.offline.hunt`, in its order.
At most two units per worker are in flight: memory grows with the workers, not with the input.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secmon.collect.sources.evtx import EvtxPart, EvtxPlan, PartReading, plan_evtx, read_evtx_part
from secmon.detection.correlation.routing import CorrelationRouter
from secmon.detection.detector import Detector, load_detector
from secmon.detection.fields import event_time
from secmon.detection.rules import Rule
from secmon.errors import IngestError
from secmon.offline import (
    EVTX_SUFFIXES,
    Finding,
    HuntStats,
    SourcedEvent,
    correlation_finding,
    event_timestamp,
    evtx_events,
    file_size,
    input_files,
    read_events,
    rule_finding,
)

PART_BYTES = 32 * 1024 * 1024  # an EVTX file above this is cut into parts of it (512 chunks)
# Small files go to a worker together, up to this many bytes: a task costs about a millisecond
# of the pool's own work, as much as reading a small file's few dozen events.
BATCH_BYTES = 2 * 1024 * 1024
UNITS_PER_WORKER = 2  # in flight: one being worked on, one waiting, per worker


@dataclass(frozen=True, slots=True)
class DetectorSource:
    """How a spawned worker loads the parent's rule set: from the same folders, through the rule cache."""

    rule_paths: tuple[Path, ...]
    cache_dir: Path | None


@dataclass(frozen=True, slots=True)
class WorkUnit:
    """What one task of a worker reads: small files, in order, or one part of a big EVTX file."""

    paths: tuple[Path, ...]
    size: int  # bytes it reads, for the progress bar
    part: EvtxPart | None = None  # None: the whole files
    plan: EvtxPlan | None = None  # a part's file, on its first and last part (whose reports are the file's)
    first: bool = True
    last: bool = True
    error: IngestError | None = None  # the file cannot be hunted: raised when the hunt reaches it


@dataclass(frozen=True, slots=True)
class _Matched:
    """One event's matches, as a worker sends them: where it was read, and what the parent counts."""

    file: str
    record_id: int | None
    line: int | None
    file_record_id: int | None
    timestamp: str  # of the event, for its findings ("" when no alerting rule matched)
    rules: tuple[str, ...]  # the alerting rules it matched, in the order the matcher gives
    refs: tuple[str, ...] = ()  # the matched rules a correlation counts
    fields: dict[str, Any] = field(default_factory=dict)  # what those correlations read of the event
    time: float = 0.0  # event time, epoch seconds, for the correlations
    moves_clock: bool = False  # later than every event before it in its unit: may close windows

    @property
    def where(self) -> int | None:
        return self.record_id if self.record_id is not None else self.line


@dataclass(slots=True)
class _UnitResult:
    events: int = 0
    failures: list[str] = field(default_factory=list)
    matched: list[_Matched] = field(default_factory=list)
    runs: list[tuple[int, int]] = field(default_factory=list)  # an EVTX part's record ids
    reports: int = 0  # an EVTX part's damage reports
    stopped: bool = False
    error: IngestError | None = None  # a file of the unit is not what its name says: the hunt stops after its events


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def hunt_parallel(
    detector: Detector,
    paths: Iterable[Path],
    jobs: int,
    source: DetectorSource,
    stats: HuntStats | None = None,
    *,
    progress: Callable[[int], None] = lambda done: None,
    part_bytes: int = PART_BYTES,
) -> Iterator[Finding]:
    """The findings of :func:`secmon.offline.hunt` over ``paths``, worked out by ``jobs`` processes.

    ``progress`` is told the bytes of each unit as its findings are yielded.
    """
    stats = stats if stats is not None else HuntStats()
    started = time.perf_counter()
    files = input_files(paths)
    stats.files += len(files)
    merger = _Merger(detector, stats, progress)
    window: deque[tuple[WorkUnit, Future[_UnitResult] | None]] = deque()
    with _pool(detector, source, jobs) as pool:
        for unit in work_units(files, part_bytes):
            window.append((unit, None if unit.error else pool.submit(_hunt_unit, unit)))
            if len(window) >= jobs * UNITS_PER_WORKER:
                yield from merger.merge(*window.popleft())
        while window:
            yield from merger.merge(*window.popleft())
    stats.seconds = time.perf_counter() - started


class PartReports:
    """The damage reports of big EVTX files read in parts, made as one reading of each file makes them.

    Told of each part's unit in order (:meth:`part_read`): a file's own reports (its header, its
    truncation) come before its first part's, and what no part read is reported after its last.
    """

    def __init__(self, on_failure: Callable[[str], None]) -> None:
        self.on_failure = on_failure
        self._reading: PartReading | None = None  # of the file whose parts are being read: one at a time
        self._truncated = False
        self._runs: list[list[tuple[int, int]]] = []
        self._stopped = False

    def file_opened(self, unit: WorkUnit) -> None:
        """Before the results of ``unit``: its file's own reports, if it is a file's first part."""
        if unit.plan is not None and unit.first:
            self._reading = PartReading(lambda failure: self.on_failure(str(failure)))
            self._truncated = unit.plan.report_before(self._reading)
            self._runs, self._stopped = [], False

    def part_read(self, unit: WorkUnit, runs: list[tuple[int, int]], reports: int, stopped: bool) -> None:
        """After the results of a part: what it read; on a file's last part, what none of them read."""
        reading = self._reading
        assert reading is not None
        self._runs.append(runs)
        reading.reports += reports
        self._stopped = self._stopped or stopped
        if unit.last and unit.plan is not None:
            self._reading = None
            if not self._stopped:
                unit.plan.report_after(self._runs, reading.reports, reading.report, truncated=self._truncated)


class _Merger:
    """The parent's side: units' results, in unit order, into findings and counts."""

    def __init__(self, detector: Detector, stats: HuntStats, progress: Callable[[int], None]) -> None:
        self.rules = {rule.id: rule for rule in detector.rules}
        self.correlation = detector.correlation
        self.silent = detector.silent
        self.stats = stats
        self.progress = progress
        self.parts = PartReports(stats.read_failures.append)

    def merge(self, unit: WorkUnit, future: Future[_UnitResult] | None) -> Iterator[Finding]:
        if unit.error is not None:
            raise unit.error
        assert future is not None
        result = future.result()  # a worker's exception (IngestError: a file that is not EVTX) is raised here
        stats = self.stats
        self.parts.file_opened(unit)
        stats.events += result.events
        stats.read_failures += result.failures
        for matched in result.matched:
            for rule_id in matched.rules:
                stats.findings += 1
                yield rule_finding(self.rules[rule_id], matched.timestamp, matched)
            if matched.refs or matched.moves_clock:
                yield from self._correlate(matched)
        if result.error is not None:
            raise result.error
        if unit.part is not None:
            self.parts.part_read(unit, result.runs, result.reports, result.stopped)
        self.progress(unit.part.bytes if unit.part is not None else unit.size)

    def _correlate(self, matched: _Matched) -> Iterator[Finding]:
        event_id = f"{matched.file}:{matched.where}"  # as the single-process hunt names it
        for hit in self.correlation.observe_refs(matched.refs, matched.fields, event_id, matched.time):
            if hit.rule.id not in self.silent:
                self.stats.findings += 1
                yield correlation_finding(hit, matched)


def work_units(files: Sequence[Path], part_bytes: int) -> Iterator[WorkUnit]:
    """``files`` as units of work, in order: small files together, big EVTX files in parts."""
    batch: list[Path] = []
    batch_size = 0
    for path in files:
        size = file_size(path)
        if path.suffix.lower() not in EVTX_SUFFIXES or size <= part_bytes:
            batch.append(path)
            batch_size += size
            if batch_size >= BATCH_BYTES:
                yield WorkUnit(tuple(batch), batch_size)
                batch, batch_size = [], 0
            continue
        if batch:
            yield WorkUnit(tuple(batch), batch_size)
            batch, batch_size = [], 0
        try:
            plan = plan_evtx(path, part_bytes=part_bytes)
        except IngestError as error:
            yield WorkUnit((path,), size, error=error)
            continue
        last = len(plan.parts) - 1
        for number, part in enumerate(plan.parts):
            ends = number in (0, last)
            yield WorkUnit((path,), size, part, plan if ends else None, number == 0, number == last)
    if batch:
        yield WorkUnit(tuple(batch), batch_size)


# -- in the workers ----------------------------------------------------------------------------


class _Worker:
    """What a worker process matches with: the parent's rule set (forked), or one loaded from its cache."""

    detector: Detector | None = None
    router: CorrelationRouter | None = None

    @classmethod
    def take(cls, detector: Detector) -> None:
        cls.detector, cls.router = detector, CorrelationRouter(detector.ruleset.correlations)


def _pool(detector: Detector, source: DetectorSource, jobs: int) -> ProcessPoolExecutor:
    if "fork" in multiprocessing.get_all_start_methods():
        # A forked worker starts with the parent's compiled rules: nothing to load, and the pages
        # are shared until written. Set before the pool forks its workers (on first submit).
        _Worker.take(detector)
        return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"))
    return ProcessPoolExecutor(
        jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_load_detector, initargs=(source,)
    )


def _load_detector(source: DetectorSource) -> None:
    _Worker.take(load_detector(source.rule_paths, cache_dir=source.cache_dir))


def _hunt_unit(unit: WorkUnit) -> _UnitResult:
    detector, router = _Worker.detector, _Worker.router
    assert detector is not None and router is not None
    match, silent = detector.engine.match, detector.silent
    result = _UnitResult()
    if unit.part is not None:
        reading = PartReading(lambda failure: result.failures.append(str(failure)))
        events: Iterable[SourcedEvent] = evtx_events(unit.part.path, read_evtx_part(unit.part, reading, threads=1))
    else:
        reading = None
        events = (event for path in unit.paths for event in read_events(path, result.failures, threads=1))
    try:
        _match_all(events, result, match, silent, router, clocked=detector.correlation.decides_at_close)
    except IngestError as error:  # raised by the parent once the files before it are merged, as one process does
        result.error = error
    if reading is not None:
        result.runs, result.reports, result.stopped = reading.runs(), reading.reports, reading.stopped
    return result


def _match_all(
    events: Iterable[SourcedEvent],
    result: _UnitResult,
    match: Callable[[Mapping[str, Any]], list[Rule]],
    silent: frozenset[str],
    router: CorrelationRouter,
    *,
    clocked: bool,
) -> None:
    """Match ``events`` into ``result``.

    With ``clocked`` (correlations decided when their window closes) an event later than every
    one before it in the unit is sent even if it matched nothing: in one process such an event
    closes the windows its time has passed, and the findings are its own.
    """
    counts_correlations = bool(router.families)
    newest = float("-inf")
    for sourced in events:
        result.events += 1
        matched = match(sourced.event)
        moves_clock = False
        if clocked:
            timestamp = event_time(sourced.event)
            moves_clock, newest = timestamp > newest, max(newest, timestamp)
        if not matched and not moves_clock:
            continue
        alerting = tuple(rule.id for rule in matched if rule.id not in silent)
        refs, fields = router.carried(matched, sourced.event) if counts_correlations and matched else ((), {})
        if not alerting and not refs and not moves_clock:
            continue
        result.matched.append(
            _Matched(
                sourced.file,
                sourced.record_id,
                sourced.line,
                sourced.file_record_id,
                event_timestamp(sourced.event) if alerting or moves_clock else "",
                alerting,
                refs,
                fields,
                event_time(sourced.event) if refs or moves_clock else 0.0,
                moves_clock,
            )
        )

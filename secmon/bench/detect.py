"""``secmon bench detect``: the streaming matcher's events/s on one core, over events read beforehand."""

from __future__ import annotations

import gc
import resource
import shutil
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from secmon.detection.detector import load_detector
from secmon.offline import input_files, read_events
from secmon.offline.parallel import DetectorSource, hunt_parallel


@dataclass(frozen=True, slots=True)
class DetectResult:
    events: int
    rules_loaded: int
    rules_skipped: int
    matches: int  # (rule, event) pairs in one pass
    match_seconds: float  # median of the repeats: matching only
    read_seconds: float  # reading and normalizing the files once
    load_seconds: float  # rules from the cache (or parsed, when the cache was cold)
    load_cached: bool
    peak_rss_mb: float
    jobs: int = 1
    parallel_seconds: float = 0.0  # ``secmon detect --jobs`` over the same files: reading, parsing, matching
    parallel_findings: int = 0  # what it printed: matches of alerting rules, and correlations

    @property
    def events_per_second(self) -> float:
        return self.events / self.match_seconds if self.match_seconds else 0.0

    @property
    def parallel_events_per_second(self) -> float:
        return self.events / self.parallel_seconds if self.parallel_seconds else 0.0

    @property
    def end_to_end_events_per_second(self) -> float:
        """Reading, parsing and matching, as a peer that reads the files itself is measured."""
        total = self.read_seconds + self.match_seconds
        return self.events / total if total else 0.0


def repeat_corpus(paths: Sequence[Path], copies: int, folder: Path) -> list[Path]:
    """``copies`` copies of every file under ``paths`` in ``folder``: a large corpus from the shared samples.

    Real copies, numbered so that equal names do not collide, as the peer benchmark stages them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    corpus = []
    for copy in range(copies):
        for number, path in enumerate(input_files(paths)):
            target = folder / f"{copy:03d}-{number:05d}-{path.name}"
            shutil.copyfile(path, target)
            corpus.append(target)
    return corpus


def bench_detect(
    rule_paths: Sequence[Path], paths: Sequence[Path], repeat: int, cache_dir: Path | None, jobs: int = 1
) -> DetectResult:
    """Load the rules, read every event once, then match all events ``repeat`` times.

    With ``jobs`` above 1, also time the whole hunt (reading, parsing, matching) over that many processes.
    """
    detector = load_detector(rule_paths, cache_dir=cache_dir)
    files = input_files(paths)
    started = time.perf_counter()
    failures: list[str] = []
    events = [sourced.event for path in files for sourced in read_events(path, failures)]
    read_seconds = time.perf_counter() - started
    match = detector.match
    timings: list[float] = []
    matches = 0
    gc.collect()
    for _ in range(repeat):
        started = time.perf_counter()
        matches = sum(len(match(event)) for event in events)
        timings.append(time.perf_counter() - started)
    parallel_seconds, parallel_findings = 0.0, 0
    if jobs > 1:
        source = DetectorSource(tuple(rule_paths), cache_dir)
        started = time.perf_counter()
        parallel_findings = sum(
            1 for _ in hunt_parallel(load_detector(rule_paths, cache_dir=cache_dir), files, jobs, source)
        )
        parallel_seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    return DetectResult(
        events=len(events),
        rules_loaded=len(detector.rules),
        rules_skipped=len(detector.ruleset.problems),
        matches=matches,
        match_seconds=statistics.median(timings),
        read_seconds=read_seconds,
        load_seconds=detector.stats.seconds,
        load_cached=detector.stats.from_cache,
        peak_rss_mb=peak,
        jobs=jobs,
        parallel_seconds=parallel_seconds,
        parallel_findings=parallel_findings,
    )

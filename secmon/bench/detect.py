"""``secmon bench detect``: the streaming matcher's events/s on one core, over events read beforehand."""

from __future__ import annotations

import gc
import resource
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from secmon.detection.detector import load_detector
from secmon.offline import input_files, read_events


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

    @property
    def events_per_second(self) -> float:
        return self.events / self.match_seconds if self.match_seconds else 0.0

    @property
    def end_to_end_events_per_second(self) -> float:
        """Reading, parsing and matching, as a peer that reads the files itself is measured."""
        total = self.read_seconds + self.match_seconds
        return self.events / total if total else 0.0


def bench_detect(
    rule_paths: Sequence[Path], paths: Sequence[Path], repeat: int, cache_dir: Path | None
) -> DetectResult:
    """Load the rules, read every event once, then match all events ``repeat`` times."""
    detector = load_detector(rule_paths, cache_dir=cache_dir)
    started = time.perf_counter()
    failures: list[str] = []
    events = [sourced.event for path in input_files(paths) for sourced in read_events(path, failures)]
    read_seconds = time.perf_counter() - started
    match = detector.match
    timings: list[float] = []
    matches = 0
    gc.collect()
    for _ in range(repeat):
        started = time.perf_counter()
        matches = sum(len(match(event)) for event in events)
        timings.append(time.perf_counter() - started)
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
    )

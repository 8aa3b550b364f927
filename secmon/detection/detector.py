"""One call from rule folders to a ready matcher: load (or read the cache), compile, index."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secmon.detection.cache import cache_key, cached_ruleset
from secmon.detection.correlation import CorrelationEngine, CorrelationHit, load_correlations
from secmon.detection.engine import Engine
from secmon.detection.fields import event_time
from secmon.detection.loader import load_rules
from secmon.detection.logsource import LogsourceMap
from secmon.detection.pipelines import RULES_DIR, build_pipeline, default_pipeline_files
from secmon.detection.rules import Rule, RuleSet


@dataclass(frozen=True, slots=True)
class LoadStats:
    seconds: float
    from_cache: bool


@dataclass(frozen=True, slots=True)
class Detection:
    """What one event raised: base rules whose hits are alerts, and correlations that fired."""

    rules: list[Rule]
    correlations: list[CorrelationHit]


class Detector:
    """The rules of some folders, compiled.

    :meth:`match` says which rules an event matches; :meth:`detect` also runs the correlation
    rules (whose windows live in this object) and leaves out what must not alert on its own.
    """

    def __init__(self, ruleset: RuleSet, logsources: LogsourceMap, stats: LoadStats | None = None) -> None:
        self.ruleset = ruleset
        self.logsources = logsources
        self.engine = Engine(ruleset.rules, logsources)
        self.correlation = CorrelationEngine(ruleset.correlations)
        self.stats = stats or LoadStats(0.0, from_cache=False)

    def detect(self, event: Mapping[str, Any], event_id: str) -> Detection:
        """The alerting rules ``event`` matches and the correlations it completes."""
        matched = self.engine.match(event)
        correlation = self.correlation
        if not correlation.rules:
            return Detection(matched, [])
        hits = correlation.observe(matched, event, event_id, event_time(event))
        silent = correlation.silent_rule_ids
        if silent:
            matched = [rule for rule in matched if rule.id not in silent]
            hits = [hit for hit in hits if hit.rule.id not in silent]
        return Detection(matched, hits)

    def carry_state_from(self, previous: Detector) -> None:
        """Keep the correlation windows of ``previous`` (a reload) for the rules that did not change."""
        self.correlation = previous.correlation.reloaded(self.ruleset.correlations)

    @property
    def rules(self) -> list[Rule]:
        return self.ruleset.rules

    def match(self, event: Mapping[str, Any]) -> list[Rule]:
        return self.engine.match(event)


def load_detector(
    rule_paths: Sequence[Path],
    *,
    placeholders: Mapping[str, Sequence[str]] | None = None,
    cache_dir: Path | None = None,
    rules_dir: Path = RULES_DIR,
) -> Detector:
    """A detector for the rules under ``rule_paths``; ``cache_dir`` makes the next start fast.

    ``rules_dir`` holds secmon's logsource table and pipelines (``logsources.yml``, ``pipelines/``).
    """
    started = time.perf_counter()
    table = rules_dir / "logsources.yml"
    pipeline_files = default_pipeline_files(rules_dir)
    logsources = LogsourceMap.load(table)
    key = cache_key(rule_paths, [table, *pipeline_files], placeholders)

    def build() -> RuleSet:
        pipeline = build_pipeline(logsources, pipeline_files, placeholders)
        ruleset = load_rules(rule_paths, pipeline)
        ruleset.correlations, problems = load_correlations(rule_paths, pipeline, ruleset.rules)
        ruleset.problems += problems
        return ruleset

    ruleset, cached = cached_ruleset(cache_dir, key, build)
    detector = Detector(ruleset, logsources)
    detector.stats = LoadStats(time.perf_counter() - started, cached)  # compiling and indexing included
    return detector

"""One call from rule folders to a ready matcher: load (or read the cache), compile, index."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
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
    matched: list[Rule]  # every rule it matched, silent ones too: what correlations elsewhere count


class Detector:
    """The rules of some folders, compiled.

    :meth:`match` says which rules an event matches; :meth:`detect` also runs the correlation
    rules (whose windows live in this object) and leaves out what must not alert on its own.
    ``silenced`` are rule ids that are matched only for correlations, never alerted on (disabled
    rules an enabled correlation still refers to).
    """

    def __init__(
        self,
        ruleset: RuleSet,
        logsources: LogsourceMap,
        stats: LoadStats | None = None,
        *,
        silenced: frozenset[str] = frozenset(),
    ) -> None:
        self.ruleset = ruleset
        self.logsources = logsources
        self.engine = Engine(ruleset.rules, logsources)
        self.correlation = CorrelationEngine(ruleset.correlations)
        self.stats = stats or LoadStats(0.0, from_cache=False)
        self.silenced = silenced

    def detect(
        self,
        event: Mapping[str, Any],
        event_id: str,
        *,
        correlate: bool = True,
        matched: list[Rule] | None = None,
        timestamp: float | None = None,
    ) -> Detection:
        """The alerting rules ``event`` matches and the correlations it completes.

        Without ``correlate`` the correlations are left to whoever counts them elsewhere (the
        scale-out mode routes ``Detection.matched`` to them). ``matched`` and ``timestamp`` are
        the rules it matches and its time when another process worked them out (an import's workers).
        """
        if matched is None:
            matched = self.engine.match(event)
        correlation = self.correlation
        if not correlation.rules:
            return Detection(matched, [], matched)
        if correlate:
            timestamp = event_time(event) if timestamp is None else timestamp
            hits = correlation.observe(matched, event, event_id, timestamp)
        else:
            hits = []
        silent = self.silent
        alerting = [rule for rule in matched if rule.id not in silent] if silent else matched
        if silent and hits:
            hits = [hit for hit in hits if hit.rule.id not in silent]
        return Detection(alerting, hits, matched)

    @property
    def silent(self) -> frozenset[str]:
        """Rules and correlations whose matches are not alerts (only counted by correlations)."""
        return self.correlation.silent_rule_ids | self.silenced

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
    disabled: Collection[str] = (),
) -> Detector:
    """A detector for the rules under ``rule_paths``; ``cache_dir`` makes the next start fast.

    ``rules_dir`` holds secmon's logsource table and pipelines (``logsources.yml``, ``pipelines/``).
    Rules and correlations whose id is in ``disabled`` are not matched (a disabled rule an enabled
    correlation refers to is matched for it, silently).
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
    ruleset, silenced = without(ruleset, frozenset(disabled))
    detector = Detector(ruleset, logsources, silenced=silenced)
    detector.stats = LoadStats(time.perf_counter() - started, cached)  # compiling and indexing included
    return detector


def without(ruleset: RuleSet, disabled: frozenset[str]) -> tuple[RuleSet, frozenset[str]]:
    """``ruleset`` less the ``disabled`` ids, and the disabled rules kept for enabled correlations."""
    if not disabled:
        return ruleset, frozenset()
    correlations = [c for c in ruleset.correlations if c.id not in disabled]
    needed = {ref for c in correlations for ref in c.rule_refs}
    rules = [r for r in ruleset.rules if r.id not in disabled or r.id in needed]
    silenced = frozenset(r.id for r in rules if r.id in disabled)
    return replace(ruleset, rules=rules, correlations=correlations), silenced

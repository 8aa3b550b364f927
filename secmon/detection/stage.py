"""Detection inside the collection pipeline: every event batch the buffer has room for is matched.

The alerts go into the same buffer right after the events that raised them, so they reach
Elasticsearch through the same acknowledged writer, in order, exactly once; they are notified
(:meth:`DetectionStage.buffered`) only once the buffer holds them. Rules hot-reload:
:meth:`DetectionStage.watch` checks the rule files every ``reload_interval`` seconds and swaps
in a new detector (built in a thread, so collection never waits for pySigma); a rule set that
fails to load as a whole keeps the previous one running.

With a ``state_dir``, the rule catalog's files are honoured too (:mod:`secmon.detection.catalog`,
mirrored from Elasticsearch by :class:`~secmon.detection.catalog_store.CatalogMirror`):
the uploaded rules are loaded after the configured ones, disabled ids are not matched, and a
change to either reloads like a change to a rule file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secmon.collect.telemetry import Telemetry
from secmon.config import DetectionSettings, parse_duration
from secmon.detection.alerts import ALERTS_COMPONENT, AlertBuilder, Trigger
from secmon.detection.catalog_store import CatalogFiles
from secmon.detection.correlation.routing import CorrelationRouter, RoutedHit
from secmon.detection.detector import Detector, load_detector
from secmon.detection.fields import event_time
from secmon.detection.loader import rule_files
from secmon.detection.pipelines import RULES_DIR, default_pipeline_files
from secmon.detection.rules import Rule
from secmon.log import get_logger
from secmon.store import Document, plain_source

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Detected:
    """What a batch of events raised: alert documents, and the correlation work routed elsewhere."""

    alerts: list[Document]
    routed: list[tuple[bytes, RoutedHit]]  # (key, hit) for the bus; empty unless distributed


@dataclass(frozen=True, slots=True)
class Matched:
    """What another process matched of a batch of events: the rules of each (by id), and their times.

    An import's worker processes match the events they make; the importing process counts the
    correlations and builds the alerts, in order, from this.
    """

    rules: Mapping[int, tuple[str, ...]]  # by the event's place in the batch; absent: it matched none
    times: Sequence[float] = ()  # each event's time, epoch seconds; empty when no correlation counts them

    def rules_of(self, detector: Detector) -> Callable[[int], list[Rule]]:
        """The matched rules of the event at a place, as ``detector``'s rules (ids it lacks are left out)."""
        by_id = {rule.id: rule for rule in detector.rules}
        return lambda place: [by_id[rule_id] for rule_id in self.rules.get(place, ()) if rule_id in by_id]

    def time(self, place: int) -> float | None:
        return self.times[place] if self.times else None


class DetectionStage:
    """A pipeline :class:`~secmon.collect.topology.Stage` that adds alert documents."""

    def __init__(
        self,
        detector: Detector,
        alerts_index: str,
        settings: DetectionSettings,
        *,
        cache_dir: Path | None = None,
        telemetry: Telemetry | None = None,
        catalog: CatalogFiles | None = None,
    ) -> None:
        self.detector = detector
        self.settings = settings
        self.cache_dir = cache_dir
        self.telemetry = telemetry
        self.catalog = catalog
        self.builder = AlertBuilder(alerts_index, parse_duration(settings.group_window))
        # Told of each batch's new alerts (not their later updates), e.g. to notify: must not block.
        self.on_new_alerts: Callable[[list[Mapping[str, Any]]], None] | None = None
        # The scale-out mode: correlations are counted by the worker their key is routed to.
        self.distributed = False
        self._router: tuple[Detector, CorrelationRouter] | None = None
        self._key = self._rules_key()

    @classmethod
    def load(
        cls,
        settings: DetectionSettings,
        alerts_index: str,
        *,
        cache_dir: Path | None,
        telemetry: Telemetry | None,
        state_dir: Path | None = None,
    ) -> DetectionStage:
        """A stage over the configured rules, and the catalog's under ``state_dir`` when given."""
        catalog = CatalogFiles(state_dir) if state_dir is not None else None
        detector = _load(settings, cache_dir, catalog)
        return cls(detector, alerts_index, settings, cache_dir=cache_dir, telemetry=telemetry, catalog=catalog)

    def __call__(self, events: Sequence[Document]) -> list[Document]:
        return self.detect(events).alerts

    def detect(self, events: Sequence[Document], matched: Matched | None = None) -> Detected:
        """The alert documents a batch of events raises, and (with a ``router``) its correlation work.

        With ``matched`` (from an import's workers) the events are not matched again here.
        """
        detector = self.detector  # one rule set for the whole batch, even if a reload lands meanwhile
        router = self.router
        hits: list[tuple[Rule, Trigger]] = []
        correlated: list[Document] = []
        routed: list[tuple[bytes, RoutedHit]] = []
        rules_of = matched.rules_of(detector) if matched is not None else None
        for place, doc in enumerate(events):
            try:
                if matched is None or rules_of is None:
                    detection = detector.detect(doc.source, doc.id, correlate=router is None)
                else:  # a source read back from frames is decoded only if something reads it
                    given, timestamp = rules_of(place), matched.time(place)
                    source = plain_source(doc.source) if given else doc.source
                    detection = detector.detect(
                        source, doc.id, correlate=router is None, matched=given, timestamp=timestamp
                    )
            except Exception as exc:  # a matcher bug costs one event's detection, never the event
                log.error("Detection failed on an event.", id=doc.id, error=repr(exc))
                if self.telemetry is not None:
                    self.telemetry.errors.labels("detection", "match").inc()
                continue
            if router is not None and detection.matched:
                routed += router.route(detection.matched, doc.source, doc.id, doc.index, event_time(doc.source))
            if detection.rules or detection.correlations:
                trigger = Trigger(doc.id, doc.index, plain_source(doc.source))
                hits.extend((rule, trigger) for rule in detection.rules)
                correlated.extend(self.builder.correlation_alert(hit, trigger) for hit in detection.correlations)
        if self.telemetry is not None:
            for rule, _ in hits:
                self.telemetry.hits.labels(rule.level).inc()
            for document in correlated:
                self.telemetry.hits.labels(document.source["rule"]["level"]).inc()
        if not hits and not correlated:
            return Detected([], routed)
        return Detected([*self.builder.alerts(hits), *correlated], routed)

    @property
    def router(self) -> CorrelationRouter | None:
        """Where correlation work goes in the scale-out mode (None: counted here); follows reloads."""
        if not self.distributed:
            return None
        if self._router is None or self._router[0] is not self.detector:
            self._router = (self.detector, CorrelationRouter(self.detector.ruleset.correlations))
        return self._router[1]

    def buffered(self, added: Sequence[Document]) -> None:
        """The alerts of a batch are in the buffer: count the new ones and notify (not their later updates)."""
        new = [doc.source for doc in added if doc.component == ALERTS_COMPONENT]
        if self.telemetry is not None:
            for source in new:
                self.telemetry.alerts.labels(source["rule"]["level"]).inc()
        if self.on_new_alerts is not None and new:
            self.on_new_alerts(new)

    def _rules_key(self) -> tuple[tuple[str, int, int], ...]:
        """The rule and data files with their modification times and sizes: cheap to take every few seconds.

        A change reloads; an unchanged content behind a new time costs little, as the reload then
        comes from the rule cache.
        """
        files = [*rule_files(self.settings.rules), RULES_DIR / "logsources.yml", *default_pipeline_files()]
        if self.catalog is not None:
            files += self.catalog.watched()
        stamps = []
        for path in files:
            try:
                stat = path.stat()
            except OSError:
                continue
            stamps.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(stamps)

    async def watch(self) -> None:
        """Reload the rules whenever their files change; runs until cancelled."""
        if self.settings.reload_interval <= 0:
            return
        while True:
            await asyncio.sleep(self.settings.reload_interval)
            await self.reload_if_changed()

    async def reload_if_changed(self) -> bool:
        """Reload the rules if their files changed since the last load; whether a new rule set runs."""
        key = await asyncio.to_thread(self._rules_key)
        if key == self._key:
            return False
        try:
            detector = await asyncio.to_thread(_load, self.settings, self.cache_dir, self.catalog)
        except Exception as exc:  # keep matching with the rules we have
            log.error("Rule reload failed; keeping the previous rules.", error=repr(exc))
            return False
        self._key = key
        detector.carry_state_from(self.detector)
        self.detector = detector
        log.info("Rules reloaded.", rules=len(detector.rules), problems=len(detector.ruleset.problems))
        return True


def _load(settings: DetectionSettings, cache_dir: Path | None, catalog: CatalogFiles | None = None) -> Detector:
    paths = catalog.rule_paths(settings) if catalog is not None else settings.rules
    disabled = catalog.disabled() if catalog is not None else frozenset()
    detector = load_detector(paths, placeholders=settings.placeholders, cache_dir=cache_dir, disabled=disabled)
    kinds: dict[str, int] = {}
    for problem in detector.ruleset.problems:
        kinds[problem.kind] = kinds.get(problem.kind, 0) + 1
        if problem.kind != "logsource":  # rules for sources secmon does not collect are expected
            log.warning("Rule not loaded.", problem=str(problem), kind=problem.kind)
    log.info(
        "Rules loaded.",
        rules=len(detector.rules),
        disabled=len(disabled),
        problems=len(detector.ruleset.problems),
        seconds=round(detector.stats.seconds, 2),
        cached=detector.stats.from_cache,
        not_loaded=", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items())) or "none",
    )
    return detector

"""The correlating worker: counts the correlation keys routed to its partitions of ``<prefix>.correlation``.

A member of ``<group>-correlate``. Each partition has its own
:class:`~secmon.detection.correlation.CorrelationEngine`, fed only the families routed to it
(``observe_refs(..., only=family.members)``), in the partition's order. Correlation alerts are
written to Elasticsearch before the batch is committed; their ids are deterministic, so a batch
handled again stores nothing twice.

**Taking over a partition** (a rebalance, a worker's death) rebuilds its windows: the partition
is read back from the longest correlation timespan (plus the engine's lateness) before its
committed offset, by message time. Hits of that replay, up to the committed offset, rebuild state
only: the previous owner decided them. A hit handed again (its detect worker died before
committing) is recognised by its event id and counted once.
"""

from __future__ import annotations

from collections import OrderedDict

from confluent_kafka import Message

from secmon.bus.cluster import Cluster
from secmon.bus.consuming import Assignment, GroupConsumer
from secmon.collect.sinks import Sink
from secmon.config import BusSettings
from secmon.detection.alerts import Trigger
from secmon.detection.correlation import CorrelationEngine
from secmon.detection.correlation.routing import RoutedHit
from secmon.detection.detector import Detector
from secmon.detection.stage import DetectionStage
from secmon.log import get_logger
from secmon.store import Document, Outcome

log = get_logger(__name__)


class _PartitionState:
    """One partition's windows and the hits it counted lately (by family and event id)."""

    __slots__ = ("detector", "engine", "replay_until", "seen")

    def __init__(self, detector: Detector, replay_until: int) -> None:
        self.detector = detector
        self.engine = CorrelationEngine(detector.ruleset.correlations)
        self.replay_until = replay_until  # offsets before it were decided by the previous owner
        self.seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def follow(self, detector: Detector) -> None:
        """A rule reload: keep the windows of unchanged correlations."""
        if detector is not self.detector:
            self.engine = self.engine.reloaded(detector.ruleset.correlations)
            self.detector = detector

    def first_time(self, hit: RoutedHit, horizon: float) -> bool:
        """Whether ``hit`` was not counted yet; forgets what is older than ``horizon`` seconds of event time."""
        key = (hit.family, hit.event_id)
        if key in self.seen:
            return False
        self.seen[key] = hit.timestamp
        cutoff = self.engine.watermark - horizon
        while self.seen and next(iter(self.seen.values())) < cutoff:
            self.seen.popitem(last=False)
        return True


class CorrelateWorker:
    """Consumes routed hits, counts them, stores correlation alerts; :meth:`run` until cancelled."""

    def __init__(self, cluster: Cluster, bus: BusSettings, stage: DetectionStage, writer: Sink) -> None:
        self.stage = stage
        self.writer = writer
        self.hits = 0
        stage.distributed = True
        self.consumer = GroupConsumer.member(
            cluster,
            bus,
            cluster.topics.correlation,
            cluster.topics.correlate_group,
            "correlate",
            window=1,  # one partition's hits in order, and rebalances between batches
            rewind=self._horizon(),
        )
        self._partitions: dict[int, _PartitionState] = {}

    def _horizon(self) -> float:
        """How far back a window can reach: the longest timespan, plus the lateness the engine accepts."""
        correlations = self.stage.detector.ruleset.correlations
        lateness = CorrelationEngine([]).lateness
        return max((rule.timespan for rule in correlations), default=0.0) + lateness

    async def run(self) -> None:
        await self.consumer.run(self.handle, self.rebalanced)

    async def close(self) -> None:
        await self.consumer.close()

    async def rebalanced(self, change: Assignment) -> None:
        for partition in change.revoked:
            self._partitions.pop(partition, None)
        for partition, committed in change.assigned.items():
            self._partitions[partition] = _PartitionState(self.stage.detector, committed)

    async def handle(self, messages: list[Message]) -> None:
        detector = self.stage.detector
        router = self.stage.router
        assert router is not None  # distributed
        silent = detector.silent
        horizon = self._horizon()
        self.consumer.rewind = horizon  # a reload may have lengthened the longest timespan
        alerts: list[Document] = []
        for message in messages:
            partition, offset = message.partition(), message.offset()
            if partition is None or offset is None:
                continue
            state = self._partitions.get(partition)
            if state is None:  # assigned without a callback (cannot happen with an on_assign): nothing to replay
                state = self._partitions[partition] = _PartitionState(detector, -1)
            state.follow(detector)
            try:
                hit = RoutedHit.decode(message.value() or b"")
            except (ValueError, KeyError, TypeError) as exc:
                log.error("Unreadable correlation work skipped.", partition=partition, offset=offset, error=repr(exc))
                continue
            family = router.families.get(hit.family)
            if family is None or not state.first_time(hit, horizon):
                continue  # a family the rules no longer have, or a hit counted already
            fired = state.engine.observe_refs(hit.refs, hit.event, hit.event_id, hit.timestamp, only=family.members)
            self.hits += 1
            if offset < state.replay_until:
                continue  # rebuilding: its previous owner decided these
            trigger = Trigger(hit.event_id, hit.index, hit.event)
            alerts += [self.stage.builder.correlation_alert(f, trigger) for f in fired if f.rule.id not in silent]
        if alerts:
            outcomes = await self.writer.write(alerts)
            stored = [doc for doc, outcome in zip(alerts, outcomes, strict=True) if outcome is Outcome.STORED]
            if stored:
                self.stage.buffered(stored)

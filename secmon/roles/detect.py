"""The detect worker: events from Kafka → detection → Elasticsearch, committed only once stored.

A member of ``<group>-detect`` over ``<prefix>.events``. For each batch of its partitions it
matches the events, produces the correlation work to ``<prefix>.correlation`` (keyed by
:class:`~secmon.detection.correlation.routing.CorrelationRouter`), and writes the events, dead
letters and alerts to Elasticsearch with the ids they got at their collector. The batch's
offsets are committed only after both, so a worker killed at any point loses nothing, and the
next owner of its partitions handles again only what was not committed: the writer's ``create``
answers 409 for what was stored, and the correlating worker drops hits it counted already.

Alert groups (one rule, agency, host and user within ``detection.group_window``) are counted in
this worker's memory; one host's events are on one partition, so a group is counted in one place.
A new owner of a partition opens a new alert for a group that was open, as a restart does.
New alerts are notified once Elasticsearch stored them (not when it answered that they exist).
"""

from __future__ import annotations

import asyncio

from confluent_kafka import Message

from secmon.bus.cluster import Cluster
from secmon.bus.consuming import GroupConsumer
from secmon.bus.producing import BatchProducer
from secmon.collect.sinks import Sink
from secmon.config import BusSettings
from secmon.detection.stage import DetectionStage
from secmon.log import get_logger
from secmon.store import Document, EncodedSource, IndexNames, Outcome
from secmon.store.frames import decode_frame

log = get_logger(__name__)

RETRY_SECONDS = 1.0  # between attempts to produce correlation work while Kafka does not take it


class DetectWorker:
    """Consumes events, detects, stores; run with :meth:`run` until cancelled, then :meth:`close`."""

    def __init__(
        self, cluster: Cluster, bus: BusSettings, stage: DetectionStage | None, writer: Sink, names: IndexNames
    ) -> None:
        self.cluster = cluster
        self.stage = stage
        self.writer = writer
        self.names = names
        self.events = 0
        if stage is not None:
            stage.distributed = True
        self.consumer = GroupConsumer.member(cluster, bus, cluster.topics.events, cluster.topics.detect_group, "detect")
        self._hits = BatchProducer(cluster.bootstrap, cluster.options)
        self._events_prefix = names.events_pattern.removesuffix("*")

    async def run(self) -> None:
        await self.consumer.run(self.handle)

    async def close(self) -> None:
        await self.consumer.close()
        await self._hits.close()

    async def handle(self, messages: list[Message]) -> None:
        """Detect, route the correlation work, store everything: the batch may be committed after."""
        docs = [decode_frame(message.value() or b"") for message in messages]
        alerts: list[Document] = []
        if self.stage is not None:
            events = [_readable(doc) for doc in docs if doc.index.startswith(self._events_prefix)]
            detected = self.stage.detect(events)
            alerts = detected.alerts
            if detected.routed:
                await self._route([(key, hit.encode()) for key, hit in detected.routed])
        outcomes = await self.writer.write([*docs, *alerts])
        self.events += len(docs)
        if self.stage is not None and alerts:
            answers = zip(alerts, outcomes[len(docs) :], strict=True)
            stored = [doc for doc, outcome in answers if outcome is Outcome.STORED]
            if stored:
                self.stage.buffered(stored)

    async def _route(self, messages: list[tuple[bytes, bytes]]) -> None:
        """Produce the correlation work until Kafka has all of it (only then is the batch committed)."""
        topic = self.cluster.topics.correlation
        while True:
            reports = await self._hits.send(topic, messages)
            failed = [message for message, report in zip(messages, reports, strict=True) if report is not None]
            if not failed:
                return
            log.warning("Kafka did not take correlation work; retrying.", count=len(failed))
            messages = failed
            await asyncio.sleep(RETRY_SECONDS)


def _readable(doc: Document) -> Document:
    """``doc`` with its source as a dictionary for the matcher (the encoded JSON is still what is stored)."""
    source = doc.source
    return Document(doc.index, doc.id, source.decoded() if isinstance(source, EncodedSource) else source)

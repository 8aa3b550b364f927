"""The Kafka sink: a collector of the scale-out mode produces its events to ``<prefix>.events``.

Each document goes as its buffer frame (:mod:`secmon.store.frames`), keyed by agency and host
(``organization.id|host.name``), so one host's events stay in order on one partition, and its
correlation and alert groups are counted by one detect worker. The producer is idempotent with
``acks=all``; a document is final once every in-sync replica has it, and only then is it
acknowledged to the disk buffer and its source. While Kafka is unreachable a batch is retried by
:class:`~secmon.collect.sinks.delivery.Delivery` (a message librdkafka could not deliver within
its timeout makes the batch's retry) and the events wait in the disk buffer.

A document Kafka refuses for good (larger than the topic's ``max.message.bytes``) goes to
``state_dir/deadletter.ndjson`` with the reason, as a collector-only agency keeps what its central refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from confluent_kafka import KafkaError

from secmon.bus.cluster import Cluster
from secmon.bus.producing import BatchProducer
from secmon.collect.sinks.delivery import (
    Delivery,
    DeliveryStats,
    Envelope,
    Receipt,
    Refusal,
    Result,
    RetryRequest,
    Verdict,
)
from secmon.collect.sinks.forward import DeadLetterFile
from secmon.events import get_field
from secmon.store.documents import Document, EncodedSource, Outcome
from secmon.store.frames import encode_frame

if TYPE_CHECKING:
    from secmon.collect.sinks import SinkEnvironment
    from secmon.config import Settings

_REFUSED = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_MSG_SIZE, KafkaError.INVALID_RECORD})


class KafkaSink:
    """Produces documents to the events topic; use as ``async with sink: await sink.write(docs)``."""

    def __init__(self, cluster: Cluster, deadletter_path: Path, *, retry_initial: float, retry_max: float) -> None:
        self.stats = DeliveryStats()
        self._transport = ProduceTransport(cluster, self.stats)
        self._delivery = Delivery(
            self._transport,
            DeadLetterFile(deadletter_path, self._transport.receiver),
            self.stats,
            retry_initial=retry_initial,
            retry_max=retry_max,
        )

    async def __aenter__(self) -> KafkaSink:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._transport.producer.close()

    async def write(self, docs: Sequence[Document]) -> list[Outcome]:
        """Produce ``docs``; returns each one's outcome, in order, once Kafka acknowledged them all."""
        receipt = Receipt(len(docs))
        await self._delivery.deliver([Envelope(doc, encode_frame(doc), receipt, i) for i, doc in enumerate(docs)])
        return await receipt.wait()


class ProduceTransport:
    """Sends a batch as Kafka messages and reads each one's delivery report."""

    def __init__(self, cluster: Cluster, stats: DeliveryStats) -> None:
        self.topic = cluster.topics.events
        self.receiver = f"kafka://{cluster.bootstrap}/{self.topic}"
        self._stats = stats
        self.producer = BatchProducer(cluster.bootstrap, cluster.options)

    async def send(self, batch: Sequence[Envelope]) -> list[Result]:
        messages = [(partition_key(envelope.doc), envelope.payload) for envelope in batch]
        self._stats.requests += 1
        self._stats.bytes_sent += sum(len(envelope.payload) for envelope in batch)
        reports = await self.producer.send(self.topic, messages)
        if all(report is None for report in reports):
            return [Verdict.STORED] * len(batch)
        if not any(report is not None and report.code() in _REFUSED for report in reports):
            reason = next(str(report) for report in reports if report is not None)
            raise RetryRequest(f"Kafka did not take the batch: {reason}")
        return [_result(report) for report in reports]


def _result(report: KafkaError | None) -> Result:
    if report is None:
        return Verdict.STORED
    if report.code() in _REFUSED:
        return Refusal(report.name(), report.str())
    return Verdict.RETRY


def partition_key(doc: Document) -> bytes:
    """``organization.id|host.name``: one host's events on one partition, in order."""
    source = doc.source
    event = source.decoded() if isinstance(source, EncodedSource) else source
    host = get_field(event, "host.name") or get_field(event, "host.hostname") or ""
    return f"{get_field(event, 'organization.id') or ''}|{host}".encode()


def build(settings: Settings, environment: SinkEnvironment) -> KafkaSink:
    """The Kafka sink of ``environment.cluster``, for the ``kafka`` entry of :data:`~secmon.collect.sinks.SINKS`."""
    if environment.cluster is None:
        raise ValueError("the kafka sink needs the cluster the bus settings name")
    return KafkaSink(
        environment.cluster,
        settings.state_dir / "deadletter.ndjson",
        retry_initial=settings.writer.retry_initial,
        retry_max=settings.writer.retry_max,
    )

"""Kafka clients as secmon uses them: librdkafka (confluent-kafka) with the settings its delivery rules need.

The producer is idempotent with ``acks=all``: a source may be acknowledged once its event is in
Kafka, and a retried send never writes it twice nor out of order. The consumer commits nothing
by itself: whoever consumes commits an offset once everything before it has been delivered.
"""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

ConfigValue = str | int | float | bool


def producer(bootstrap: str, extra: Mapping[str, ConfigValue] | None = None) -> Producer:
    """An idempotent producer (``acks=all``) of the cluster at ``bootstrap``; ``extra`` adds librdkafka options."""
    config: dict[str, ConfigValue] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        # Java clients' partitioner: a key lands on the same partition whichever client produced it.
        "partitioner": "murmur2_random",
        **(extra or {}),
    }
    return Producer(config)


def consumer(bootstrap: str, group: str, extra: Mapping[str, ConfigValue] | None = None) -> Consumer:
    """A consumer in ``group`` that commits offsets only when told; ``extra`` adds librdkafka options."""
    config: dict[str, ConfigValue] = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        # At-least-once: the consumer commits after delivery, never on a timer.
        "enable.auto.commit": False,
        # A new group reads a topic from its start: nothing produced before it joined is skipped.
        "auto.offset.reset": "earliest",
        **(extra or {}),
    }
    return Consumer(config)


def admin(bootstrap: str, extra: Mapping[str, ConfigValue] | None = None) -> AdminClient:
    """An admin client of the cluster at ``bootstrap`` (topics, consumer groups); ``extra`` adds librdkafka options."""
    return AdminClient({"bootstrap.servers": bootstrap, **(extra or {})})

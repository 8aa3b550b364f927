"""The Kafka cluster a configuration names, or the local broker secmon runs when it names none."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from secmon.bus.local import LocalKafka
from secmon.bus.topics import Topics, ensure_topics
from secmon.config import BusSettings, KafkaOption
from secmon.log import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Cluster:
    """Where the bus is: its bootstrap servers, the client options and secmon's topic names."""

    bootstrap: str
    options: dict[str, KafkaOption]
    topics: Topics


@contextlib.asynccontextmanager
async def connected(bus: BusSettings, topic_prefix: str) -> AsyncIterator[Cluster]:
    """The configured cluster, or the local broker started (and stopped on exit, if started here).

    secmon's topics are created where missing, with ``bus.partitions`` and ``bus.replication_factor``.
    """
    local: LocalKafka | None = None
    bootstrap = bus.bootstrap_servers
    if bootstrap is None:
        broker = LocalKafka(bus.local)
        if (await asyncio.to_thread(broker.start)).started:
            local = broker
        bootstrap = broker.bootstrap
    cluster = Cluster(bootstrap, dict(bus.options), Topics(topic_prefix, bus.group))
    try:
        await asyncio.to_thread(
            ensure_topics,
            bootstrap,
            cluster.topics,
            partitions=bus.partitions,
            replication_factor=bus.replication_factor,
            options=cluster.options,
        )
        log.info("Kafka ready.", bootstrap=bootstrap, events=cluster.topics.events)
        yield cluster
    finally:
        if local is not None:
            await asyncio.to_thread(local.stop)

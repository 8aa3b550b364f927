"""secmon's topics and consumer groups on a Kafka cluster, and creating them.

    <prefix>.events       collectors → detect workers: ECS events, keyed by agency and host
    <prefix>.correlation  detect workers → correlating workers: base-rule hits that correlations
                          count, keyed by correlation family and group-by values

Consumer groups: ``<group>-detect`` reads the events, ``<group>-correlate`` the hits. Every
detect worker is in both, so whichever worker owns a key's partition counts that key.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]  # exported, not in __all__

from secmon.bus.client import ConfigValue, admin
from secmon.errors import BrokerError


@dataclass(frozen=True, slots=True)
class Topics:
    """The names of secmon's topics and consumer groups under one prefix."""

    prefix: str
    group_prefix: str | None = None

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def correlation(self) -> str:
        return f"{self.prefix}.correlation"

    @property
    def detect_group(self) -> str:
        return f"{self.group_prefix or self.prefix}-detect"

    @property
    def correlate_group(self) -> str:
        return f"{self.group_prefix or self.prefix}-correlate"


def client_id(role: str) -> str:
    """How a process names itself to the cluster: role, host and pid, so status can say who owns a partition."""
    return f"secmon-{role}-{socket.gethostname()}-{os.getpid()}"


def ensure_topics(
    bootstrap: str,
    topics: Topics,
    *,
    partitions: int,
    replication_factor: int,
    options: Mapping[str, ConfigValue] | None = None,
    timeout: float = 30.0,
) -> None:
    """Create secmon's topics where they are missing; existing ones are left as they are."""
    client = admin(bootstrap, options)
    wanted = [
        NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)
        for name in (topics.events, topics.correlation)
    ]
    for name, future in client.create_topics(wanted, operation_timeout=timeout, request_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise BrokerError(f"cannot create topic {name} on {bootstrap}: {error}") from exc

"""A real Kafka broker of the bus tests' own: secmon's local broker on ports 9392/9393, started fresh.

Its own ports keep it apart from a broker a user started with ``secmon kafka start`` (9092/9093);
the jars are fetched into (or found in) the same cache. ``SECMON_TEST_KAFKA_PORT`` moves it (and
its controller to the next port), so that two test sessions never share one broker. Tests that
stop it start it again, and the session stops it at its end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from secmon.bus import LocalKafka
from secmon.config import LocalKafkaSettings

TEST_BROKER_PORT = int(os.environ.get("SECMON_TEST_KAFKA_PORT", "9392"))
TEST_CONTROLLER_PORT = TEST_BROKER_PORT + 1


@pytest.fixture(scope="session")
def local_kafka() -> Iterator[LocalKafka]:
    """The session's broker, started with empty data, and stopped when the session ends."""
    settings = LocalKafkaSettings(port=TEST_BROKER_PORT, controller_port=TEST_CONTROLLER_PORT, heap="256m")  # type: ignore[call-arg]
    broker = LocalKafka(settings)
    broker.start(fresh=True)
    yield broker
    broker.stop()


@pytest.fixture
def kafka(local_kafka: LocalKafka) -> str:
    """The bootstrap server of the running test broker (started again if a test stopped it)."""
    local_kafka.start()
    return local_kafka.bootstrap

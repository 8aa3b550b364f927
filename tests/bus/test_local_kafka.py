"""The local Kafka broker for real: keyed messages through the idempotent producer, a restart, the CLI.

Every message is checked on the way back: none lost, none twice, and those of one key on one
partition in the order they were sent (what the collect role will rely on for one host's events).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message
from confluent_kafka.admin import AdminClient, NewTopic

from secmon.bus import LocalKafka, consumer, producer
from secmon.config import LocalKafkaSettings
from secmon.errors import BrokerError
from tests.support.wait import wait_until

MESSAGES = 1_000
KEYS = 25  # hosts, say: 40 messages each
PARTITIONS = 3


def new_topic(bootstrap: str, partitions: int = PARTITIONS) -> str:
    """A topic of its own for one test, once the broker lists it with all its partitions."""
    name = f"test-{secrets.token_hex(4)}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
        future.result(timeout=60)

    def listed_partitions() -> int:
        topic = admin.list_topics(topic=name, timeout=10).topics.get(name)
        return len(topic.partitions) if topic is not None and topic.error is None else 0

    wait_until(listed_partitions, f"topic {name} with {partitions} partitions", done=lambda n: n == partitions)
    return name


def keyed_messages() -> list[tuple[str, str]]:
    """(key, value) pairs: each key's values count up from 0, the keys interleaved."""
    return [(f"host-{n % KEYS}", f"host-{n % KEYS}:{n // KEYS}") for n in range(MESSAGES)]


def produce(bootstrap: str, topic: str, messages: list[tuple[str, str]]) -> dict[str, set[int]]:
    """Send ``messages`` with secmon's producer; the partitions each key was delivered to."""
    partitions: dict[str, set[int]] = defaultdict(set)
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failures.append(error)
            return
        key = message.key()
        partition = message.partition()
        assert key is not None and partition is not None
        partitions[key.decode()].add(partition)

    client = producer(bootstrap)
    for key, value in messages:
        client.produce(topic, key=key, value=value, on_delivery=delivered)
        client.poll(0)
    assert client.flush(60) == 0, "messages still unacknowledged after flush"
    assert failures == []
    return partitions


def consume(bootstrap: str, topic: str, count: int) -> list[Message]:
    """The first ``count`` messages a new consumer group reads from ``topic``, in the order it got them."""
    received: list[Message] = []
    client = consumer(bootstrap, f"test-{secrets.token_hex(4)}")
    client.subscribe([topic])

    def read() -> int:
        for message in client.consume(num_messages=500, timeout=0.5):
            assert message.error() is None, message.error()
            received.append(message)
        return len(received)

    try:
        wait_until(read, f"{count} messages from {topic}", done=lambda n: n >= count)
    finally:
        client.close()
    return received


def exited(pid: int) -> bool:
    """Whether process ``pid`` is gone (or a zombie, until whoever adopted it reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def text(message: Message) -> str:
    value = message.value()
    assert isinstance(value, bytes)
    return value.decode()


def test_keyed_messages_come_back_once_each_in_order_on_one_partition_per_key(kafka: str) -> None:
    topic = new_topic(kafka)
    sent = keyed_messages()
    delivered_to = produce(kafka, topic, sent)

    received = consume(kafka, topic, MESSAGES)

    assert sorted(text(m) for m in received) == sorted(value for _, value in sent)
    sequence: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    offsets: dict[int, list[int]] = defaultdict(list)
    for message in received:
        key, number = text(message).split(":")
        partition, offset = message.partition(), message.offset()
        assert partition is not None and offset is not None
        sequence[key].append(int(number))
        partitions[key].add(partition)
        offsets[partition].append(offset)
    assert all(numbers == list(range(MESSAGES // KEYS)) for numbers in sequence.values()), sequence
    assert all(len(found) == 1 for found in partitions.values()), partitions
    assert partitions == delivered_to
    assert sorted(offsets) == list(range(PARTITIONS)), "the keys should spread over every partition"
    assert all(found == sorted(found) and len(set(found)) == len(found) for found in offsets.values())


def test_the_status_follows_a_stop_and_a_restart_keeps_every_message(local_kafka: LocalKafka, kafka: str) -> None:
    topic = new_topic(kafka)
    sent = keyed_messages()
    produce(kafka, topic, sent)
    before = local_kafka.status()
    assert before.running and before.pid is not None and before.cluster_id

    local_kafka.stop()

    stopped = local_kafka.status()
    assert not stopped.running and stopped.pid is None
    assert exited(before.pid)
    assert not local_kafka.pid_file.exists()

    again = local_kafka.start()
    assert again.started and again.running and again.cluster_id == before.cluster_id
    assert sorted(text(m) for m in consume(kafka, topic, MESSAGES)) == sorted(value for _, value in sent)


def test_a_fresh_start_begins_a_new_empty_cluster(local_kafka: LocalKafka, kafka: str) -> None:
    new_topic(kafka)
    before = local_kafka.status()
    assert before.topics is not None and before.topics >= 1
    local_kafka.stop()

    fresh = local_kafka.start(fresh=True)

    assert fresh.started and fresh.topics == 0
    assert fresh.cluster_id != before.cluster_id


def secmon_kafka(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secmon", "kafka", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


def test_cli_status_reports_the_running_broker(local_kafka: LocalKafka, kafka: str) -> None:
    status = local_kafka.status()
    settings = local_kafka.settings
    ports = ["--port", str(settings.port), "--controller-port", str(settings.controller_port)]

    result = secmon_kafka("status", *ports, "--home", str(settings.home))

    assert result.returncode == 0, result.stderr
    assert f"Kafka 4.4.0 at {kafka}: running" in result.stdout
    assert f"cluster {status.cluster_id}" in result.stdout
    assert f"pid {status.pid}" in result.stdout


def test_cli_status_says_when_no_broker_runs(local_kafka: LocalKafka) -> None:
    idle = LocalKafka(LocalKafkaSettings(port=9394, controller_port=9395, home=local_kafka.settings.home))  # type: ignore[call-arg]
    assert not idle.status().running

    result = secmon_kafka("status", "--port", "9394", "--controller-port", "9395")

    assert result.returncode == 1
    assert "The local Kafka broker is not running (127.0.0.1:9394)" in result.stdout
    assert "secmon kafka start" in result.stdout


def test_a_port_taken_by_something_else_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = LocalKafka(LocalKafkaSettings(port=9396, controller_port=port, home=tmp_path))  # type: ignore[call-arg]

        with pytest.raises(BrokerError, match=f"already listens on 127.0.0.1:{port}.*controller_port"):
            broker.start()

    assert broker.pid() is None
    assert not (tmp_path / "dist").exists(), "nothing is fetched for a broker that cannot start"

"""Consumer lag as ``secmon status`` and the panel report it, checked against a real broker.

The expected offsets come from the test's own delivery reports and commits, never from
secmon.bus.lag. The broker is this module's own (ports 9492/9493), apart from the bus tests'
shared one, started with empty data and stopped when the module is done.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from typer.testing import CliRunner

from secmon.bus import LocalKafka, consumer, producer
from secmon.bus.lag import PartitionLag, group_lag, rates
from secmon.bus.topics import Topics, client_id, ensure_topics
from secmon.cli.app import app
from secmon.cli.panel import KafkaLag
from secmon.config import BusSettings, LocalKafkaSettings
from secmon.errors import BrokerError
from tests.support.net import free_port

LAG_BROKER_PORT = 9492
LAG_CONTROLLER_PORT = 9493
PARTITIONS = 3


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    """This module's broker, started with empty data, stopped when the module's tests are done."""
    settings = LocalKafkaSettings(port=LAG_BROKER_PORT, controller_port=LAG_CONTROLLER_PORT, heap="256m")  # type: ignore[call-arg]
    broker = LocalKafka(settings)
    broker.start(fresh=True)
    yield broker.bootstrap
    broker.stop()


def new_topics(bootstrap: str) -> Topics:
    """secmon's two topics under a prefix of the test's own, 3 partitions each."""
    topics = Topics(f"lag-{secrets.token_hex(4)}")
    ensure_topics(bootstrap, topics, partitions=PARTITIONS, replication_factor=1)
    return topics


def produce(bootstrap: str, topic: str, counts: dict[int, int]) -> dict[int, int]:
    """``counts[p]`` events into partition ``p``; each partition's next offset, as the delivery reports say."""
    ends: dict[int, int] = {}
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failures.append(error)
            return
        partition, offset = message.partition(), message.offset()
        assert partition is not None and offset is not None
        ends[partition] = max(ends.get(partition, 0), offset + 1)

    sender = producer(bootstrap)
    for partition, count in counts.items():
        for n in range(count):
            sender.produce(topic, value=f"event {n}".encode(), partition=partition, on_delivery=delivered)
    assert sender.flush(30) == 0
    assert not failures
    return ends


def consume_until(reader: Consumer, enough: dict[int, int], timeout: float = 30.0) -> dict[int, list[int]]:
    """Poll until ``enough[p]`` events of each partition ``p`` came; the offsets that came, by partition."""
    seen: dict[int, list[int]] = {partition: [] for partition in range(PARTITIONS)}
    deadline = time.monotonic() + timeout
    while any(len(seen[partition]) < count for partition, count in enough.items()):
        assert time.monotonic() < deadline, f"consumed only {seen}"
        message = reader.poll(0.5)
        if message is None or message.error() is not None:
            continue
        partition, offset = message.partition(), message.offset()
        assert partition is not None and offset is not None
        seen[partition].append(offset)
    return seen


def by_partition(rows: list[PartitionLag], group: str) -> dict[int, tuple[int | None, int, int, str | None]]:
    """A group's rows as partition → (committed, end, lag, owner)."""
    return {row.partition: (row.committed, row.end, row.lag, row.owner) for row in rows if row.group == group}


def detect_member(bootstrap: str, topics: Topics) -> Consumer:
    """A consumer in the detect group, named as a detect worker names itself, subscribed to the events."""
    reader = consumer(bootstrap, topics.detect_group, {"client.id": client_id("detect")})
    reader.subscribe([topics.events])
    return reader


def test_lag_per_partition_its_owner_and_the_rates_match_what_was_produced_and_committed(bootstrap: str) -> None:
    topics = new_topics(bootstrap)
    ends = produce(bootstrap, topics.events, {0: 10, 1: 7, 2: 5})
    reader = detect_member(bootstrap, topics)
    try:
        seen = consume_until(reader, {0: 4, 1: 7})
        # Processed: the first 4 events of partition 0, all of partition 1, nothing of partition 2.
        committed = {0: seen[0][3] + 1, 1: seen[1][-1] + 1}
        reader.commit(offsets=[TopicPartition(topics.events, p, o) for p, o in committed.items()], asynchronous=False)
        me = client_id("detect")

        rows = group_lag(bootstrap, topics)
        assert by_partition(rows, topics.detect_group) == {
            0: (committed[0], ends[0], ends[0] - committed[0], me),
            1: (committed[1], ends[1], 0, me),
            2: (None, ends[2], ends[2], me),  # nothing committed: all of it is lag
        }
        assert {row.owner_host for row in rows if row.group == topics.detect_group} == {"127.0.0.1"}
        assert all(row.topic == topics.events for row in rows if row.group == topics.detect_group)
        # Nobody correlates yet: empty partitions, no commits, no owner.
        assert by_partition(rows, topics.correlate_group) == dict.fromkeys(range(PARTITIONS), (None, 0, 0, None))

        more = produce(bootstrap, topics.events, {2: 6})
        reader.commit(offsets=[TopicPartition(topics.events, 2, ends[2])], asynchronous=False)
        after = group_lag(bootstrap, topics)
        assert by_partition(after, topics.detect_group)[2] == (ends[2], more[2], more[2] - ends[2], me)
        speeds = {rate.group: rate for rate in rates(rows, after, seconds=2.0)}
        assert speeds[topics.detect_group].produced == 6 / 2.0
        assert speeds[topics.detect_group].consumed == ends[2] / 2.0  # partition 2 went from nothing to ends[2]
        assert speeds[topics.correlate_group].produced == speeds[topics.correlate_group].consumed == 0
    finally:
        reader.close()

    gone = group_lag(bootstrap, topics)  # the member left: its partitions have no owner, its commits stay
    assert by_partition(gone, topics.detect_group) == {
        0: (committed[0], ends[0], ends[0] - committed[0], None),
        1: (committed[1], ends[1], 0, None),
        2: (ends[2], more[2], more[2] - ends[2], None),
    }


def test_secmon_status_shows_each_groups_partitions_with_their_lag(bootstrap: str, tmp_path: Path) -> None:
    topics = new_topics(bootstrap)
    ends = produce(bootstrap, topics.events, {0: 3})
    reader = detect_member(bootstrap, topics)
    try:
        seen = consume_until(reader, {0: 1})
        reader.commit(offsets=[TopicPartition(topics.events, 0, seen[0][0] + 1)], asynchronous=False)
    finally:
        reader.close()
    config = tmp_path / "secmon.yml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\nmetrics:\n  address: null\n"
        f"bus:\n  bootstrap_servers: {bootstrap}\n  topic_prefix: {topics.prefix}\n"
    )

    result = CliRunner().invoke(app, ["--config", str(config), "status"])

    assert result.exit_code == 0, result.output  # no metrics to read, but Kafka answers
    lines = result.output.splitlines()
    title = lines.index(f"Kafka {topics.detect_group} ← {topics.events}")
    assert lines[title + 1].split("\t") == ["partition", "owner", "committed", "end", "lag"]
    assert lines[title + 2].split("\t") == ["0", "unassigned", str(seen[0][0] + 1), str(ends[0]), str(ends[0] - 1)]
    assert lines[title + 3].split("\t") == ["1", "unassigned", "none", "0", "0"]
    assert f"{topics.detect_group}: lag {ends[0] - 1} in total, 0 owning members" in result.output
    assert f"Kafka {topics.correlate_group} ← {topics.correlation}" in lines


async def test_the_panel_shows_each_groups_total_lag_and_who_owns_its_partitions(bootstrap: str) -> None:
    topics = new_topics(bootstrap)
    ends = produce(bootstrap, topics.events, {0: 4, 1: 2})
    reader = detect_member(bootstrap, topics)
    try:
        consume_until(reader, {0: 1})
        panel = KafkaLag(BusSettings(bootstrap_servers=bootstrap), topics.prefix)  # type: ignore[call-arg]
        await panel.read()
        await panel.read()  # a second reading gives the events/s
        shown = {label: str(value) for label, value in panel.summary()}
    finally:
        reader.close()
    owners = " ".join(map(str, range(PARTITIONS)))
    assert shown[topics.detect_group] == f"lag {ends[0] + ends[1]}   0/s in  0/s out   {client_id('detect')}: {owners}"
    assert shown[topics.correlate_group] == f"lag 0   0/s in  0/s out   unassigned: {owners}"


def test_an_unreachable_cluster_fails_at_once_naming_its_address() -> None:
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(BrokerError, match=address):
        group_lag(address, Topics("nowhere"), timeout=10.0)
    assert time.monotonic() - started < 2.0  # a closed port is told at once, not at the timeout


def test_secmon_status_says_which_cluster_does_not_answer(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    config = tmp_path / "secmon.yml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\nmetrics:\n  address: null\nbus:\n  bootstrap_servers: {address}\n"
    )

    result = CliRunner().invoke(app, ["--config", str(config), "status"])

    assert result.exit_code == 1
    assert f"Kafka at {address} does not answer" in " ".join(result.output.split())

"""How far secmon's consumer groups are behind, partition by partition, and who owns each partition.

For each group (``<group>-detect`` on the events topic, ``<group>-correlate`` on the
correlation topic) :func:`group_lag` reads the partitions' watermarks, the group's committed
offsets and its members' assignments; :func:`rates` turns two such readings into events/s
produced into a topic and consumed by its group. ``secmon status`` and the panel show both.

The committed offsets come from a throwaway consumer of the group (one that never subscribes,
so it never joins it), not from ``AdminClient.list_consumer_group_offsets``: librdkafka 2.x
crashes the whole process when that call meets a NOT_COORDINATOR answer (librdkafka#5040),
which a broker gives while it loads the offsets topic or after the coordinator moved, and the
panel runs inside ``secmon up``.

Everything here is synchronous (librdkafka blocks): call it with ``asyncio.to_thread``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from confluent_kafka import OFFSET_INVALID, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # OffsetSpec is re-exported, not in __all__
    AdminClient,
    OffsetSpec,
)

from secmon.bus.client import ConfigValue, admin, consumer
from secmon.bus.topics import Topics, client_id
from secmon.config import BusSettings
from secmon.errors import BrokerError

# Answers of a cluster still electing a partition's leader or loading a group's coordinator
# (just after a topic was created or a broker restarted): asking again shortly succeeds.
_TRANSIENT = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
}
# What librdkafka says when no broker answered in time (no connection, or no reply).
_UNANSWERED = {KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}
_RETRY_PAUSE = 0.2
_PROBE_SECONDS = 1.0  # a bootstrap server that takes longer to accept a connection is not refusing it
# confluent-kafka leaves these two constructors unannotated.
_EARLIEST: OffsetSpec = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
_LATEST: OffsetSpec = OffsetSpec.latest()  # type: ignore[no-untyped-call]
# Critical only: the failures that matter come back as exceptions, and a refused connection
# printed on stderr would garble the panel.
_QUIET: dict[str, ConfigValue] = {"log_level": 2}

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition of a group's topic: how far the group got, how far the topic goes, who reads it."""

    group: str
    topic: str
    partition: int
    committed: int | None  # the group's committed offset; None when it committed none
    start: int  # the low watermark: the oldest offset the partition still holds
    end: int  # the high watermark: the offset the next event appended gets
    lag: int  # events the group has yet to commit: end - committed (end - start when it committed none)
    owner: str | None  # client.id of the member assigned the partition now; None when no member has it
    owner_host: str | None = None  # that member's address as the broker sees it

    @property
    def position(self) -> int:
        """The offset the group has reached: its committed offset, else the start of the partition."""
        return self.end - self.lag


@dataclass(frozen=True, slots=True)
class GroupRate:
    """Events/s between two readings: appended to ``topic``, and committed past by ``group``."""

    group: str
    topic: str
    produced: float
    consumed: float


def bus_address(bus: BusSettings) -> str:
    """The bootstrap servers of the configured bus: its cluster, else the local broker."""
    return bus.bootstrap_servers or f"{bus.local.host}:{bus.local.port}"


def group_lag(
    bootstrap: str,
    topics: Topics,
    options: Mapping[str, ConfigValue] | None = None,
    timeout: float = 10.0,
) -> list[PartitionLag]:
    """Every partition of the detect group's events topic and the correlate group's correlation topic.

    A topic that does not exist (yet) has no rows. Raises :class:`BrokerError` naming
    ``bootstrap`` when the cluster does not answer within ``timeout`` seconds in all, or refuses
    a request (authorization, for one).
    """
    deadline = _Deadline(bootstrap, timeout)
    _check_listening(bootstrap, deadline)
    extra = {**_QUIET, **(options or {})}
    client = _client(bootstrap, lambda: admin(bootstrap, extra))
    read = {topics.detect_group: topics.events, topics.correlate_group: topics.correlation}
    metadata = _retrying(deadline, "the topics' metadata", lambda: client.list_topics(timeout=deadline.left()))
    partitions = [
        TopicPartition(topic, partition)
        for topic in read.values()
        if topic in metadata.topics
        for partition in sorted(metadata.topics[topic].partitions)
    ]
    if not partitions:
        return []
    starts, ends = _watermarks(client, partitions, deadline)
    owners = _owners(client, list(read), deadline)
    rows: list[PartitionLag] = []
    for group, topic in read.items():
        mine = [tp for tp in partitions if tp.topic == topic]
        if not mine:
            continue
        committed = _committed(bootstrap, group, mine, extra, deadline)
        for tp in mine:
            key = (tp.topic, tp.partition)
            start, end, done = starts[key], ends[key], committed.get(key)
            owner, host = owners.get((group, *key), (None, None))
            rows.append(
                PartitionLag(
                    group=group,
                    topic=tp.topic,
                    partition=tp.partition,
                    committed=done,
                    start=start,
                    end=end,
                    lag=max(0, end - (start if done is None else done)),
                    owner=owner,
                    owner_host=host,
                )
            )
    return rows


def rates(before: Iterable[PartitionLag], after: Iterable[PartitionLag], seconds: float) -> list[GroupRate]:
    """Events/s per group from two readings ``seconds`` apart; partitions in only one of them are left out."""
    earlier = {(row.group, row.topic, row.partition): row for row in before}
    produced: dict[tuple[str, str], int] = {}
    consumed: dict[tuple[str, str], int] = {}
    for row in after:
        key = (row.group, row.topic)
        produced.setdefault(key, 0)
        consumed.setdefault(key, 0)
        previous = earlier.get((row.group, row.topic, row.partition))
        if previous is None:
            continue
        # A topic deleted and created again starts over: that is no negative traffic.
        produced[key] += max(0, row.end - previous.end)
        consumed[key] += max(0, row.position - previous.position)
    span = max(seconds, 1e-9)
    return [
        GroupRate(group, topic, produced[group, topic] / span, consumed[group, topic] / span)
        for group, topic in produced
    ]


def total_lag(rows: Iterable[PartitionLag]) -> dict[str, int]:
    """The lag of each group summed over its partitions, in the order the groups come."""
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.group] = totals.get(row.group, 0) + row.lag
    return totals


class _Deadline:
    """One time budget shared by every request of a reading, and the errors that name the cluster."""

    def __init__(self, bootstrap: str, timeout: float) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        self.at = time.monotonic() + timeout

    def left(self) -> float:
        """Seconds left for the next request; raises when none are."""
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise BrokerError(f"Kafka at {self.bootstrap} did not answer within {self.timeout:g}s")
        return remaining

    def failed(self, what: str, exc: BaseException) -> BrokerError:
        """The error of a request for ``what`` that ended with ``exc``."""
        error = _kafka_error(exc)
        if isinstance(exc, TimeoutError) or (error is not None and error.code() in _UNANSWERED):
            reason = f": {error.str()}" if error is not None else ""
            return BrokerError(f"Kafka at {self.bootstrap} did not answer within {self.timeout:g}s ({what}{reason})")
        return BrokerError(f"Kafka at {self.bootstrap} cannot give {what}: {error or exc}")


def _retrying(deadline: _Deadline, what: str, request: Callable[[], T]) -> T:
    """``request()``, asked again while the cluster answers that it is not ready yet and time is left."""
    while True:
        try:
            return request()
        except KafkaException as exc:
            error = _kafka_error(exc)
            if error is None or error.code() not in _TRANSIENT or deadline.at - time.monotonic() < _RETRY_PAUSE:
                raise deadline.failed(what, exc) from exc
        except TimeoutError as exc:  # a future's result() that did not come
            raise deadline.failed(what, exc) from exc
        time.sleep(_RETRY_PAUSE)


def _kafka_error(exc: BaseException) -> KafkaError | None:
    return exc.args[0] if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError) else None


def _client(bootstrap: str, make: Callable[[], T]) -> T:
    try:
        return make()
    except KafkaException as exc:  # an option librdkafka does not know, or a value it refuses
        raise BrokerError(f"no client of Kafka at {bootstrap} with these options: {_kafka_error(exc) or exc}") from exc


def _check_listening(bootstrap: str, deadline: _Deadline) -> None:
    """Fail at once when every bootstrap server refuses a connection, rather than when the time runs out.

    librdkafka keeps retrying a refused connection until the timeout; a plain connect tells a
    closed port or an unknown host straight away. A server slow to answer, or an address this
    cannot parse, is left to librdkafka.
    """
    refused: list[str] = []
    for entry in bootstrap.split(","):
        address = entry.strip().rpartition("://")[2]
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            return
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=min(_PROBE_SECONDS, deadline.left())):
                return
        except TimeoutError:
            return
        except OSError as exc:
            refused.append(f"{address}: {exc.strerror or exc}")
    raise BrokerError(f"Kafka at {bootstrap} does not answer ({'; '.join(refused)})")


def _watermarks(
    client: AdminClient, partitions: Sequence[TopicPartition], deadline: _Deadline
) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
    """The low and high watermark of each partition, asked for in two requests sent together."""

    def request() -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
        asked = [
            client.list_offsets(
                {TopicPartition(tp.topic, tp.partition): spec for tp in partitions}, request_timeout=deadline.left()
            )
            for spec in (_EARLIEST, _LATEST)
        ]
        starts, ends = (
            {
                (tp.topic, tp.partition): int(future.result(timeout=deadline.left()).offset)
                for tp, future in answers.items()
            }
            for answers in asked
        )
        return starts, ends

    return _retrying(deadline, "the partitions' offsets", request)


def _owners(client: AdminClient, groups: list[str], deadline: _Deadline) -> dict[tuple[str, str, int], tuple[str, str]]:
    """(group, topic, partition) → (client.id, host) of the member the partition is assigned to now."""

    def request() -> dict[tuple[str, str, int], tuple[str, str]]:
        owners: dict[tuple[str, str, int], tuple[str, str]] = {}
        for future in client.describe_consumer_groups(groups, request_timeout=deadline.left()).values():
            try:
                description = future.result(timeout=deadline.left())
            except KafkaException as exc:
                error = _kafka_error(exc)
                if error is not None and error.code() == KafkaError.GROUP_ID_NOT_FOUND:
                    continue  # a group nobody joined yet: no owner
                raise
            for member in description.members:
                host = str(member.host).lstrip("/")  # the broker writes it as a Java InetAddress: "/10.0.0.5"
                for tp in member.assignment.topic_partitions if member.assignment else []:
                    owners[description.group_id, tp.topic, tp.partition] = (member.client_id, host)
        return owners

    return _retrying(deadline, "the consumer groups' members", request)


def _committed(
    bootstrap: str,
    group: str,
    partitions: Sequence[TopicPartition],
    extra: Mapping[str, ConfigValue],
    deadline: _Deadline,
) -> dict[tuple[str, int], int]:
    """The group's committed offset of each partition that has one (the module's docstring says why a consumer)."""
    reader = _client(bootstrap, lambda: consumer(bootstrap, group, {**extra, "client.id": client_id("lag")}))

    def request() -> dict[tuple[str, int], int]:
        answers = reader.committed(
            [TopicPartition(tp.topic, tp.partition) for tp in partitions], timeout=deadline.left()
        )
        for tp in answers:
            if tp.error is not None:
                raise KafkaException(tp.error)
        return {(tp.topic, tp.partition): int(tp.offset) for tp in answers if tp.offset != OFFSET_INVALID}

    try:
        return _retrying(deadline, f"the committed offsets of {group}", request)
    finally:
        reader.close()

"""Consuming a topic at least once: a batch's offsets are committed only after it was handled.

:class:`GroupConsumer` polls a consumer group in a thread of its own (librdkafka blocks), hands
each batch to an async handler, and commits a batch's offsets once its handler returned and every
batch before it on the same partition was committed: a worker killed at any point loses nothing,
and what it handled but did not commit is handled again by the partition's next owner (handlers
write with deterministic ids, so a replay stores nothing twice).

Up to ``window`` batches are handled at once (detection of one while the previous is written).
A partition revoked in a rebalance and given back is not handled twice by this worker: what it
already took is skipped. With ``rewind`` a partition it is given is read back from that many
seconds (by message time) before its committed offset, so a worker can rebuild state such as
correlation windows; :class:`Assignment` tells it where the replay ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaException, Message, TopicPartition

from secmon.bus.client import ConfigValue, consumer
from secmon.bus.cluster import Cluster
from secmon.bus.topics import client_id
from secmon.config import BusSettings
from secmon.log import get_logger

log = get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Assignment:
    """A change of the partitions this worker owns, applied between batches.

    ``assigned`` maps each new partition to its committed offset (-1 when the group has none):
    messages before it are a replay (``rewind``) its previous owner already handled.
    """

    assigned: dict[int, int] = field(default_factory=dict)
    revoked: frozenset[int] = frozenset()


Handler = Callable[[list[Message]], Coroutine[Any, Any, None]]
Rebalanced = Callable[[Assignment], Awaitable[None]]


class GroupConsumer:
    """One member of a consumer group over one topic; see the module docstring."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group: str,
        *,
        client_id: str,
        options: dict[str, ConfigValue] | None = None,
        session_timeout: float = 10.0,
        batch_size: int = 2000,
        window: int = 2,
        rewind: float | None = None,
    ) -> None:
        self.topic = topic
        self.batch_size = batch_size
        self.window = window
        self.rewind = rewind
        self.committed_batches = 0
        self._consumer = consumer(
            bootstrap,
            group,
            {
                **(options or {}),
                "client.id": client_id,
                "session.timeout.ms": int(session_timeout * 1000),
                "heartbeat.interval.ms": max(100, int(session_timeout * 1000 / 4)),
            },
        )
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"kafka-{topic}")
        self._changes: list[Assignment] = []  # made in the consumer's thread, taken by the loop
        self._next: dict[int, int] = {}  # partition → the next offset this worker has not taken yet
        self._closed = False
        self._stopping = asyncio.Event()

    @classmethod
    def member(
        cls,
        cluster: Cluster,
        bus: BusSettings,
        topic: str,
        group: str,
        role: str,
        *,
        window: int = 2,
        rewind: float | None = None,
    ) -> GroupConsumer:
        """A member of ``group`` over ``topic`` of ``cluster``, named after ``role``, tuned by the ``bus:`` settings."""
        return cls(
            cluster.bootstrap, topic, group, client_id=client_id(role), options=cluster.options,
            session_timeout=bus.session_timeout, batch_size=bus.batch_size, window=window, rewind=rewind,
        )  # fmt: skip

    async def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, lambda: function(*args, **kwargs))

    async def run(self, handle: Handler, rebalanced: Rebalanced | None = None) -> None:
        """Consume until :meth:`stop` (or cancelled): handle each batch, commit in order, report rebalances first."""
        await self._call(self._consumer.subscribe, [self.topic], on_assign=self._assigned, on_revoke=self._revoked)
        in_flight: deque[tuple[dict[int, int], asyncio.Task[None]]] = deque()
        try:
            while not self._stopping.is_set():
                messages = await self._call(self._consumer.consume, self.batch_size, 0.5)
                changes, self._changes = self._changes, []
                for change in changes:
                    while in_flight:  # what was taken before a rebalance is finished first
                        await self._finish(*in_flight.popleft())
                    if rebalanced is not None:
                        await rebalanced(change)
                batch = self._fresh(messages)
                if batch:
                    in_flight.append((_next_offsets(batch), asyncio.create_task(handle(batch))))
                while in_flight and (in_flight[0][1].done() or len(in_flight) >= self.window or not batch):
                    await self._finish(*in_flight.popleft())
            while in_flight:  # stopping: what was taken is handled and committed before leaving
                await self._finish(*in_flight.popleft())
        finally:
            for _, task in in_flight:
                task.cancel()

    def stop(self) -> None:
        """Take no more messages: :meth:`run` returns once what it took is handled and committed."""
        self._stopping.set()

    async def close(self) -> None:
        """Leave the group (its partitions move to the others at once) and stop the thread."""
        if not self._closed:
            self._closed = True
            with contextlib.suppress(KafkaException, RuntimeError):
                await self._call(self._consumer.close)
            self._thread.shutdown(wait=False)

    # -- internals (the two callbacks run in the consumer's thread, inside consume) -------------

    def _fresh(self, messages: Sequence[Message]) -> list[Message]:
        batch: list[Message] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if not error.retriable() and error.fatal():
                    raise KafkaException(error)
                log.warning("Kafka consumer error.", topic=self.topic, error=str(error))
                continue
            partition, offset = message.partition(), message.offset()
            if partition is None or offset is None or offset < self._next.get(partition, -1):
                continue  # taken before a revoke gave the partition back to this worker
            self._next[partition] = offset + 1
            batch.append(message)
        return batch

    async def _finish(self, offsets: dict[int, int], task: asyncio.Task[None]) -> None:
        await task
        partitions = [TopicPartition(self.topic, partition, offset) for partition, offset in offsets.items()]
        try:
            await self._call(self._consumer.commit, offsets=partitions, asynchronous=False)
            self.committed_batches += 1
        except KafkaException as exc:  # the partitions moved meanwhile: their next owner handles it again
            log.info("Offsets not committed after a rebalance.", topic=self.topic, error=str(exc.args[0]))

    def _assigned(self, kafka: Consumer, partitions: list[TopicPartition]) -> None:
        committed = {tp.partition: tp.offset for tp in kafka.committed(partitions, timeout=30)}
        if self.rewind is not None:
            for tp in partitions:  # its state is rebuilt from the replay: take everything again
                self._next.pop(tp.partition, None)
            since = int((time.time() - self.rewind) * 1000)
            starts = kafka.offsets_for_times([TopicPartition(self.topic, tp.partition, since) for tp in partitions], 30)
            for tp, start in zip(partitions, starts, strict=True):
                done = committed.get(tp.partition, OFFSET_INVALID)
                if done >= 0 and 0 <= start.offset < done:
                    tp.offset = start.offset  # read back what the previous owner handled, to rebuild
            kafka.assign(partitions)
        self._changes.append(Assignment(assigned={p: max(o, -1) for p, o in committed.items()}))
        log.info("Partitions assigned.", topic=self.topic, partitions=sorted(committed))

    def _revoked(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        self._changes.append(Assignment(revoked=frozenset(tp.partition for tp in partitions)))


def _next_offsets(batch: Sequence[Message]) -> dict[int, int]:
    """Per partition, the offset to commit once ``batch`` is handled: after its last message."""
    offsets: dict[int, int] = {}
    for message in batch:
        partition, offset = message.partition(), message.offset()
        if partition is not None and offset is not None:
            offsets[partition] = max(offsets.get(partition, 0), offset + 1)
    return offsets

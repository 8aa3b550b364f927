"""Producing a batch of messages and waiting for each one's delivery report, without blocking the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from confluent_kafka import KafkaError, Message

from secmon.bus.client import ConfigValue, producer

# librdkafka gives up on a message after this long and reports it. Shorter than the flush's
# wait, so every message of a batch has its report when the flush returns.
MESSAGE_TIMEOUT_SECONDS = 30.0


class BatchProducer:
    """An idempotent producer (``acks=all``) that sends batches and returns their delivery reports."""

    def __init__(self, bootstrap: str, options: Mapping[str, ConfigValue] | None = None) -> None:
        self.producer = producer(
            bootstrap, {**(options or {}), "message.timeout.ms": int(MESSAGE_TIMEOUT_SECONDS * 1000), "linger.ms": 5}
        )

    async def send(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> list[KafkaError | None]:
        """Produce ``(key, value)`` pairs to ``topic``; each one's error (None: every in-sync replica has it)."""
        reports: list[KafkaError | None] = [None] * len(messages)

        def reporter(position: int) -> Callable[[KafkaError | None, Message], None]:
            def report(error: KafkaError | None, _: Message) -> None:
                reports[position] = error

            return report

        for position, (key, value) in enumerate(messages):
            while True:
                try:
                    self.producer.produce(topic, value, key, on_delivery=reporter(position))
                    break
                except BufferError:  # librdkafka's queue is full: let deliveries free it
                    await asyncio.to_thread(self.producer.poll, 0.1)
        # Every report is in once the flush returns (each message is delivered or timed out by then).
        await asyncio.to_thread(self.producer.flush, MESSAGE_TIMEOUT_SECONDS * 2)
        return reports

    async def close(self) -> None:
        await asyncio.to_thread(self.producer.flush, MESSAGE_TIMEOUT_SECONDS)

"""A full buffer: TCP senders are made to wait, UDP datagrams are dropped and counted."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from secmon.collect.buffer import DiskBuffer
from secmon.collect.sources.settings import SyslogSourceSettings
from secmon.collect.sources.syslog import SyslogSource
from secmon.collect.telemetry import Telemetry
from secmon.collect.topology import Pipeline
from secmon.store import IndexNames
from tests.support.wait import until

LINE = b"<13>Nov 24 10:00:00 host app: " + b"x" * 200 + b"\n"


def undrained_pipeline(tmp_path: Path) -> Pipeline:
    """A pipeline whose 64 kB buffer nobody drains: Elasticsearch is away."""
    return Pipeline(IndexNames("unused"), DiskBuffer(tmp_path, max_bytes=64 * 1024), Telemetry())


async def test_a_full_buffer_stops_reading_tcp_so_the_sender_is_pushed_back(tmp_path: Path) -> None:
    pipeline = undrained_pipeline(tmp_path)
    source = SyslogSource("tcp", SyslogSourceSettings(mode="tcp", address="127.0.0.1:0"), pipeline)  # type: ignore[call-arg]
    await source.start()
    assert source.address is not None
    sender = socket.create_connection(source.address)
    sender.setblocking(False)
    sent = 0
    # Write until the kernel buffers on both sides are full too: the sender cannot go on.
    for _ in range(200):
        try:
            while True:
                sent += sender.send(LINE * 64)
        except BlockingIOError:
            await asyncio.sleep(0.02)
    buffered = pipeline.buffer.pending_bytes
    # The buffer may overshoot by one admitted batch: one 64 kB socket read, as JSON frames.
    assert 64 * 1024 <= buffered < 64 * 1024 + 500 * 1024
    await asyncio.sleep(0.3)
    assert pipeline.buffer.pending_bytes == buffered, "a full buffer must take nothing more"
    assert sent < 32 * 1024 * 1024  # what the kernel's socket buffers hold at most
    assert (
        pipeline.telemetry.value("secmon_component_discarded_events_total", component="tcp", reason="buffer_full") == 0
    )
    # Once the buffer drains, reading resumes.
    _, end = pipeline.buffer.read(10_000, 1 << 30)
    pipeline.buffer.acknowledge(end)
    await until(lambda: pipeline.buffer.pending_bytes, "reading to resume once there is room")
    sender.close()
    await source.stop()
    pipeline.buffer.close()


async def test_udp_drops_what_a_full_buffer_cannot_take_and_counts_it(tmp_path: Path) -> None:
    pipeline = undrained_pipeline(tmp_path)
    source = SyslogSource("udp", SyslogSourceSettings(mode="udp", address="127.0.0.1:0"), pipeline)  # type: ignore[call-arg]
    await source.start()
    assert source.address is not None
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for n in range(1000):
        sender.sendto(LINE, source.address)
        if n % 20 == 0:
            await asyncio.sleep(0.001)
    await asyncio.sleep(0.2)
    sender.close()
    await source.stop()
    received = pipeline.telemetry.value("secmon_component_received_events_total", component="udp")
    sent = pipeline.telemetry.value("secmon_component_sent_events_total", component="udp")
    dropped = pipeline.telemetry.value("secmon_component_discarded_events_total", component="udp", reason="buffer_full")
    assert dropped > 0
    assert sent + dropped == received
    assert pipeline.buffer.pending_bytes <= 64 * 1024
    pipeline.buffer.close()

"""Stages run only on events the buffer took: a full buffer under UDP leaves no notified alert unstored.

Before, detection ran (and notified) before the buffer was asked: a datagram a full buffer
dropped still sent its webhook, and its alert group lived on, so the next hit of that group was
an update of an alert that did not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import textwrap
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from elasticsearch import AsyncElasticsearch

from secmon.collect.buffer import DiskBuffer
from secmon.collect.sinks.elasticsearch import BulkWriter
from secmon.collect.sources.settings import SyslogSourceSettings
from secmon.collect.sources.syslog import SyslogSource
from secmon.collect.telemetry import Telemetry
from secmon.collect.topology import Pipeline
from secmon.config import DetectionSettings, WriterSettings
from secmon.detection.alerts import ALERTS_COMPONENT
from secmon.detection.stage import DetectionStage
from secmon.store import IndexNames, Outcome
from tests.support.pipeline import search_all
from tests.support.wait import until, until_at_least

RULE = """
title: SSH password failure for root
id: 0b8e3f4a-6f5e-4f0e-9a57-3d1c1a7e2b10
status: test
level: high
logsource:
  product: linux
  service: sshd
detection:
  selection:
    event.outcome: failure
    user.name: root
  condition: selection
"""
HOST = "durable-host"


def failure(second: int, user: str = "root") -> bytes:
    line = f"<38>Nov 24 10:00:{second:02d} {HOST} sshd[42]: Failed password for {user} from 192.0.2.7 port 22 ssh2"
    return line.encode()


# What fills the buffer: a failure the rule does not match, as long as a hit, so a hit cannot fit where it did not.
FILLER = failure(0, user="rooo")


async def test_a_hit_dropped_by_a_full_buffer_is_neither_notified_nor_grown_later(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "ssh.yml").write_text(textwrap.dedent(RULE))
    settings = DetectionSettings(rules=[tmp_path / "rules"], group_window="1h")  # type: ignore[call-arg]
    stage = DetectionStage.load(settings, names.alerts, cache_dir=None, telemetry=None)
    notified: list[Mapping[str, Any]] = []
    stage.on_new_alerts = notified.extend
    telemetry = Telemetry()
    pipeline = Pipeline(names, DiskBuffer(tmp_path / "buffer", max_bytes=32 * 1024), telemetry, [stage])
    source = SyslogSource("udp", SyslogSourceSettings(mode="udp", address="127.0.0.1:0"), pipeline)  # type: ignore[call-arg]
    await source.start()
    assert source.address is not None
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def counted(metric: str, **labels: str) -> float:
        return telemetry.value(metric, component="udp", **labels)

    async def send_one(datagram: bytes) -> bool:
        """Send one datagram and wait until the source has taken it; whether the full buffer dropped it."""
        received = counted("secmon_component_received_events_total")
        dropped = counted("secmon_component_discarded_events_total", reason="buffer_full")
        sender.sendto(datagram, source.address)
        await until(lambda: counted("secmon_component_received_events_total") > received, "the datagram")
        return counted("secmon_component_discarded_events_total", reason="buffer_full") > dropped

    # Elasticsearch is away (nothing drains): fill the buffer until it drops a lone datagram.
    while not await send_one(FILLER):
        pass
    # A hit arrives while the buffer is full: it is dropped, and counted.
    assert await send_one(failure(1))
    assert notified == [], "an alert of a dropped event was notified"

    writer = BulkWriter(es, WriterSettings(flush_interval=0.05, retry_initial=0.05, retry_max=0.5), names)  # type: ignore[call-arg]
    async with writer:
        drain = asyncio.create_task(pipeline.drain(writer, batch_size=500))
        try:
            assert await pipeline.wait_drained(60)
            # Elasticsearch is back: the group's next hits are stored and raise one alert.
            sent_before = counted("secmon_component_sent_events_total")
            for second in (2, 3):
                sender.sendto(failure(second), source.address)
            await until_at_least(lambda: counted("secmon_component_sent_events_total"), sent_before + 2, "both hits")
            assert await pipeline.wait_drained(60)
        finally:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
            sender.close()
            await source.stop()
            pipeline.buffer.close()

    stored = await search_all(es, names.alerts, {"term": {"host.name": HOST}})
    assert len(stored) == 1
    (alert,) = stored
    assert [a["alert"]["id"] for a in notified] == [alert["alert"]["id"]]  # type: ignore[index]
    assert alert["alert"]["count"] == 2  # type: ignore[index]  # the two stored hits, not the dropped one
    hits = {"bool": {"filter": [{"term": {"host.hostname": HOST}}, {"term": {"user.name": "root"}}]}}
    assert len(await search_all(es, names.events("system.auth"), hits)) == 2
    outcomes: Counter[Outcome] = writer.stats.by_component[ALERTS_COMPONENT]
    assert set(outcomes) == {Outcome.STORED}, f"an alert write did not land: {dict(outcomes)}"

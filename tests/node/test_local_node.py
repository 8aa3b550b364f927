"""``secmon es start|status|stop`` on a node of this module's own, and an outage in mid-write.

These drive the real command line in a subprocess, as a user would, on port 9260 so the
session's node (9250) is undisturbed while this one is stopped and started. Every test here
uses that node, in order, so the whole module is marked ``outage`` (``-m "not outage"`` skips it).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch.helpers import async_scan

from secmon.collect.buffer import DiskBuffer
from secmon.collect.sinks.elasticsearch import BulkWriter
from secmon.collect.sources.settings import SyslogSourceSettings
from secmon.collect.sources.syslog import SyslogSource
from secmon.collect.telemetry import Telemetry
from secmon.collect.topology import Pipeline
from secmon.config import LocalNodeSettings, Settings, WriterSettings, load_settings
from secmon.node import LocalNode
from secmon.store import IndexNames, Outcome, connect, install_templates
from tests.support.events import event_docs
from tests.support.wait import until_at_least

PORT = 9260
pytestmark = pytest.mark.outage


def secmon(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secmon", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


def processes_in(folder: Path) -> list[int]:
    """Pids of processes whose working directory is inside ``folder``."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if Path(os.readlink(proc / "cwd")).is_relative_to(folder):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("node") / "secmon.yml"
    path.write_text(f"elasticsearch:\n  index_prefix: secmon-node-{secrets.token_hex(3)}\n  local:\n    port: {PORT}\n")
    node = LocalNode(LocalNodeSettings(port=PORT))  # type: ignore[call-arg]
    node.stop()
    shutil.rmtree(node.dir / "data", ignore_errors=True)
    yield path
    node.stop()


def test_start_fetches_and_starts_a_node_and_prints_version_and_health(config: Path) -> None:
    result = secmon(config, "es", "start")
    assert result.returncode == 0, result.stderr
    assert "Elasticsearch 8.19.21" in result.stdout
    assert f"http://127.0.0.1:{PORT}" in result.stdout
    assert "health green" in result.stdout or "health yellow" in result.stdout


def test_status_prints_version_health_and_documents_per_index(config: Path) -> None:
    settings = load_settings(config)
    asyncio.run(_install(settings))
    result = secmon(config, "es", "status")
    assert result.returncode == 0, result.stderr
    assert "Elasticsearch 8.19.21" in result.stdout
    assert f"{settings.elasticsearch.index_prefix}-alerts" in result.stdout


async def _install(settings: Settings) -> None:
    client = connect(settings.elasticsearch)
    await install_templates(client, settings.elasticsearch)
    await client.close()


def test_elasticsearch_stopped_during_writes_loses_nothing_once_the_writer_drains(config: Path) -> None:
    asyncio.run(_write_through_an_outage(config))


async def _write_through_an_outage(config: Path) -> None:
    settings = load_settings(config)
    names = IndexNames(settings.elasticsearch.index_prefix)
    client = connect(settings.elasticsearch, max_retries=0)
    docs = event_docs(names, 12_000, "outage")
    patient = WriterSettings(batch_size=300, retry_initial=0.1, retry_max=1.0)  # type: ignore[call-arg]
    try:
        async with BulkWriter(client, patient, names) as writer:
            node_down = asyncio.Event()

            async def produce() -> list[list[Outcome]]:
                # Half the batches before the outage, half during it: the second half cannot be
                # stored before the node stops, however slowly `secmon es stop` runs.
                calls = []
                for i in range(0, len(docs), 300):
                    if i == len(docs) // 2:
                        await node_down.wait()
                    calls.append(asyncio.create_task(writer.write(docs[i : i + 300])))
                    await asyncio.sleep(0.1)
                return await asyncio.gather(*calls)

            producer = asyncio.create_task(produce())
            await until_at_least(lambda: writer.stats.stored, 1_500, "events stored before the outage", timeout=120)
            stopped = await asyncio.to_thread(secmon, config, "es", "stop")
            assert stopped.returncode == 0, stopped.stderr
            stored_before_outage = writer.stats.stored + writer.stats.duplicates
            retries_before_outage = writer.stats.retries
            node_down.set()
            await until_at_least(
                lambda: writer.stats.retries, retries_before_outage + 1, "the writer's retries while the node is down"
            )
            assert writer.stats.stored + writer.stats.duplicates == stored_before_outage
            assert stored_before_outage < len(docs)
            started = await asyncio.to_thread(secmon, config, "es", "start")
            assert started.returncode == 0, started.stderr
            outcomes = await producer
        assert all(o in (Outcome.STORED, Outcome.DUPLICATE) for batch in outcomes for o in batch)
        index = names.events("outage")
        await client.indices.refresh(index=index)
        ids = [
            hit["_id"]
            async for hit in async_scan(client, index=index, query={"query": {"match_all": {}}}, _source=False)
        ]
        assert len(ids) == len(docs)
        assert set(ids) == {doc.id for doc in docs}
    finally:
        await client.close()


def test_a_tcp_syslog_stream_survives_a_minute_without_elasticsearch(config: Path, tmp_path: Path) -> None:
    asyncio.run(_stream_through_an_outage(config, tmp_path))


async def _stream_through_an_outage(config: Path, tmp_path: Path) -> None:
    settings = load_settings(config)
    names = IndexNames(settings.elasticsearch.index_prefix)
    dataset = f"outage.syslog_{secrets.token_hex(3)}"
    client = connect(settings.elasticsearch, max_retries=0)
    patient = WriterSettings(retry_initial=0.2, retry_max=2.0)  # type: ignore[call-arg]
    buffer = DiskBuffer(tmp_path / "buffer")
    pipeline = Pipeline(names, buffer, Telemetry())
    source = SyslogSource(
        "syslog",
        SyslogSourceSettings(mode="tcp", address="127.0.0.1:0", dataset=dataset),
        pipeline,  # type: ignore[call-arg]
    )
    sent = 0
    try:
        async with BulkWriter(client, patient, names) as writer:
            drain = asyncio.create_task(pipeline.drain(writer))
            await source.start()
            assert source.address is not None
            _, stream = await asyncio.open_connection(*source.address)

            async def steady(seconds: float, per_second: int = 100) -> None:
                nonlocal sent
                for _ in range(int(seconds * 10)):
                    for _ in range(per_second // 10):
                        stream.write(b"<13>Nov 24 10:00:00 host app[1]: message %d\n" % sent)
                        sent += 1
                    await stream.drain()
                    await asyncio.sleep(0.1)

            await steady(3)
            assert (await asyncio.to_thread(secmon, config, "es", "stop")).returncode == 0
            await steady(60)  # a minute without Elasticsearch: the stream goes on, into the buffer
            assert buffer.pending_bytes > 0
            started = asyncio.create_task(asyncio.to_thread(secmon, config, "es", "start"))
            await steady(3)
            assert (await started).returncode == 0
            await steady(2)
            stream.close()
            await until_at_least(
                lambda: pipeline.telemetry.value("secmon_component_sent_events_total", component="syslog"),
                sent,
                "lines the source passed to the buffer",
            )
            await source.stop()
            assert await pipeline.wait_drained(120)
            drain.cancel()
        index = names.events(dataset)
        await client.indices.refresh(index=index)
        stored = [
            hit["_source"]["event"]["original"]
            async for hit in async_scan(client, index=index, query={"query": {"match_all": {}}})
        ]
        assert len(stored) == sent
        assert sorted(stored) == sorted(f"<13>Nov 24 10:00:00 host app[1]: message {n}" for n in range(sent))
    finally:
        buffer.close()
        await client.close()


def test_stop_leaves_no_java_process_behind(config: Path) -> None:
    node = LocalNode(load_settings(config).elasticsearch.local)
    assert processes_in(node.dir), "the node should be running before it is stopped"
    result = secmon(config, "es", "stop")
    assert result.returncode == 0, result.stderr
    assert processes_in(node.dir) == []
    assert not node.pid_file.exists()


def test_status_of_a_stopped_node_says_how_to_start_it(config: Path) -> None:
    result = secmon(config, "es", "status")
    assert result.returncode == 1
    assert "secmon es start" in result.stdout

"""``secmon up`` processes of the scale-out mode for the bus tests: collectors and detect workers.

Each runs as a real subprocess with a configuration of its own (its roles, state_dir and ports),
all sharing one test broker, one Elasticsearch and one topic and index prefix per test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from confluent_kafka import Consumer, TopicPartition

from secmon.bus import consumer
from secmon.bus.client import admin
from secmon.bus.topics import Topics
from secmon.config import ElasticsearchSettings
from secmon.store import cluster_url
from tests.support.net import connects, free_port
from tests.support.wait import until


@dataclass(slots=True)
class Worker:
    """One ``secmon up --role …`` process."""

    name: str
    roles: list[str]
    config: Path
    log_path: Path
    syslog_port: int | None = None
    api_port: int | None = None
    process: asyncio.subprocess.Process | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: nothing is flushed, committed or handed over."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    def send_lines(self, lines: Iterable[str]) -> None:
        """Send syslog lines over TCP (newline-framed) to this collector."""
        assert self.syslog_port is not None
        with socket.create_connection(("127.0.0.1", self.syslog_port)) as sender:
            sender.sendall("".join(f"{line}\n" for line in lines).encode())


@dataclass(slots=True)
class ScaleOut:
    """The processes of one test and what they share."""

    tmp_path: Path
    bootstrap: str
    es: ElasticsearchSettings
    prefix: str
    partitions: int = 3
    detection: dict[str, Any] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)

    @property
    def topics(self) -> Topics:
        return Topics(self.prefix)

    def configure(self, name: str, roles: list[str]) -> Worker:
        syslog_port = free_port() if "collect" in roles else None
        api_port = free_port() if "api" in roles else None
        config: dict[str, Any] = {
            # The node the tests' fixture runs, by its URL: a process told none would start one of its own.
            "elasticsearch": {"url": cluster_url(self.es), "index_prefix": self.prefix},
            "bus": {"bootstrap_servers": self.bootstrap, "partitions": self.partitions, "session_timeout": 6},
            "roles": roles,
            "state_dir": str(self.tmp_path / f"state-{name}"),
            "metrics": {"address": None},
            "api": {"enabled": True, "address": f"127.0.0.1:{api_port}"} if api_port else {"enabled": False},
            "writer": {"flush_interval": 0.05},
            "detection": {"reload_interval": 0.5, **self.detection},
        }
        if syslog_port is not None:
            config["sources"] = {"edge": {"type": "syslog", "mode": "tcp", "address": f"127.0.0.1:{syslog_port}"}}
        path = self.tmp_path / f"secmon-{name}.yml"
        path.write_text(yaml.safe_dump(config))
        return Worker(name, roles, path, self.tmp_path / f"{name}.log", syslog_port, api_port)

    async def start(self, name: str, roles: list[str], *, panel: bool = False) -> Worker:
        """Start ``secmon up`` with ``roles``; ``panel`` draws its live panel into its output."""
        worker = self.configure(name, roles)
        with worker.log_path.open("w") as log_file:  # a file, not a pipe nobody reads
            worker.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "secmon", "--config", str(worker.config), "up",
                "--panel" if panel else "--no-panel", stdout=log_file, stderr=subprocess.STDOUT,
                env={**os.environ, "COLUMNS": "200"} if panel else None,
            )  # fmt: skip
        self.workers.append(worker)
        process = worker.process
        await until(
            lambda: asyncio.to_thread(
                lambda: (
                    process.returncode is None
                    and (worker.syslog_port is None or connects(worker.syslog_port))
                    and (worker.api_port is None or connects(worker.api_port))
                    and "Scale-out roles running" in worker.output()
                )
            ),
            lambda: f"secmon up --role {' '.join(roles)} ({name}) to start; its output:\n{worker.output()}",
            timeout=120,
            interval=0.5,
        )
        return worker

    async def stop_all(self) -> None:
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            if worker.process is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(worker.process.wait(), 60)
                if worker.process.returncode is None:
                    worker.kill()

    def owners(self, group: str) -> dict[int, int]:
        """Partition → the pid of the member of ``group`` that owns it (from the group's own description)."""
        client = admin(self.bootstrap)  # kept while its future runs: a dropped client never answers
        described = client.describe_consumer_groups([group])[group].result(10)
        owners: dict[int, int] = {}
        for member in described.members:
            pid = int(member.client_id.rsplit("-", 1)[1])
            for tp in member.assignment.topic_partitions:
                owners[tp.partition] = pid
        return owners

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """Partition → the group's committed offset (what it has handled for good)."""
        reader = _reader(self.bootstrap, group)
        try:
            partitions = [TopicPartition(topic, p) for p in range(self.partitions)]
            return {tp.partition: tp.offset for tp in reader.committed(partitions, timeout=10)}
        finally:
            reader.close()

    def end_offsets(self, topic: str) -> dict[int, int]:
        reader = _reader(self.bootstrap, f"{self.prefix}-probe")
        try:
            return {
                p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(self.partitions)
            }
        finally:
            reader.close()

    def partitions_of_hosts(self) -> dict[str, int]:
        """host.name → the events topic's partition its events are on, read back from the topic."""
        found: dict[str, int] = {}
        for partition, frame in self.messages(self.topics.events):
            source = orjson.loads(frame.partition(b"\n")[2])
            host = source.get("host", {}).get("name") or source.get("host", {}).get("hostname")
            if host:
                found[host] = partition
        return found

    def messages(self, topic: str) -> list[tuple[int, bytes]]:
        """Every message of ``topic`` now: (partition, value), read by a group of the test's own."""
        ends = self.end_offsets(topic)
        reader = _reader(self.bootstrap, f"{self.prefix}-reader-{os.urandom(4).hex()}")
        reader.assign([TopicPartition(topic, p, 0) for p in range(self.partitions)])
        out: list[tuple[int, bytes]] = []
        try:
            while len(out) < sum(ends.values()):
                for message in reader.consume(500, 1.0):
                    if message.error() is None:
                        out.append((message.partition() or 0, message.value() or b""))
        finally:
            reader.close()
        return out


def _reader(bootstrap: str, group: str) -> Consumer:
    return consumer(bootstrap, group)


@contextlib.asynccontextmanager
async def scale_out(
    tmp_path: Path, bootstrap: str, es: ElasticsearchSettings, prefix: str, **options: Any
) -> AsyncIterator[ScaleOut]:
    cluster = ScaleOut(tmp_path, bootstrap, es, prefix, **options)
    try:
        yield cluster
    finally:
        await cluster.stop_all()

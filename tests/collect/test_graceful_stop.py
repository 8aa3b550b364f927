"""``secmon up`` stopped by SIGTERM while a TCP sender writes: what the sender wrote is stored, and the stop is quiet.

The sender stops writing when SIGTERM is sent and leaves its connection open, as rsyslog does.
Every line it wrote (``sendall`` returned) then sits in secmon's stream buffer or in the kernel's
socket buffers on either side: the stop's grace is for reading exactly that, so every one must be
stored. The stop then closes the connection on the sender.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import yaml
from elasticsearch import AsyncElasticsearch

from secmon.config import ElasticsearchSettings
from secmon.store import IndexNames
from tests.support.net import free_port
from tests.support.pipeline import count_stored, search_all
from tests.support.wait import until

# Generous, so that a loaded machine reads what is in the socket buffers in time; the stop takes
# this long, because the sender never closes its connection.
STOP_GRACE = 10.0
STORED_BEFORE_SIGTERM = 3000  # the sender is well into its stream, and secmon busy with it
LINE = "<38>Nov 24 10:00:00 web1 sshd[42]: Failed password for root from 192.0.2.1 port 22 ssh2 line={n}"


class Sender(threading.Thread):
    """Writes numbered lines over one connection until told to stop, then waits for secmon to close it."""

    def __init__(self, port: int) -> None:
        super().__init__(name="syslog-sender", daemon=True)
        self.socket = socket.create_connection(("127.0.0.1", port))
        self.stop_writing = threading.Event()
        self.written = 0  # lines whose sendall returned
        self.closed_by_secmon = False

    def run(self) -> None:
        with self.socket:
            try:
                while not self.stop_writing.is_set():
                    self.socket.sendall(LINE.format(n=self.written).encode() + b"\n")
                    self.written += 1
                self.closed_by_secmon = self.socket.recv(1) == b""
            except ConnectionError:
                self.closed_by_secmon = True


async def test_sigterm_while_a_tcp_sender_writes_stores_every_line_it_wrote_and_logs_no_error(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, names: IndexNames, tmp_path: Path
) -> None:
    url = es_settings.url or f"http://{es_settings.local.host}:{es_settings.local.port}"
    dataset = f"test.graceful_stop_{secrets.token_hex(3)}"
    port = free_port()
    config = tmp_path / "secmon.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "elasticsearch": {"url": url, "index_prefix": names.prefix},
                "state_dir": str(tmp_path / "state"),
                "metrics": {"address": None},
                "api": {"enabled": False},
                "detection": {"enabled": False},
                "sources": {
                    "edge": {
                        "type": "syslog",
                        "mode": "tcp",
                        "address": f"127.0.0.1:{port}",
                        "dataset": dataset,
                        "stop_grace": STOP_GRACE,
                    }
                },
            }
        )
    )
    log_path = tmp_path / "up.log"  # a file, not a pipe: a pipe nobody reads would block the service when full
    with log_path.open("w") as log_file:
        service = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "secmon", "--config", str(config), "up", stdout=log_file, stderr=subprocess.STDOUT
        )
    index = names.events(dataset)
    sender: Sender | None = None
    try:

        async def listening() -> bool:
            return service.returncode is not None or await _listening(port)

        async def busy() -> bool:
            return await count_stored(es, index) >= STORED_BEFORE_SIGTERM

        await until(listening, "secmon listening", timeout=90)
        assert service.returncode is None, log_path.read_text()
        sender = Sender(port)
        sender.start()
        await until(busy, lambda: f"the sender to be busy; secmon's log: {log_path.read_text()}", timeout=120)
        sender.stop_writing.set()
        service.send_signal(signal.SIGTERM)  # the sender may be inside a sendall: it counts once it returns
        returncode = await asyncio.wait_for(service.wait(), STOP_GRACE + 120)
    finally:
        if service.returncode is None:
            service.kill()
            await service.wait()
    output = log_path.read_text()
    assert returncode == 0, output
    assert sender is not None
    await asyncio.to_thread(sender.join, 30)
    assert sender.closed_by_secmon, "the stop should close the connection once its grace is over"

    stored = [event["event"]["original"] for event in await search_all(es, index)]  # type: ignore[index]
    numbers = sorted(int(str(line).rsplit("line=", 1)[1]) for line in stored)
    assert sender.written > STORED_BEFORE_SIGTERM
    assert numbers == list(range(sender.written)), (
        f"wrote {sender.written} lines, stored {len(numbers)}; "
        f"first missing: {sorted(set(range(sender.written)) - set(numbers))[:10]}"
    )
    assert "Traceback" not in output and "CancelledError" not in output, output
    assert not re.search(r"^\S+ \S+ (ERROR|CRITICAL)\b", output, re.MULTILINE), output


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True

"""``secmon up`` as a user runs it: a subprocess with a syslog source, then ``secmon status``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from secmon.config import ElasticsearchSettings
from secmon.store import IndexNames
from tests.support.net import connects, free_port
from tests.support.wait import wait_until


def test_up_receives_syslog_stores_it_reports_it_and_stops_cleanly(
    es_settings: ElasticsearchSettings, names: IndexNames, tmp_path: Path
) -> None:
    url = es_settings.url or f"http://{es_settings.local.host}:{es_settings.local.port}"
    syslog_port, metrics_port = free_port(), free_port()
    dataset = f"test.up_{os.getpid()}"
    config = tmp_path / "secmon.yml"
    config.write_text(
        f"elasticsearch:\n  url: {url}\n  index_prefix: {names.prefix}\n"
        f"state_dir: {tmp_path / 'state'}\n"
        f"metrics:\n  address: 127.0.0.1:{metrics_port}\n"
        f"api:\n  address: 127.0.0.1:0\n"
        f"sources:\n  edge:\n    type: syslog\n    mode: tcp\n    address: 127.0.0.1:{syslog_port}\n"
        f"    agency: health\n    dataset: {dataset}\n"
    )
    command = [sys.executable, "-m", "secmon", "--config", str(config)]
    service = subprocess.Popen([*command, "up"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: connects(syslog_port), "secmon up to open its syslog port")
        with socket.create_connection(("127.0.0.1", syslog_port)) as sender:
            for n in range(100):
                sender.sendall(
                    b"<38>Nov 24 10:00:00 web1 sshd[42]: Failed password for root from 192.0.2.%d port 22 ssh2\n" % n
                )
        index = names.events(dataset)
        wait_until(lambda: _count(url, index), "the 100 lines stored", done=lambda stored: stored == 100)

        status = subprocess.run([*command, "status"], capture_output=True, text=True, timeout=60, check=False)
        assert status.returncode == 0, status.stdout + status.stderr
        row = next(line for line in status.stdout.splitlines() if "edge" in line)
        assert row.split("\t") == ["edge", "100", "100", "0", "0"]  # received, sent, errors, dropped (piped: tabs)
        assert "health" in status.stdout
    finally:
        service.send_signal(signal.SIGTERM)
        output, _ = service.communicate(timeout=60)
    assert service.returncode == 0, output
    assert "secmon is up" in output
    assert f"source edge: syslog ('127.0.0.1', {syslog_port})" in output
    stored = json.loads(urllib.request.urlopen(f"{url}/{names.events(dataset)}/_search?size=1", timeout=5).read())[
        "hits"
    ]["hits"][0]["_source"]
    assert stored["organization"]["id"] == "health"
    assert stored["event"]["action"] == "ssh_login" and stored["event"]["outcome"] == "failure"
    assert stored["source"]["ip"].startswith("192.0.2.")


def _count(url: str, index: str) -> int:
    try:
        urllib.request.urlopen(urllib.request.Request(f"{url}/{index}/_refresh", method="POST"), timeout=5).close()
        with urllib.request.urlopen(f"{url}/{index}/_count", timeout=5) as response:
            return int(json.load(response)["count"])
    except OSError:
        return 0

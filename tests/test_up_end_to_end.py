"""The acceptance test of ``secmon up``: a subprocess fed syslog and an EVTX file, its alerts seen through
``secmon alerts ls`` as an analyst sees them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from elasticsearch import AsyncElasticsearch

from secmon.auth import KeyStore, Role
from secmon.config import SHIPPED_RULES_DIR, ElasticsearchSettings
from secmon.store import IndexNames
from tests.support.net import connects, free_port
from tests.support.wait import until

FIXTURES = Path(__file__).parent / "fixtures" / "sigma"
EVENTLOG_CLEARED_RULE = FIXTURES / "win_system_susp_eventlog_cleared.yml"
EVTX = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "evtx"
LOG_CLEARED = EVTX / "defense-evasion" / "DE_104_system_log_cleared.evtx"  # System 104: the log was cleared
ATTACKER = "203.0.113.77"  # an address no other test sends from, so the correlation counts only these
# Ten failed logins from one address within a minute: the shipped SSH brute force correlation fires at ten.
SSH_FAILURES = [
    f"<38>Dec 10 06:55:{10 + n:02d} web1 sshd[{24200 + n}]: Failed password for invalid user webmaster "
    f"from {ATTACKER} port {38926 + n} ssh2"
    for n in range(10)
]


async def test_up_turns_syslog_and_a_dropped_evtx_file_into_alerts_listed_by_the_cli(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, names: IndexNames, tmp_path: Path
) -> None:
    url = es_settings.url or f"http://{es_settings.local.host}:{es_settings.local.port}"
    syslog_port, api_port = free_port(), free_port()
    drop = tmp_path / "evtx-drop"
    drop.mkdir()
    config = tmp_path / "secmon.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "elasticsearch": {"url": url, "index_prefix": names.prefix},
                "state_dir": str(tmp_path / "state"),
                "metrics": {"address": None},
                "api": {"address": f"127.0.0.1:{api_port}"},
                "detection": {"rules": [str(SHIPPED_RULES_DIR), str(EVENTLOG_CLEARED_RULE)]},
                "sources": {
                    "edge": {
                        "type": "syslog",
                        "mode": "tcp",
                        "address": f"127.0.0.1:{syslog_port}",
                        "agency": "health",
                    },
                    "windows": {
                        "type": "evtx",
                        "include": [str(drop / "*.evtx")],
                        "poll_interval": 0.2,
                        "agency": "finance",
                    },
                },
            }
        )
    )
    keys = KeyStore(es, names)
    await keys.ensure_index()  # with its strict mapping, before a key is written (else Elasticsearch guesses one)
    _, analyst = await keys.create(Role.ANALYST, agencies=["health", "finance"], name="e2e.analyst")
    command = [sys.executable, "-m", "secmon", "--config", str(config)]
    cli_env = {**os.environ, "SECMON_API_URL": f"http://127.0.0.1:{api_port}", "SECMON_API_KEY": analyst}

    def alerts(agency: str) -> list[dict[str, Any]]:
        listed = subprocess.run(
            [*command, "alerts", "ls", "--json", "--agency", agency],
            env=cli_env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if listed.returncode != 0:
            return []  # the API is not up yet
        return [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]

    log_path = tmp_path / "up.log"  # a file, not a pipe: a pipe nobody reads would block the service when full
    with log_path.open("w") as log_file:
        service = await asyncio.create_subprocess_exec(*command, "up", stdout=log_file, stderr=subprocess.STDOUT)
    try:
        await until(
            lambda: asyncio.to_thread(lambda: service.returncode is None and connects(syslog_port)),
            lambda: f"secmon up to open its syslog port; its output:\n{log_path.read_text()}",
            timeout=90,
            interval=0.5,
        )
        with socket.create_connection(("127.0.0.1", syslog_port)) as sender:
            sender.sendall("".join(line + "\n" for line in SSH_FAILURES).encode())
        shutil.copy(LOG_CLEARED, drop / "System.evtx")

        def brute_force() -> list[dict[str, Any]]:
            return [
                alert
                for alert in alerts("health")
                if alert["rule"]["title"] == "SSH Brute Force" and alert["source_ip"] == ATTACKER
            ]

        def log_cleared() -> list[dict[str, Any]]:
            return [
                alert for alert in alerts("finance") if alert["rule"]["id"] == "100ef69e-3327-481c-8e5c-6d80d9507556"
            ]

        # In a thread: the CLI is a blocking subprocess, and this loop must keep watching the service.
        [ssh] = await until(
            lambda: asyncio.to_thread(brute_force),
            "an SSH Brute Force alert for agency health",
            timeout=90,
            interval=0.5,
        )
        assert ssh["agency"] == "health" and ssh["count"] == 10 and ssh["status"] == "open"
        [cleared] = await until(
            lambda: asyncio.to_thread(log_cleared),
            "an Important Windows Eventlog Cleared alert for agency finance",
            timeout=90,
            interval=0.5,
        )
        assert cleared["agency"] == "finance" and cleared["rule"]["title"] == "Important Windows Eventlog Cleared"
        assert cleared["rule"]["level"] == "high"
    finally:
        if service.returncode is None:
            service.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(service.wait(), 60)
    output = log_path.read_text()
    assert returncode == 0, output
    assert "source windows: evtx" in output

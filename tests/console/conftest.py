"""The real service for the console's browser tests: ``secmon up --demo`` and Debian's Chromium.

One ``secmon up --demo`` subprocess for the test session (started by the first console test), over the session's
Elasticsearch under a prefix of its own (the demo's alerts then count only here), with a syslog
source of agency ``health`` so that a second agency has alerts of its own. Chromium is the
system's (``/usr/bin/chromium``, or ``SECMON_CHROMIUM``), driven by Playwright: a browser download
cannot happen here, and none is needed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from elasticsearch import AsyncElasticsearch
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from secmon.auth import KeyStore, Role
from secmon.config import ElasticsearchSettings
from secmon.store import IndexNames, cluster_url
from tests.support.net import connects, free_port
from tests.support.wait import until

CHROMIUM = os.environ.get("SECMON_CHROMIUM", "/usr/bin/chromium")
# The flags a closed network needs: no background connections, no component updates (see the README).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HEALTH_ATTACKER = "198.51.100.23"  # agency health's own brute force, so its analyst has a queue of its own
HEALTH_FAILURES = [
    f"<38>Dec 10 07:15:{10 + n:02d} clinic1 sshd[{31200 + n}]: Failed password for invalid user admin "
    f"from {HEALTH_ATTACKER} port {40100 + n} ssh2"
    for n in range(10)
]


@dataclass
class DemoService:
    """``secmon up --demo`` running, and how to make keys for it."""

    url: str
    names: IndexNames
    keys: KeyStore
    log: Path
    syslog_port: int  # agency health's syslog source

    async def key(self, role: Role, *, name: str, agencies: tuple[str, ...] = ()) -> str:
        _, secret = await self.keys.create(role, agencies=agencies, name=name)
        return secret


@pytest.fixture(scope="session")
async def demo_service(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DemoService]:
    home = tmp_path_factory.mktemp("console-service")
    names = IndexNames(f"{es_settings.index_prefix}-console")
    api_port, syslog_port = free_port(), free_port()
    config = home / "secmon.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "elasticsearch": {"url": cluster_url(es_settings), "index_prefix": names.prefix},
                "state_dir": str(home / "state"),
                "metrics": {"address": None},
                "api": {"address": f"127.0.0.1:{api_port}"},
                "sources": {
                    "clinic": {
                        "type": "syslog",
                        "mode": "tcp",
                        "address": f"127.0.0.1:{syslog_port}",
                        "agency": "health",
                    }
                },
            }
        )
    )
    keys = KeyStore(es, names)
    await keys.ensure_index()
    log = home / "up.log"  # a file, not a pipe nobody reads
    with log.open("w") as out:
        service = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "secmon", "--config", str(config), "up", "--demo", "--no-panel",
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        await until(
            lambda: service.returncode is None and "API answering at" in log.read_text(),
            lambda: f"secmon up --demo to import the demo and answer; its output:\n{log.read_text()}",
            timeout=240,
            interval=0.5,
        )
        with socket.create_connection(("127.0.0.1", syslog_port)) as sender:
            sender.sendall("".join(line + "\n" for line in HEALTH_FAILURES).encode())
        assert connects(api_port)
        yield DemoService(f"http://127.0.0.1:{api_port}", names, keys, log, syslog_port)
    finally:
        if service.returncode is None:
            service.send_signal(signal.SIGTERM)
        await asyncio.wait_for(service.wait(), 60)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: ./run test installs Debian's chromium (or set SECMON_CHROMIUM)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


async def signed_in(browser: Browser, url: str, secret: str, **context_options: object) -> tuple[BrowserContext, Page]:
    """A new browser context signed in with ``secret`` through the sign-in form, on the queue."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, **context_options)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(f"{url}/")
    await page.fill("#api_key", secret)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#queue")
    return context, page

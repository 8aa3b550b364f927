"""The live panel of ``secmon up`` shows what the running service counts."""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path

from rich.console import Console

from secmon.cli.panel import StatusPanel
from secmon.config import ElasticsearchSettings, Settings
from secmon.demo import replay
from secmon.log import get_logger
from secmon.service import Running, running_service
from tests.support.wait import until

FAILURES = [
    f"<38>Dec 10 06:55:{10 + n:02d} LabSZ sshd[{24200 + n}]: Failed password for invalid user webmaster "
    f"from 173.234.31.186 port {38926 + n} ssh2\n"
    for n in range(10)
]


def shown(panel: StatusPanel) -> str:
    console = Console(record=True, width=140, color_system=None)
    console.print(panel.render())
    return console.export_text()


async def test_the_panel_counts_events_and_alerts_and_keeps_logs_printing(
    es_settings: ElasticsearchSettings, tmp_path: Path
) -> None:
    settings = Settings.model_validate(
        {
            "elasticsearch": es_settings.model_dump(),
            "state_dir": tmp_path / "state",
            "metrics": {"address": None},
            "api": {"address": "127.0.0.1:0"},
            "sources": {"edge": {"type": "syslog", "mode": "tcp", "address": "127.0.0.1:0", "agency": "health"}},
        }
    )
    async with running_service(settings) as running:
        panel = StatusPanel(running, Console(record=True, width=140, color_system=None))
        before = shown(panel)
        assert "edge" in before and "syslog" in before
        assert running.api is not None and running.api.url in before

        await send(running, FAILURES)
        telemetry = running.pipeline.telemetry
        await until(lambda: telemetry.value("secmon_alerts_total", level="medium") >= 1, "the brute force alert")
        after = shown(panel)
        assert "10 received" in after
        assert "medium 1" in after  # SSH Brute Force is a medium rule

        root_handlers = logging.getLogger().handlers[:]
        showing = asyncio.create_task(panel.run())
        await asyncio.sleep(0.3)
        marker = f"log line {secrets.token_hex(3)}"
        get_logger("tests.panel").warning(marker)
        showing.cancel()
        await asyncio.gather(showing, return_exceptions=True)
        assert marker in panel.console.export_text()  # printed above the panel, not lost
        assert logging.getLogger().handlers == root_handlers  # restored


async def test_the_panel_counts_the_events_secmon_up_demo_imports(
    es_settings: ElasticsearchSettings, tmp_path: Path
) -> None:
    settings = Settings.model_validate(
        {
            "elasticsearch": {**es_settings.model_dump(), "index_prefix": f"{es_settings.index_prefix}-panel-demo"},
            "state_dir": tmp_path / "state",
            "metrics": {"address": None},
            "api": {"address": "127.0.0.1:0"},
        }
    )
    async with running_service(settings) as running:  # no source: the demo is all that comes in
        panel = StatusPanel(running, Console(record=True, width=140, color_system=None))
        summaries = await replay(settings, running=running)  # as secmon up --demo imports it
        after = shown(panel)
    read = sum(summary.read for summary in summaries.values())
    assert read > 4000 and sum(summary.stored for summary in summaries.values()) == read
    assert sum(summary.alerts for summary in summaries.values()) > 0
    assert f"{read:,} received" in after  # not "0 received" right after the demo listed its alerts
    assert " 0 stored" not in after
    [row] = [line for line in after.splitlines() if line.split()[:2] == ["demo", "import"]]
    assert f"{read:,}" in row


async def send(running: Running, lines: list[str]) -> None:
    source = running.sources["edge"]
    host, port = source.address  # type: ignore[attr-defined]
    _, writer = await asyncio.open_connection(host, port)
    writer.write("".join(lines).encode())
    await writer.drain()
    writer.close()
    await writer.wait_closed()

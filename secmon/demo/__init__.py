"""``secmon demo``: real public attack data, replayed through secmon's pipeline, and the alerts it raised.

The bundle (``data/``, see its README for sources and licences) holds only what secmon's shipped
rules detect: an sshd log of a server under brute force, a TCP port scan and a DNS tunnel.
Events are keyed by file name and position (not by the installed file's inode, as ``secmon
import`` does), so a replay on any machine, however often, stores each event and alert once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from secmon.config import Settings
from secmon.events import Event, Record
from secmon.importer import ImportSummary, import_events, import_records, import_service, read_lines, read_pcap_events
from secmon.service import Running

__all__ = ["AGENCY", "DATA_DIR", "SAMPLES", "Sample", "demo_alerts", "replay"]

DATA_DIR = Path(__file__).parent / "data"
AGENCY = "demo"  # organization.id of every demo event and alert
_COMPONENT = "demo"  # the component the demo's documents are counted under


@dataclass(frozen=True, slots=True)
class Sample:
    """One bundled file and how it is read."""

    name: str
    kind: Literal["log", "pcap"]
    what: str

    @property
    def path(self) -> Path:
        return DATA_DIR / self.name

    def lines(self) -> int:
        """Non-empty lines of a log sample (its events), for a progress bar."""
        with self.path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())


SAMPLES = (
    Sample("loghub_OpenSSH_2k.log", "log", "sshd under brute force (loghub)"),
    Sample("synscan.pcap", "pcap", "TCP SYN port scan (nDPI)"),
    Sample("dns-tunnel-iodine.pcap", "pcap", "iodine DNS tunnel (nDPI)"),
)


def log_records(sample: Sample) -> Iterator[Record]:
    """The sample's lines as records keyed by file name and byte offset."""
    for record in read_lines(sample.path):
        offset = record.origin["log"]["offset"]
        yield dataclasses.replace(record, key=f"{sample.name}:{offset}")


def capture_events(sample: Sample, failures: list[str]) -> Iterator[tuple[str, Event]]:
    """The sample's packet events keyed by file name and their order in it."""
    for number, (_, event) in enumerate(read_pcap_events(sample.path, failures)):
        yield f"{sample.name}:{number}", event


async def replay(
    settings: Settings,
    progress: Callable[[Sample, int], None] = lambda sample, n: None,
    *,
    running: Running | None = None,
) -> dict[str, ImportSummary]:
    """Import every sample with agency ``demo``; each sample's summary, by file name.

    Into ``running``'s pipeline when given (``secmon up --demo``: the service counts the demo's
    events as it counts a source's, and starts nothing twice), else into one service of its own,
    as ``secmon import`` does.
    """
    if running is None:
        async with import_service(settings) as service:
            return await replay(settings, progress, running=service)
    summaries: dict[str, ImportSummary] = {}
    for sample in SAMPLES:

        def advance(n: int, sample: Sample = sample) -> None:
            progress(sample, n)

        if sample.kind == "log":
            summary = await import_records(
                settings,
                log_records(sample),
                component=_COMPONENT,
                fmt="auto",
                agency=AGENCY,
                progress=advance,
                running=running,
            )
        else:
            failures: list[str] = []
            summary = await import_events(
                settings,
                capture_events(sample, failures),
                component=_COMPONENT,
                agency=AGENCY,
                progress=advance,
                running=running,
            )
            summary.failed += len(failures)  # a damaged bundled capture is a broken install
        summaries[sample.name] = summary
    return summaries


async def demo_alerts(settings: Settings, limit: int = 500) -> list[dict[str, Any]]:
    """The demo agency's alerts as stored, oldest first."""
    from secmon.store import IndexNames, connect
    from secmon.triage import AlertFilter, AlertSort, AlertStore, AuditLog

    client = connect(settings.elasticsearch)
    try:
        names = IndexNames(settings.elasticsearch.index_prefix)
        store = AlertStore(client, names, AuditLog(client, names))
        # Alerts written moments ago become searchable at the next refresh: make it now.
        await client.indices.refresh(index=store.index, ignore_unavailable=True)
        page = await store.search(AlertFilter(agency=[AGENCY]), None, sort=AlertSort.TIME, descending=False, size=limit)
        return page.alerts
    finally:
        await client.close()

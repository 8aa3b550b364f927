"""``secmon import``: read files once, through the same pipeline as the live sources.

Record keys are the file's path and the line's offset (an EVTX record's id), so importing the
same file again stores nothing twice.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from collectors.event import Record
from secmon.config import Settings
from secmon.detection.alerts import ALERTS_COMPONENT
from secmon.pipeline.pipeline import Agency, Pipeline, SourceContext
from secmon.service import running_service
from secmon.store import Outcome

BATCH = 500


@dataclass(slots=True)
class ImportSummary:
    """What an import did, for the summary table."""

    read: int = 0
    parse_failures: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    failed: int = 0
    alerts: int = 0  # new alerts the imported events raised (stored now)


def read_lines(path: Path) -> Iterator[Record]:
    """Each non-empty line of ``path`` as a record keyed by its offset."""
    identity = os.stat(path)
    offset = 0
    with path.open("rb") as handle:
        for raw in handle:
            text = raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
            if text.strip():
                origin = {"log": {"file": {"path": str(path)}, "offset": offset}}
                yield Record(text, origin, key=f"{identity.st_dev}:{identity.st_ino}:{offset}")
            offset += len(raw)


def read_evtx_records(path: Path, failures: list[str]) -> Iterator[Record]:
    """Each record of the EVTX file ``path``, as JSON, keyed by its record number in the file.

    Parts of a damaged file that cannot be read are described in ``failures``.
    """
    from collectors.sources.evtx import read_evtx

    origin = {"log": {"file": {"path": str(path)}}}
    for record in read_evtx(path, on_failure=lambda failure: failures.append(f"{failure.path}: {failure.reason}")):
        yield Record(orjson.dumps(record.event).decode(), origin, key=f"{path.resolve()}:{record.record_id}")


async def import_records(
    settings: Settings,
    records: Iterator[Record],
    *,
    component: str,
    fmt: str,
    agency: str | None,
    progress: Callable[[int], None] = lambda n: None,
) -> ImportSummary:
    """Submit ``records`` and wait until Elasticsearch has them all; returns the counts."""
    buffer_dir = settings.state_dir / f"import-{os.getpid()}"
    context = SourceContext(component, fmt, Agency(agency) if agency else None)
    summary = ImportSummary()
    async with running_service(settings, with_sources=False, buffer_dir=buffer_dir) as running:
        batch: list[Record] = []
        for record in records:
            batch.append(record)
            if len(batch) >= BATCH:
                await _submit(running.pipeline, batch, context, summary, progress)
                batch = []
        if batch:
            await _submit(running.pipeline, batch, context, summary, progress)
        await running.pipeline.wait_drained()
        telemetry = running.pipeline.telemetry
        summary.parse_failures = int(
            telemetry.value("secmon_component_errors_total", component=component, stage="parse")
        )
        stats = running.writer.stats
    shutil.rmtree(buffer_dir, ignore_errors=True)
    events = stats.by_component.get(component, Counter())
    summary.stored, summary.duplicates = events[Outcome.STORED], events[Outcome.DUPLICATE]
    summary.dead_lettered, summary.failed = events[Outcome.DEAD_LETTERED], events[Outcome.FAILED]
    summary.alerts = stats.by_component.get(ALERTS_COMPONENT, Counter())[Outcome.STORED]
    return summary


async def _submit(
    pipeline: Pipeline,
    batch: Sequence[Record],
    context: SourceContext,
    summary: ImportSummary,
    progress: Callable[[int], None],
) -> None:
    await pipeline.submit(batch, context)
    summary.read += len(batch)
    progress(len(batch))

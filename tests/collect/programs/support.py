"""What the tests of each program's enrichment share: the loghub files and a syslog line, enriched."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from secmon.collect.transforms.enrich_programs import enrich
from secmon.collect.transforms.parse_syslog import parse_syslog
from secmon.events import Event

LOGS = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "logs"
RECEIVED = datetime.fromisoformat("2024-06-01T00:00:00+00:00").timestamp()


def read_lines(name: str) -> list[str]:
    """The file's lines as the file source hands them over: split at \\n, without \\r, empty ones skipped."""
    text = (LOGS / name).read_text(encoding="utf-8")
    return [line.removesuffix("\r") for line in text.split("\n") if line.removesuffix("\r")]


def reference_rows(name: str) -> list[dict[str, str]]:
    with (LOGS / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def syslog(line: str) -> Event:
    return enrich(parse_syslog(line, received=RECEIVED))


def summary(event: Event) -> tuple[str | None, ...]:
    meta = event["event"]
    return meta.get("dataset"), meta.get("action"), meta.get("outcome")


def expected_for(template: str, table: Sequence[tuple[str, tuple[str | None, ...]]]) -> tuple[str | None, ...]:
    matches = [expected for start, expected in table if template.startswith(start)]
    assert len(matches) == 1, template
    return matches[0]

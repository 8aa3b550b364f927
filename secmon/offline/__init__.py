"""Offline detection: events read from files (EVTX, JSON lines, logs, packet captures), matched without Elasticsearch.

``secmon detect`` and ``secmon bench detect`` use it. Records go through the pipeline's own
:class:`~secmon.collect.transforms.chain.TransformChain`, so a rule sees the same event offline
as in the service.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from secmon.collect.transforms.chain import TransformChain
from secmon.detection.correlation import CorrelationHit
from secmon.detection.detector import Detector
from secmon.detection.fields import event_time
from secmon.detection.rules import Rule
from secmon.events import Event, Record, get_field
from secmon.timestamps import epoch_to_iso_seconds

if TYPE_CHECKING:
    from secmon.collect.sources.evtx import EvtxRecord

EVTX_SUFFIXES = (".evtx",)
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
CAPTURE_SUFFIXES = (".pcap", ".pcapng")
HUNTED_SUFFIXES = (
    *EVTX_SUFFIXES,
    *JSON_SUFFIXES,
    *CAPTURE_SUFFIXES,
    ".log",
)  # what a folder given to ``secmon detect`` is searched for


@dataclass(frozen=True, slots=True)
class SourcedEvent:
    """An event with where it was read: the file and the EVTX record id or line number.

    ``record_id`` is the record's System/EventRecordID (``winlog.record_id``), the number Event
    Viewer and other tools show; ``file_record_id`` is the number in the record's header in the
    file, which differs from it in exported or merged logs.
    """

    file: str
    record_id: int | None
    line: int | None
    event: Event
    file_record_id: int | None = None

    @property
    def where(self) -> int | None:
        """The number an analyst looks the event up by: its EventRecordID, else its line."""
        return self.record_id if self.record_id is not None else self.line


@dataclass(frozen=True, slots=True)
class Finding:
    """One (rule, event) match, as ``secmon detect`` prints it."""

    rule_id: str
    title: str
    level: str
    timestamp: str
    file: str
    record_id: int | None  # System/EventRecordID
    line: int | None
    tags: tuple[str, ...]
    correlated_events: tuple[str, ...] = ()  # for a correlation: its events, as file:record or file:line
    file_record_id: int | None = None  # the record's number in the EVTX file's own headers

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule_id": self.rule_id,
            "title": self.title,
            "level": self.level,
            "timestamp": self.timestamp,
            "file": self.file,
        }
        if self.record_id is not None:
            out["record_id"] = self.record_id
        if self.file_record_id is not None:
            out["file_record_id"] = self.file_record_id
        if self.line is not None:
            out["line"] = self.line
        out["tags"] = list(self.tags)
        if self.correlated_events:
            out["correlated_events"] = list(self.correlated_events)
        return out


@dataclass(slots=True)
class HuntStats:
    files: int = 0
    events: int = 0
    findings: int = 0
    read_failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def input_files(paths: Iterable[Path]) -> list[Path]:
    """Files to hunt in: the paths given, with folders searched for EVTX, JSON and log files."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in (*EVTX_SUFFIXES, *JSON_SUFFIXES, ".log")
            )
        else:
            found.append(path)
    return found


def read_events(path: Path, failures: list[str], *, threads: int = 0) -> Iterator[SourcedEvent]:
    """The normalized events of one file, chosen by its suffix (EVTX, JSON lines, else log lines).

    ``threads`` limits the EVTX parser's threads (0: one per core).
    """
    suffix = path.suffix.lower()
    chain = TransformChain()  # one per file: auditd's lines are joined within a file
    origin = {"log": {"file": {"path": str(path)}}}
    if suffix in EVTX_SUFFIXES:
        from secmon.collect.sources.evtx import read_evtx

        on_failure = lambda failure: failures.append(str(failure))  # noqa: E731
        yield from evtx_events(path, read_evtx(path, on_failure=on_failure, threads=threads))
        return
    if suffix in CAPTURE_SUFFIXES:
        from secmon.collect.transforms.packets import CaptureError, packets_to_events, read_capture

        try:
            for number, event in enumerate(packets_to_events(read_capture(path)), 1):
                yield SourcedEvent(str(path), None, number, event)  # "line": the event's order in the capture
        except CaptureError as exc:
            failures.append(str(exc))
        return
    fmt = "beats" if suffix in JSON_SUFFIXES else "auto"
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            text = raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
            if text.strip():
                yield SourcedEvent(str(path), None, number, chain(Record(text, origin), fmt, str(path)))


def file_size(path: Path) -> int:
    """``path``'s size in bytes (0 when it cannot be read), for progress bars."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def evtx_events(path: Path, records: Iterable[EvtxRecord]) -> Iterator[SourcedEvent]:
    """EVTX records (of a file, or of a part of one) as events, numbered as an analyst looks them up."""
    chain = TransformChain()
    origin = {"log": {"file": {"path": str(path)}}}
    for record in records:
        event = chain(Record("", origin, document=record.event), "evtx", str(path))
        event_record_id = get_field(event, "winlog.record_id")
        if not isinstance(event_record_id, int):  # a record without a readable EventRecordID
            event_record_id = record.record_id
        yield SourcedEvent(str(path), event_record_id, None, event, file_record_id=record.record_id)


def hunt(
    detector: Detector,
    paths: Iterable[Path],
    stats: HuntStats | None = None,
    *,
    progress: Callable[[int], None] = lambda done: None,
) -> Iterator[Finding]:
    """Every (rule, event) match in the files under ``paths``, in file order.

    ``progress`` is told each file's size once its findings are yielded.
    """
    stats = stats if stats is not None else HuntStats()
    started = time.perf_counter()
    for path in input_files(paths):
        stats.files += 1
        for sourced in read_events(path, stats.read_failures):
            stats.events += 1
            detection = detector.detect(sourced.event, f"{sourced.file}:{sourced.where}")
            if detection.rules:
                timestamp = event_timestamp(sourced.event)
                for rule in detection.rules:
                    stats.findings += 1
                    yield rule_finding(rule, timestamp, sourced)
            for hit in detection.correlations:
                stats.findings += 1
                yield correlation_finding(hit, sourced)
        progress(file_size(path))
    stats.seconds = time.perf_counter() - started


class Place(Protocol):
    """Where an event was read, as a finding names it."""

    @property
    def file(self) -> str: ...
    @property
    def record_id(self) -> int | None: ...
    @property
    def line(self) -> int | None: ...
    @property
    def file_record_id(self) -> int | None: ...


def rule_finding(rule: Rule, timestamp: str, place: Place) -> Finding:
    """The finding of a base rule's match of the event read at ``place``, stamped with its time."""
    return Finding(
        rule.id,
        rule.title,
        rule.level,
        timestamp,
        place.file,
        place.record_id,
        place.line,
        rule.tags,
        file_record_id=place.file_record_id,
    )


def correlation_finding(hit: CorrelationHit, place: Place) -> Finding:
    """The finding of a correlation that fired on the event read at ``place``."""
    return Finding(
        hit.rule.id,
        hit.rule.title,
        hit.rule.level,
        epoch_to_iso_seconds(hit.last),
        place.file,
        place.record_id,
        place.line,
        hit.rule.tags,
        hit.event_ids,
        place.file_record_id,
    )


def event_timestamp(event: Event) -> str:
    """The event's time as its findings show it."""
    stamp = event.get("@timestamp")
    if isinstance(stamp, str):
        return stamp
    return epoch_to_iso_seconds(event_time(event))

"""The one entry point from a source's :class:`~secmon.events.Record` to an ECS event.

``normalize(record, fmt)`` picks the parser named ``fmt`` in :data:`TRANSFORMS` (or, for ``"auto"``,
the one the line's first characters point to), then makes every event alike whatever parsed it:
``event.original`` is the raw message, ``event.dataset`` and ``@timestamp`` are set (the time
received when the line has none), and the record's ``origin`` fills the fields the line did not.
It never raises for a message: what no parser understands is kept and tagged, see
:func:`~secmon.events.mark_parse_failure`.

To add a format: write ``parse_x(line, *, received=None) -> Event`` and add it to :data:`TRANSFORMS`
under the name a source's config gives as ``format:``; give :func:`_detect` its shape if "auto"
should find it.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from secmon.collect.transforms.enrich_programs import enrich
from secmon.collect.transforms.parse_auditd import parse_auditd
from secmon.collect.transforms.parse_json import DOCUMENT_PARSERS, parse_beats, parse_evtx_json, parse_json_event
from secmon.collect.transforms.parse_syslog import parse_syslog
from secmon.collect.transforms.parse_web import parse_apache_access, parse_apache_error, parse_nginx_error
from secmon.events import Event, Record, mark_parse_failure
from secmon.timestamps import epoch_to_iso

RAW_DATASET = "raw"


class LineParser(Protocol):
    """Turns one line into an ECS event; ``received`` (seconds since the epoch) stands in for a missing date."""

    def __call__(self, line: str, /, *, received: float | None = None) -> Event: ...


def parse_syslog_enriched(line: str, *, received: float | None = None) -> Event:
    """A syslog line, with what its program (sshd, sudo, the kernel's firewall...) says on top."""
    return enrich(parse_syslog(line, received=received))


def parse_raw(line: str, *, received: float | None = None) -> Event:
    """The line as it is, as ``message``: for logs no parser knows, on purpose."""
    return {"@timestamp": epoch_to_iso(received), "message": line, "event": {"original": line, "dataset": RAW_DATASET}}


# The transforms registry: a source's ``format:`` names the parser its lines go through.
TRANSFORMS: dict[str, LineParser] = {
    "syslog": parse_syslog_enriched,
    "apache_access": parse_apache_access,
    "apache_error": parse_apache_error,
    "nginx_error": parse_nginx_error,
    "auditd": parse_auditd,
    "raw": parse_raw,
    "json": parse_json_event,
    "beats": parse_beats,
    "evtx": parse_evtx_json,
}

# Each format's first characters, so that "auto" costs one regex match and not a parse attempt each.
_SHAPES = re.compile(
    r"""
      (?P<syslog><\d{1,3}>
        | (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\ [\ \d]?\d[ ]
        | \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)
    | (?P<apache_error>\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\ [A-Z][a-z]{2}\ [\ \d]?\d\ \d\d:)
    | (?P<nginx_error>\d{4}/\d\d/\d\d\ \d\d:\d\d:\d\d\ \[)
    | (?P<auditd>(?:node=\S+\ )?type=\S+\ msg=audit\()
    | (?P<apache_access>"?[^\s"]+\ \S+\ \S+\ \[)
    | (?P<json>\{)
    """,
    re.VERBOSE,
)


def normalize(record: Record, fmt: str = "auto") -> Event:
    """Parse ``record.message`` as ``fmt`` (a key of :data:`TRANSFORMS`, or ``"auto"``) into a complete ECS event.

    Raises :class:`ValueError` for an ``fmt`` that is not a format: that is a configuration
    error, to be caught when the configuration is loaded (check ``fmt in TRANSFORMS``).
    """
    line = record.message
    # 0.0, the Record default, means the source did not say: the parsers then use the current time.
    received = record.received or None
    if record.document is not None and fmt in DOCUMENT_PARSERS:
        event = DOCUMENT_PARSERS[fmt](record.document, received)
    elif fmt == "auto":
        shape = _SHAPES.match(line)
        if shape is None or shape.lastgroup is None:
            event = parse_raw(line, received=received)
            reason = "empty line" if not line.strip() else "line matches no known log format"
            mark_parse_failure(event, f"{reason} (syslog, apache_access, apache_error, nginx_error, auditd)")
        else:
            event = TRANSFORMS[shape.lastgroup](line, received=received)
    else:
        parser = TRANSFORMS.get(fmt)
        if parser is None:
            raise ValueError(f"unknown log format {fmt!r}: expected 'auto' or one of {', '.join(TRANSFORMS)}")
        event = parser(line, received=received)

    meta = event.setdefault("event", {})
    # A shipped document may carry the raw line it was made from: that is the original.
    meta.setdefault("original", line)
    meta.setdefault("dataset", RAW_DATASET)
    if "@timestamp" not in event:
        event["@timestamp"] = epoch_to_iso(received)
    if record.origin:
        _fill_missing(event, record.origin)
    return event


def _fill_missing(target: dict[str, Any], origin: dict[str, Any]) -> None:
    """Deep-merge ``origin`` into ``target`` where ``target`` has nothing; lists (``tags``) are joined.

    Everything taken from ``origin`` is copied: sources reuse one origin for many records.
    """
    for key, value in origin.items():
        existing = target.get(key)
        if existing is None:
            target[key] = _copy(value)
        elif isinstance(existing, dict) and isinstance(value, dict):
            _fill_missing(existing, value)
        elif isinstance(existing, list) and isinstance(value, list):
            existing.extend(item for item in value if item not in existing)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value

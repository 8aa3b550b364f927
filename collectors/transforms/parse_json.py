"""JSON events: generic JSON lines, documents shipped by Beats and friends, and EVTX records.

Each takes one JSON text (a line of NDJSON, a ``_bulk`` source document, an EVTX record as
JSON) and returns an ECS event; text that is not a JSON object is kept and tagged.
"""

from __future__ import annotations

from typing import Any

import orjson

from collectors.event import Event, get_field, mark_parse_failure
from collectors.transforms.parse_syslog import epoch_to_iso
from collectors.transforms.parse_winlog import normalize_evtx, normalize_winlogbeat


def _load_object(line: str, received: float | None) -> tuple[dict[str, Any] | None, Event | None]:
    """The JSON object in ``line``, or a tagged raw event saying why there is none."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        failure: Event = {"@timestamp": epoch_to_iso(received), "message": line, "event": {"original": line}}
        return None, mark_parse_failure(failure, f"not valid JSON: {exc}")
    if not isinstance(value, dict):
        failure = {"@timestamp": epoch_to_iso(received), "message": line, "event": {"original": line}}
        return None, mark_parse_failure(failure, f"a JSON {type(value).__name__}, not an object")
    return value, None


def parse_json_event(line: str, *, received: float | None = None) -> Event:
    """A JSON object that is already an (ECS) event: kept as it is, with the essentials filled in."""
    document, failure = _load_object(line, received)
    if document is None:
        assert failure is not None
        return failure
    return _fill_in(document, received)


def _fill_in(document: dict[str, Any], received: float | None) -> Event:
    meta = document.get("event")
    if not isinstance(meta, dict):
        meta = document["event"] = {}
    meta.setdefault("dataset", get_field(document, "data_stream.dataset") or "json")
    if not isinstance(document.get("@timestamp"), str):
        document["@timestamp"] = epoch_to_iso(received)
    return document


def parse_beats(line: str, *, received: float | None = None) -> Event:
    """A document from Filebeat, Winlogbeat, Fluent Bit or Vector's Elasticsearch output.

    Winlogbeat documents are normalized like EVTX records, so a rule matches both alike.
    """
    document, failure = _load_object(line, received)
    if document is None:
        assert failure is not None
        return failure
    if isinstance(document.get("winlog"), dict):
        return normalize_winlogbeat(document)
    if isinstance(document.get("log"), str):
        # Fluent Bit puts the line in "log", which ECS reserves for an object: make it the message.
        document.setdefault("message", document["log"])
        del document["log"]
    return _fill_in(document, received)


def parse_evtx_json(line: str, *, received: float | None = None) -> Event:
    """An EVTX record's ``Event`` object as JSON (what ``secmon import evtx`` reads)."""
    document, failure = _load_object(line, received)
    if document is None:
        assert failure is not None
        return failure
    return normalize_evtx(document)

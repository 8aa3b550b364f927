"""JSON events: generic JSON lines, documents shipped by Beats and friends, and EVTX records.

Each takes one JSON text (a line of NDJSON, a ``_bulk`` source document, an EVTX record as
JSON) and returns an ECS event; text that is not a JSON object is kept and tagged. A source that
has the object already (the EVTX reader) hands it over as ``Record.document``, and
:data:`DOCUMENT_PARSERS` take it as it is: decoding it again from text would only cost time.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from secmon.collect.transforms.normalize_winlog import normalize_evtx, normalize_winlogbeat
from secmon.events import Event, get_field, mark_parse_failure
from secmon.timestamps import epoch_to_iso

# orjson reads 1,024 levels of nesting but writes only 254, and a dead letter holds the document
# two levels down: a deeper document would be read here, then fail where it is stored, with its
# batch. Elasticsearch maps 20 levels of objects at most; no log nests anywhere near this deep.
MAX_DEPTH = 200
_CONTAINERS = (dict, list)


def load_json_object(text: str) -> dict[str, Any] | str:
    """The JSON object ``text`` holds, or the reason it holds none (not JSON, not an object, too deep)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON: {exc}"
    if not isinstance(value, dict):
        return f"a JSON {type(value).__name__}, not an object"
    # Nesting deeper than MAX_DEPTH takes more brackets than that: only such rare texts are walked.
    if len(text) > MAX_DEPTH and text.count("{") + text.count("[") > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        return f"JSON nested more than {MAX_DEPTH} levels deep"
    return value


def _deeper_than(value: dict[str, Any], limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` levels in ``value``, level by level (no recursion)."""
    level: list[Any] = [value]
    for _ in range(limit):
        level = [
            child
            for container in level
            for child in (container.values() if type(container) is dict else container)
            if isinstance(child, _CONTAINERS)
        ]
        if not level:
            return False
    return True


def _load_object(line: str, received: float | None) -> tuple[dict[str, Any] | None, Event | None]:
    """The JSON object in ``line``, or a tagged raw event saying why there is none."""
    value = load_json_object(line)
    if isinstance(value, str):
        failure: Event = {"@timestamp": epoch_to_iso(received), "message": line, "event": {"original": line}}
        return None, mark_parse_failure(failure, value)
    return value, None


def parse_json_event(line: str, *, received: float | None = None) -> Event:
    """A JSON object that is already an (ECS) event: kept as it is, with the essentials filled in."""
    document, failure = _load_object(line, received)
    if document is None:
        assert failure is not None
        return failure
    return _fill_in(document, received)


def _fill_in(document: dict[str, Any], received: float | None = None) -> Event:
    tags = document.get("tags")
    if tags is not None and not isinstance(tags, list):
        # ECS tags are a list (Elasticsearch takes one value as a list of one): secmon adds its own to it.
        document["tags"] = [tags]
    meta = document.get("event")
    if not isinstance(meta, dict):
        meta = document["event"] = {}
    dataset = meta.get("dataset")
    if not isinstance(dataset, str):
        # The dataset names the data stream the event is stored in: it must be text.
        stream = get_field(document, "data_stream.dataset")
        meta["dataset"] = stream if isinstance(stream, str) and stream else "json"
        if dataset is not None:
            mark_parse_failure(document, f"event.dataset {_shown(dataset)} is not text; stored as {meta['dataset']}")
    if not isinstance(document.get("@timestamp"), str):
        document["@timestamp"] = epoch_to_iso(received)
    return document


def _shown(value: Any) -> str:
    """A JSON value as it reads in a reason, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_beats(line: str, *, received: float | None = None) -> Event:
    """A document from Filebeat, Winlogbeat, Fluent Bit or Vector's Elasticsearch output.

    Winlogbeat documents are normalized like EVTX records, so a rule matches both alike.
    """
    document, failure = _load_object(line, received)
    if document is None:
        assert failure is not None
        return failure
    return _beats_document(document, received)


def _beats_document(document: dict[str, Any], received: float | None = None) -> Event:
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


def _evtx_document(document: dict[str, Any], received: float | None = None) -> Event:
    return normalize_evtx(document)


class DocumentParser(Protocol):
    """Turns a JSON object a source already decoded into an ECS event (it may change the object)."""

    def __call__(self, document: dict[str, Any], received: float | None = None, /) -> Event: ...


# The JSON formats by name, for a Record whose source decoded the object: same results as from text.
DOCUMENT_PARSERS: dict[str, DocumentParser] = {
    "json": _fill_in,
    "beats": _beats_document,
    "evtx": _evtx_document,
}

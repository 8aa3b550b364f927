"""The shapes that flow along the event path, and the one way to read and write their dotted fields.

A source produces :class:`Record` objects: one raw message and where it came from. A transform
turns a record into an ECS event, a plain nested ``dict`` (``{"source": {"ip": ...}}``), the
shape Elasticsearch stores and Sigma rules match. Transforms never raise on bad input: a
message no parser understands becomes an event that keeps ``event.original`` and carries
:data:`PARSE_FAILURE_TAG` in ``tags`` with the reason in ``error.message``, and is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Event = dict[str, Any]

PARSE_FAILURE_TAG = "_secmon_parse_failure"


@dataclass(slots=True)
class Record:
    """One raw message from a source.

    ``origin`` says where it came from in ECS terms, merged into the event as is: for syslog
    ``{"source": {"ip": ..., "port": ...}, "network": {"transport": "udp"}}``, for a file
    ``{"log": {"file": {"path": ...}, "offset": ...}}``.
    """

    message: str
    origin: Event = field(default_factory=dict)
    received: float = 0.0  # seconds since the epoch, when secmon got it
    # Where this message is at its source (a file's device, inode and offset): with the agency and
    # the message, reading it again gives the same document id. None: the pipeline assigns a unique id.
    key: str | None = None
    # The message as the JSON object it encodes, when the source decoded it already (an EVTX
    # record): a JSON format's parser takes it instead of decoding ``message`` again.
    document: dict[str, Any] | None = None


def set_field(event: Event, dotted: str, value: Any) -> None:
    """Set ``event["a"]["b"]["c"] = value`` for ``dotted`` = ``"a.b.c"``, creating the objects on the way."""
    *parents, last = dotted.split(".")
    target = event
    for key in parents:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    target[last] = value


def get_field(event: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """The value at ``dotted`` (``"a.b.c"``): nested objects first, then a key that itself contains dots.

    This is how Elasticsearch reads a document, and how the matcher reads one
    (:class:`~secmon.detection.fields.EventView`): ``{"host.name": "x"}`` and
    ``{"host": {"name": "x"}}`` both have ``host.name``. ``default`` where neither exists.
    """
    value: Any = event
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return event.get(dotted, default)
        value = value[key]
    return value


def mark_parse_failure(event: Event, reason: str) -> Event:
    """Tag ``event`` as not understood, keeping everything it has; returns it."""
    tags = event.setdefault("tags", [])
    if PARSE_FAILURE_TAG not in tags:
        tags.append(PARSE_FAILURE_TAG)
    set_field(event, "error.message", reason)
    return event


def flatten(event: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``event``'s leaves by dotted path (``{"host": {"name": "a"}}`` → ``{"host.name": "a"}``); lists stay values."""
    leaves: dict[str, Any] = {}
    for name, value in event.items():
        path = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            leaves.update(flatten(value, f"{path}."))
        else:
            leaves[path] = value
    return leaves

"""The unit the bulk writer stores (its deterministic id comes from :func:`secmon.ids.document_id`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

import orjson

from secmon.ids import document_id

__all__ = ["Document", "EncodedSource", "Outcome", "document_id", "source_json"]


@dataclass(slots=True)
class Document:
    """One document to store in ``index`` under ``id``.

    ``op`` is ``create`` for events and new alerts: a document whose id already exists is left
    alone and counted as a duplicate, which makes every retry and replay idempotent. ``update``
    (``source`` is ``{"doc": {...}}``) changes some fields of a stored document, such as the
    count of a grouped alert; it sets absolute values, so a replay is harmless too.
    """

    index: str
    id: str
    source: Mapping[str, Any]
    op: Literal["create", "index", "update"] = "create"
    component: str = field(default="", compare=False)


class EncodedSource(Mapping[str, Any]):
    """A document's source still as the JSON it was encoded to, as read back from the disk buffer.

    The writers send these bytes as they are; decoding every event only to encode it again cost
    a sixth of the collector's time. It is decoded on first look inside (a dead letter's original).
    """

    __slots__ = ("_decoded", "json")

    def __init__(self, json: bytes) -> None:
        self.json = json
        self._decoded: dict[str, Any] | None = None

    def decoded(self) -> dict[str, Any]:
        """The source as a dictionary (decoded once)."""
        if self._decoded is None:
            self._decoded = orjson.loads(self.json)
        return self._decoded

    def __getitem__(self, key: str) -> Any:
        return self.decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.decoded())

    def __len__(self) -> int:
        return len(self.decoded())


def plain_source(source: Mapping[str, Any]) -> Mapping[str, Any]:
    """``source`` as nested dictionaries: an :class:`EncodedSource` decoded, anything else as it is.

    What reads fields by walking dictionaries (the matcher, the alert builder) needs it so.
    """
    return source.decoded() if isinstance(source, EncodedSource) else source


def source_json(source: Mapping[str, Any]) -> bytes:
    """``source`` as JSON: an :class:`EncodedSource`'s own bytes, anything else encoded with orjson.

    A value JSON cannot hold (bytes, a set ...) is stored as its text rather than losing the event.
    """
    if isinstance(source, EncodedSource):
        return source.json
    try:
        return orjson.dumps(source)  # twice as fast as with the options below, which are rarely needed
    except TypeError:
        return orjson.dumps(source, default=_jsonable, option=orjson.OPT_NON_STR_KEYS)


def _jsonable(value: object) -> object:
    if isinstance(value, EncodedSource):  # a rejected document's original inside its dead letter
        return value.decoded()
    return str(value)


class Outcome(Enum):
    """What became of one document."""

    STORED = "stored"
    DUPLICATE = "duplicate"  # its id was already stored: a replay or a retry after a lost answer
    DEAD_LETTERED = "dead_lettered"  # Elasticsearch rejected it; the original is in the dead-letter index
    FAILED = "failed"  # rejected, and the dead-letter index refused it too (logged with the reason)

    @property
    def acknowledged(self) -> bool:
        """True when the source may forget the document: it is safe in Elasticsearch."""
        return self is not Outcome.FAILED

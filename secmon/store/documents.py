"""The unit the bulk writer stores (its deterministic id comes from :func:`secmon.ids.document_id`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from secmon.ids import document_id

__all__ = ["Document", "Outcome", "document_id"]


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

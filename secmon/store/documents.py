"""The unit the bulk writer stores, and how its deterministic id is made."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal


def document_id(*parts: str | int | bytes) -> str:
    """A short, deterministic id from the parts that make a document unique.

    The same parts always give the same id, so a replayed event overwrites nothing and
    duplicates nothing: for a file, its path, inode and offset; for an alert, rule and event id.
    """
    digest = hashlib.blake2b(digest_size=15)
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(4, "little"))
        digest.update(data)
    return base64.urlsafe_b64encode(digest.digest()).decode("ascii")


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

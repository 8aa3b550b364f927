"""Deterministic document ids, shared by every part that writes to Elasticsearch.

A module of its own, apart from secmon.store, so that parts loaded with the configuration
(notifications) use it without importing the storage layer.
"""

from __future__ import annotations

import base64
import hashlib


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

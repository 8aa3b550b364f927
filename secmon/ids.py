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
    duplicates nothing: for an event, its agency, its place at the source and its content
    (secmon/collect/topology.py); for an alert, rule and event id.
    """
    digest = hashlib.blake2b(digest_size=15)
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(4, "little"))
        digest.update(data)
    return base64.urlsafe_b64encode(digest.digest()).decode("ascii")


def sequential_id(prefix: bytes, number: int) -> str:
    """An id for the ``number``-th document of a run whose random ``prefix`` (9 bytes) makes it unique.

    For documents with nothing of their own to hash (a syslog stream's lines): no hashing, and
    ids of one run share a prefix and follow one another, which Lucene looks up faster than
    random ones when Elasticsearch checks that a created id is new.
    """
    return base64.urlsafe_b64encode(prefix + number.to_bytes(6, "big")).decode("ascii")

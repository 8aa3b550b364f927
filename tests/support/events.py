"""Documents of synthetic events, ready for the bulk writer."""

from __future__ import annotations

import secrets

from secmon.bench.events import synthetic_events
from secmon.store import Document, IndexNames, document_id


def event_docs(names: IndexNames, count: int, dataset: str) -> list[Document]:
    """``count`` events of ``dataset``, each with its own deterministic id."""
    run = secrets.token_hex(4)
    docs = []
    for n, event in enumerate(synthetic_events(count)):
        event["event"]["dataset"] = dataset
        docs.append(Document(names.events(dataset), document_id(run, n), event))
    return docs

"""A document as one frame of bytes: how the disk buffer keeps documents and Kafka carries them.

``[index, id, component, op]``, a newline, then the source's JSON. The source's JSON is sent to
Elasticsearch as it is (see :class:`~secmon.store.documents.EncodedSource`); orjson never writes
a raw newline, so the first one ends the head.
"""

from __future__ import annotations

import orjson

from secmon.store.documents import Document, EncodedSource, source_json


def encode_frame(doc: Document) -> bytes:
    """``doc`` as a frame."""
    return orjson.dumps((doc.index, doc.id, doc.component, doc.op)) + b"\n" + source_json(doc.source)


def decode_frame(frame: bytes) -> Document:
    """The document of a frame; its source stays encoded until something looks inside."""
    head, newline, source = frame.partition(b"\n")
    if not newline:  # a frame of an earlier secmon: one array, the source inside
        index, doc_id, component, decoded, *op = orjson.loads(frame)
        return Document(index, doc_id, decoded, op=op[0] if op else "create", component=component)
    index, doc_id, component, op = orjson.loads(head)
    return Document(index, doc_id, EncodedSource(source), op=op, component=component)

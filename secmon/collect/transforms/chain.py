"""The transforms every record goes through, whoever read it.

The pipeline (``secmon up``, ``secmon import``) and offline hunting (``secmon detect``, ``secmon
hunt``) all turn a record into an event with one :class:`TransformChain`, so a rule sees the
same event offline as in the service:

    Record ─▶ normalize (parse as its format, ECS) ─▶ join_audit_exec (auditd SYSCALL + EXECVE) ─▶ Event

A parser bug costs the event its fields, never the event: it is kept, raw and tagged.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from secmon.collect.transforms.join_audit_exec import ExecJoin
from secmon.collect.transforms.normalize import normalize
from secmon.events import Event, Record, mark_parse_failure
from secmon.log import get_logger
from secmon.timestamps import epoch_to_iso

log = get_logger(__name__)


class TransformChain:
    """Records → ECS events, with the state that joins records of one stream (auditd's lines).

    One chain per run whose records may belong together: a pipeline, a hunted file.
    ``on_parser_error`` is told of each parser failure (the pipeline counts them).
    """

    __slots__ = ("_exec_join", "_on_parser_error")

    def __init__(self, on_parser_error: Callable[[str, BaseException], None] | None = None) -> None:
        self._exec_join = ExecJoin()
        self._on_parser_error = on_parser_error

    def __call__(self, record: Record, fmt: str, stream: str) -> Event:
        """``record`` parsed as ``fmt`` (a key of ``TRANSFORMS`` or ``"auto"``); ``stream`` names its source."""
        try:
            event = normalize(record, fmt)
            self._exec_join.join(event, stream)
        except Exception as exc:  # a parser bug must cost one event's fields, never the event
            if self._on_parser_error is not None:
                self._on_parser_error(stream, exc)
            log.error("A parser failed; keeping the raw event.", component=stream, error=repr(exc))
            event = mark_parse_failure({"message": record.message, "event": {"original": record.message}}, repr(exc))
            event["@timestamp"] = epoch_to_iso(record.received or time.time())
        return event

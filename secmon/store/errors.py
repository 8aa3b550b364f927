"""What an Elasticsearch error says: its type, its reason, and whether asking again later can help.

An :class:`elasticsearch.ApiError` carries Elasticsearch's answer in ``body``:
``{"error": {"type": ..., "reason": ..., "caused_by": {...}, "root_cause": [...]}, "status": ...}``,
where the innermost ``caused_by`` is the most specific reason (the outer one of a search is
"all shards failed").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from elasticsearch import ApiError

# Errors of an overloaded or not yet ready cluster: the same request succeeds later.
_TEMPORARY_TYPES = frozenset(
    {
        "circuit_breaking_exception",  # a memory circuit breaker tripped (429)
        "es_rejected_execution_exception",  # a thread pool queue is full (429)
        "no_shard_available_action_exception",  # a shard has no started copy yet
        "unavailable_shards_exception",  # a primary is not active for a write
    }
)
_TEMPORARY_STATUSES = frozenset({429, 503})


def error_type(exc: ApiError) -> str:
    """The type of the error (``resource_already_exists_exception``…), or "" when the answer has none."""
    error = _error(exc)
    return str(error.get("type") or "") if error is not None else ""


def error_reason(exc: ApiError) -> str:
    """The most specific reason Elasticsearch gives, else the error's text.

    That is the innermost ``caused_by``, or else the first root cause: a search whose every
    shard failed says only "all shards failed" itself.
    """
    error = _error(exc)
    if error is None:
        body = exc.body if isinstance(exc.body, dict) else {}
        return str(body.get("error") or exc.message or exc)
    if isinstance(error.get("caused_by"), dict):
        while isinstance(error.get("caused_by"), dict):
            error = error["caused_by"]
    else:
        error = next((cause for cause in _list(error.get("root_cause")) if isinstance(cause, dict)), error)
    return str(error.get("reason") or error.get("type") or exc.message or exc)


def is_temporary(exc: ApiError) -> bool:
    """True when Elasticsearch refused for now: overloaded (429), unavailable (503) or a shard not started."""
    if exc.meta.status in _TEMPORARY_STATUSES:
        return True
    return any(kind in _TEMPORARY_TYPES for kind in _types(exc))


def _error(exc: ApiError) -> dict[str, Any] | None:
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    return error if isinstance(error, dict) else None


def _types(exc: ApiError) -> Iterator[str]:
    """Every error type the answer names: the error, its causes, its root causes and failed shards."""
    error = _error(exc)
    if error is None:
        return
    pending: list[Any] = [error]
    while pending:
        entry = pending.pop()
        if not isinstance(entry, dict):
            continue
        yield str(entry.get("type") or "")
        pending.append(entry.get("caused_by"))
        pending.extend(_list(entry.get("root_cause")))
        pending.extend(shard.get("reason") for shard in _list(entry.get("failed_shards")) if isinstance(shard, dict))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []

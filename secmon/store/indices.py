"""The plain indices secmon owns beside events and alerts (API keys, audit trail, deliveries)."""

from __future__ import annotations

from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from secmon.errors import StoreError

SMALL_INDEX_SETTINGS = {"number_of_shards": 1, "auto_expand_replicas": "0-1"}


async def ensure_index(
    client: AsyncElasticsearch, index: str, mappings: dict[str, Any], settings: dict[str, Any] | None = None
) -> None:
    """Create ``index``, or bring the mapping of an existing one up to date (mappings only grow).

    Safe at every start, and when several instances start at once.
    """
    try:
        try:
            await client.indices.create(index=index, settings=settings or SMALL_INDEX_SETTINGS, mappings=mappings)
        except ApiError as exc:
            if _error_type(exc) != "resource_already_exists_exception":
                raise
            await client.indices.put_mapping(index=index, **mappings)
    except ApiError as exc:
        raise StoreError(f"Elasticsearch refused to create or update {index}: {_reason(exc)}") from None
    except TransportError as exc:
        raise StoreError(f"Elasticsearch could not be reached to create {index}: {exc.message}") from None


def _error_type(exc: ApiError) -> str:
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    return str(error.get("type", "")) if isinstance(error, dict) else ""


def _reason(exc: ApiError) -> str:
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    while isinstance(error, dict) and isinstance(error.get("caused_by"), dict):
        error = error["caused_by"]
    return str(error.get("reason") if isinstance(error, dict) else exc)

"""The plain indices secmon owns beside events and alerts (API keys, audit trail, deliveries)."""

from __future__ import annotations

from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from secmon.errors import StoreError
from secmon.store.errors import error_reason, error_type
from secmon.store.ready import READY_SECONDS, wait_for_primaries

SMALL_INDEX_SETTINGS = {"number_of_shards": 1, "auto_expand_replicas": "0-1"}


async def ensure_index(
    client: AsyncElasticsearch,
    index: str,
    mappings: dict[str, Any],
    settings: dict[str, Any] | None = None,
    *,
    ready_timeout: float = READY_SECONDS,
) -> None:
    """Create ``index``, or bring the mapping of an existing one up to date (mappings only grow).

    Returns once the index is searchable (its primary started), so the first read after it
    cannot fail; raises :class:`~secmon.errors.IndexNotReady` after ``ready_timeout`` seconds.
    Safe at every start, and when several instances start at once.
    """
    try:
        try:
            # No wait in the create (0 active shards): the wait below covers the index whoever
            # created it (another instance, a moment ago), and raises when it runs out, where the
            # create's own wait would answer "shards_acknowledged": false as a success.
            await client.indices.create(
                index=index, settings=settings or SMALL_INDEX_SETTINGS, mappings=mappings, wait_for_active_shards=0
            )
        except ApiError as exc:
            if error_type(exc) != "resource_already_exists_exception":
                raise
            await client.indices.put_mapping(index=index, **mappings)
        await wait_for_primaries(client, index, ready_timeout)
    except ApiError as exc:
        raise StoreError(f"Elasticsearch refused to create or update {index}: {error_reason(exc)}") from None
    except TransportError as exc:
        raise StoreError(f"Elasticsearch could not be reached to create {index}: {exc.message}") from None

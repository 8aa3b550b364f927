"""Indices whose primary shard is held unassigned, to meet them as a reader meets a just-created index.

An allocation filter naming no node keeps the primary from starting for as long as the test
wants; lifting it lets Elasticsearch start it. Whether a reader is waiting for it shows in the
tasks API: a cluster health request sent with the reader's ``X-Opaque-Id``.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

from elasticsearch import AsyncElasticsearch
from elasticsearch.exceptions import GeneralAvailabilityWarning

HELD = {"number_of_shards": 1, "number_of_replicas": 0, "index.routing.allocation.require._name": "no-such-node"}


async def create_held(es: AsyncElasticsearch, index: str, mappings: dict[str, Any] | None = None) -> None:
    """Create ``index`` with its primary held unassigned (not waiting for it, which would time out)."""
    await es.indices.create(index=index, settings=HELD, mappings=mappings or {}, wait_for_active_shards=0)


async def release(es: AsyncElasticsearch, index: str) -> None:
    """Lift the filter: Elasticsearch allocates and starts the primary of ``index``."""
    await es.indices.put_settings(index=index, settings={"index.routing.allocation.require._name": None})


async def until_waiting_for_health(es: AsyncElasticsearch, opaque_id: str, work: asyncio.Task[Any]) -> None:
    """Return once a cluster health request of ``opaque_id`` is in flight, or ``work`` has finished.

    ``work`` finishing first means it did not wait (it failed, or returned too early): the test
    then finds out by awaiting it.
    """
    while not work.done():
        with warnings.catch_warnings():  # the client warns that the tasks API is a technical preview
            warnings.simplefilter("ignore", GeneralAvailabilityWarning)
            tasks = await es.tasks.list(actions="cluster:monitor/health", detailed=True)
        for node in tasks["nodes"].values():
            if any(task.get("headers", {}).get("X-Opaque-Id") == opaque_id for task in node["tasks"].values()):
                return
        await asyncio.sleep(0.02)

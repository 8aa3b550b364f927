"""Retention of events and dead letters, enforced by secmon itself.

The integration-test distribution of Elasticsearch has neither ILM nor data stream lifecycle,
so secmon does what a lifecycle would: it rolls each data stream over to a new backing index
every ``retention.rollover_after``, and deletes a backing index once everything in it is older
than the retention of its dataset. A backing index stops receiving events when it is rolled
over, so its content is no newer than the creation of the next generation; that time, not the
events' own @timestamp, decides. Retention is therefore exact to within ``rollover_after``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Literal

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from secmon.config import RetentionSettings, parse_duration
from secmon.errors import IndexNotReady
from secmon.log import get_logger
from secmon.store.inventory import by_data_stream, stored_indices
from secmon.store.names import IndexNames
from secmon.store.ready import wait_for_primaries

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionAction:
    """One thing retention did: rolled a data stream over, or deleted a backing index."""

    action: Literal["rollover", "delete"]
    data_stream: str
    index: str


def retention_seconds(names: IndexNames, settings: RetentionSettings, data_stream: str) -> float:
    """How long the data in ``data_stream`` is kept."""
    if data_stream == names.deadletter:
        return parse_duration(settings.deadletter)
    per_dataset = {names.events(dataset): duration for dataset, duration in settings.datasets.items()}
    return parse_duration(per_dataset.get(data_stream, settings.events))


async def enforce_retention(
    client: AsyncElasticsearch, names: IndexNames, settings: RetentionSettings, now: float | None = None
) -> list[RetentionAction]:
    """Roll over and delete what retention asks for at time ``now``; returns what was done."""
    now = time.time() if now is None else now
    rollover_after = parse_duration(settings.rollover_after)
    actions: list[RetentionAction] = []
    indices = await stored_indices(client, [names.events_pattern, names.deadletter])
    for stream, backing in by_data_stream(indices).items():
        keep_for = retention_seconds(names, settings, stream)
        # Each backing index but the write index stopped receiving writes when the next was created.
        for index, successor in itertools.pairwise(backing):
            if now - successor.created > keep_for:
                await client.indices.delete(index=index.name)
                actions.append(RetentionAction("delete", stream, index.name))
        write_index = backing[-1]
        if write_index.docs and now - write_index.created > rollover_after:
            rolled = await client.indices.rollover(alias=stream, wait_for_active_shards=0)
            actions.append(RetentionAction("rollover", stream, write_index.name))
            # Until its primary starts, a point in time over the events (the API's event search)
            # fails on the new write index: wait for it here, where it was created.
            try:
                await wait_for_primaries(client, str(rolled["new_index"]))
            except IndexNotReady as exc:  # the rollover is done; readers wait for it themselves
                log.warning("A new write index is not searchable yet.", data_stream=stream, error=exc)
    for action in actions:
        log.info("Retention applied.", action=action.action, data_stream=action.data_stream, index=action.index)
    return actions


async def retention_loop(
    client: AsyncElasticsearch, names: IndexNames, settings: RetentionSettings, interval: float = 3600.0
) -> None:
    """Enforce retention every ``interval`` seconds until cancelled; errors are logged, not fatal."""
    while True:
        try:
            await enforce_retention(client, names, settings)
        except (ApiError, TransportError) as exc:
            log.warning("Retention could not run; will try again.", error=exc)
        await asyncio.sleep(interval)

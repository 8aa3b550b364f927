"""Reads and creations wait for an index's primary shard to start, within a bound that names the index.

Each test holds a primary unassigned with an allocation filter, so the index stays exactly as a
reader finds a just-created one until the test lifts the filter: nothing races the cluster.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from elasticsearch import ApiError, AsyncElasticsearch, BadRequestError

from secmon.errors import IndexNotReady
from secmon.store import IndexNames, read_when_ready, wait_for_primaries
from secmon.store.indices import ensure_index
from tests.support.allocation import HELD, create_held, release, until_waiting_for_health

MAPPINGS = {"properties": {"n": {"type": "long"}}}


@pytest.fixture
def run(names: IndexNames) -> str:
    """A prefix of this test's own, whose indices are deleted afterwards."""
    return f"{names.prefix}-ready-{secrets.token_hex(3)}"


@pytest.fixture(autouse=True)
async def _delete_afterwards(es: AsyncElasticsearch, run: str) -> AsyncIterator[None]:
    yield
    resolved = await es.indices.resolve_index(name=f"{run}-*")
    indices = [index["name"] for index in resolved["indices"]]
    for start in range(0, len(indices), 8):  # by name, a few at a time: long names overflow a request line
        await es.indices.delete(index=",".join(indices[start : start + 8]))


async def test_a_count_that_meets_an_unstarted_primary_waits_for_it_and_counts(
    es: AsyncElasticsearch, run: str
) -> None:
    held = f"{run}-held"
    await create_held(es, held, MAPPINGS)
    with pytest.raises(ApiError) as plain:  # what a count over it answers until its primary starts
        await es.count(index=f"{run}-*")
    assert plain.value.meta.status == 503

    token = secrets.token_hex(4)
    reader = es.options(opaque_id=token)
    count = asyncio.create_task(read_when_ready(reader, lambda: reader.count(index=f"{run}-*")))
    await until_waiting_for_health(es, token, count)
    await release(es, held)

    response = await count
    assert response["count"] == 0
    assert response["_shards"] == {"total": 1, "successful": 1, "skipped": 0, "failed": 0}


async def test_a_read_that_meets_more_unstarted_indices_than_one_request_line_names_waits_for_all(
    es: AsyncElasticsearch, run: str
) -> None:
    held = [f"{run}-{n:02d}-{'x' * 200}" for n in range(24)]  # 5 kB of names: more than a request line holds
    for index in held:
        await create_held(es, index)
    token = secrets.token_hex(4)
    reader = es.options(opaque_id=token)
    count = asyncio.create_task(read_when_ready(reader, lambda: reader.count(index=f"{run}-*")))
    await until_waiting_for_health(es, token, count)
    await release(es, f"{run}-*")

    response = await count
    assert (response["count"], response["_shards"]["successful"], response["_shards"]["failed"]) == (0, 24, 0)


async def test_a_read_of_an_index_that_never_starts_fails_after_the_bound_naming_it(
    es: AsyncElasticsearch, run: str
) -> None:
    held = f"{run}-never"
    await create_held(es, held)
    with pytest.raises(IndexNotReady) as waited:
        await read_when_ready(es, lambda: es.search(index=f"{run}-*", size=0), timeout=0.5)
    assert waited.value.indices == [held]
    assert str(waited.value).startswith(f"{held} not searchable after 0.5s: a primary shard has not started")

    with pytest.raises(IndexNotReady, match=f"^{held} not searchable"):  # a point in time, too
        await read_when_ready(es, lambda: es.open_point_in_time(index=f"{run}-*", keep_alive="1m"), timeout=0.5)
    with pytest.raises(IndexNotReady, match=f"^{held} not searchable after 0.2s"):
        await wait_for_primaries(es, f"{run}-*", timeout=0.2)


async def test_other_failures_of_a_read_are_not_waited_on(es: AsyncElasticsearch, run: str) -> None:
    await ensure_index(es, f"{run}-ready", MAPPINGS)
    with pytest.raises(BadRequestError):
        await read_when_ready(es, lambda: es.search(index=f"{run}-*", query={"range": {"n": {"gte": "x"}}}))
    await wait_for_primaries(es, f"{run}-nothing-*", timeout=0)  # a pattern matching nothing is ready
    await wait_for_primaries(es, f"{run}-missing", timeout=0)  # and a name that does not exist


async def test_ensure_index_returns_once_the_new_index_is_searchable(es: AsyncElasticsearch, run: str) -> None:
    index = f"{run}-created"
    token = secrets.token_hex(4)
    creating = asyncio.create_task(ensure_index(es.options(opaque_id=token), index, MAPPINGS, HELD))
    await until_waiting_for_health(es, token, creating)
    assert not creating.done(), "ensure_index returned while the index could not be searched"
    await release(es, index)
    await creating
    assert (await es.count(index=index))["count"] == 0  # the first read right after it cannot fail

    with pytest.raises(IndexNotReady, match=f"^{run}-stuck not searchable after 0.3s"):
        await ensure_index(es, f"{run}-stuck", MAPPINGS, HELD, ready_timeout=0.3)

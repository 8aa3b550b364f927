"""GET /events while a dataset's index is still starting its shard, as right after its first event.

The API runs over a prefix of its own, with plain event indices (no data stream template), so
that one of them can be held unassigned with an allocation filter and deleted afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from elasticsearch import AsyncElasticsearch

from secmon.api import ApiServices, create_app
from secmon.auth import KeyStore, Role
from secmon.config import ElasticsearchSettings, Settings
from secmon.serving import AsgiServer
from secmon.store import IndexNames
from secmon.store.templates import load_mapping
from secmon.triage.events import EventSearch
from tests.support.allocation import create_held, release, until_waiting_for_health


@pytest.fixture
async def own(es: AsyncElasticsearch, es_settings: ElasticsearchSettings) -> AsyncIterator[IndexNames]:
    """A prefix of this test's own; every index under it is deleted afterwards."""
    names = IndexNames(f"{es_settings.index_prefix}-evready-{secrets.token_hex(3)}")
    yield names
    resolved = await es.indices.resolve_index(name=names.all_pattern)
    if resolved["indices"]:
        await es.indices.delete(index=",".join(index["name"] for index in resolved["indices"]))


async def test_events_wait_for_a_starting_index_and_name_one_that_never_starts(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, own: IndexNames, tmp_path: Path
) -> None:
    stored = own.events("system.auth")
    await es.indices.create(index=stored, mappings=load_mapping("events"))
    operations: list[dict[str, object]] = []
    for n in range(3):
        operations += [{"create": {"_index": stored}}, {"@timestamp": f"2026-01-01T00:00:0{n}Z", "message": f"m{n}"}]
    assert not (await es.bulk(operations=operations, refresh=True))["errors"]
    starting, never = own.events("network.dns"), own.events("network.flow")
    await create_held(es, starting, load_mapping("events"))

    token = secrets.token_hex(4)
    reader = es.options(opaque_id=token)  # how the test sees the API waiting for the shard
    settings = Settings(  # type: ignore[call-arg]
        elasticsearch=es_settings.model_copy(update={"index_prefix": own.prefix}), state_dir=tmp_path
    )
    keys = KeyStore(es, own)
    await keys.ensure_index()
    services = ApiServices.build(settings, reader, keys)
    await services.prepare()
    _, secret = await keys.create(Role.ADMIN, name="events-ready")
    server = AsgiServer(create_app(services), "127.0.0.1:0", name="api")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {secret}"}) as api:
            listing = asyncio.create_task(api.get("/events", timeout=60))
            await until_waiting_for_health(es, token, listing)
            await release(es, starting)
            answer = await listing
            assert answer.status_code == 200, answer.text
            assert [event["message"] for event in answer.json()["events"]] == ["m2", "m1", "m0"]

            await create_held(es, never, load_mapping("events"))
            services.events = EventSearch(reader, own, ready_timeout=0.5)  # not the API's 10s, for the test
            refused = await api.get("/events", timeout=60)
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "5"
            assert refused.json()["detail"].startswith(f"{never} not searchable after 0.5s: a primary shard")
    finally:
        await server.stop()

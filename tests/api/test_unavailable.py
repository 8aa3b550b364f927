"""Elasticsearch refusing for now (a shard not started, 503; a circuit breaker, 429) is a 503 with Retry-After.

Never a 500: the caller should come back, and the problem document says why. The shard is held
unassigned with an allocation filter, as in a just-created index; the 429 is Elasticsearch's
own, from its request circuit breaker set to one byte for the one request that meets it.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
from tests.api.conftest import Api
from tests.support.allocation import create_held

UNAVAILABLE = "urn:secmon:problem:elasticsearch-unavailable"


@pytest.fixture
async def own(es: AsyncElasticsearch, es_settings: ElasticsearchSettings) -> AsyncIterator[IndexNames]:
    """A prefix of this test's own; every index under it is deleted afterwards."""
    names = IndexNames(f"{es_settings.index_prefix}-unavail-{secrets.token_hex(3)}")
    yield names
    resolved = await es.indices.resolve_index(name=names.all_pattern)
    if resolved["indices"]:
        await es.indices.delete(index=",".join(index["name"] for index in resolved["indices"]))


@asynccontextmanager
async def api_over(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, names: IndexNames, state: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """An API over the indices of ``names``, and a client with an admin key."""
    settings = Settings(elasticsearch=es_settings.model_copy(update={"index_prefix": names.prefix}), state_dir=state)
    keys = KeyStore(es, names)
    await keys.ensure_index()
    services = ApiServices.build(settings, es, keys)
    services.events = EventSearch(es, names, ready_timeout=0.2)  # not the API's 10 s, for the test
    await services.prepare()
    _, secret = await keys.create(Role.ADMIN, name="unavailable")
    server = AsgiServer(create_app(services), "127.0.0.1:0", name="api")
    await server.start()
    try:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=60
        ) as client:
            yield client
    finally:
        await server.stop()


def assert_unavailable(answer: httpx.Response, path: str) -> dict[str, object]:
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["Retry-After"]) >= 1
    assert answer.headers["content-type"] == "application/problem+json"
    problem: dict[str, object] = answer.json()
    assert problem["type"] == UNAVAILABLE and problem["status"] == 503 and problem["instance"] == path
    assert problem["title"] and problem["detail"]
    return problem


async def test_routes_over_an_index_whose_primary_has_not_started_answer_503_with_retry_after(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, own: IndexNames, tmp_path: Path
) -> None:
    await create_held(es, own.alerts, load_mapping("alerts"))
    await create_held(es, own.events("system.auth"), load_mapping("events"))
    async with api_over(es, es_settings, own, tmp_path) as api:
        alerts = assert_unavailable(await api.get("/alerts"), "/alerts")
        assert "HTTP 503" in str(alerts["detail"])
        assert_unavailable(await api.get("/alerts/stats"), "/alerts/stats")
        assert_unavailable(await api.get("/alerts/some-alert"), "/alerts/some-alert")
        events = assert_unavailable(await api.get("/events"), "/events")
        assert str(events["detail"]).startswith(f"{own.events('system.auth')} not searchable after 0.2s")
        assert (await api.get("/healthz")).status_code == 200  # the API itself is fine


async def test_a_search_elasticsearch_refuses_with_429_is_answered_503_with_retry_after(api: Api) -> None:
    client = api.services.client
    await api.store_alerts("agency-breaker")
    async with api.client(await api.key(Role.ANALYST)) as analyst:
        assert (await analyst.get("/alerts/stats")).status_code == 200
        # Only aggregations allocate under this breaker: other tests' plain searches and writes
        # on the node are not refused meanwhile.
        await client.cluster.put_settings(persistent={"indices.breaker.request.limit": "1b"})
        try:
            refused = await analyst.get("/alerts/stats")
        finally:
            await client.cluster.put_settings(persistent={"indices.breaker.request.limit": None})
        problem = assert_unavailable(refused, "/alerts/stats")
        assert "HTTP 429" in str(problem["detail"]) and "Data too large" in str(problem["detail"])
        assert (await analyst.get("/alerts/stats")).status_code == 200

"""``secmon bench api`` against the real test node: every scenario answered by both, without errors.

No wall-clock thresholds: a loaded machine makes a run slower, never wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
from elasticsearch import AsyncElasticsearch

from secmon.bench.api import MIX, TARGETS, Universe, bench_api, bench_settings, load_alerts, synthetic_alerts
from secmon.config import ElasticsearchSettings, Settings
from secmon.store import IndexNames, connect

ALERTS = 2_000


def test_alerts_are_varied_and_reproducible() -> None:
    end = datetime(2026, 1, 1, tzinfo=UTC)
    lines = list(synthetic_alerts(Universe.build(), 500, 50, end, "x-alerts"))
    assert lines == list(synthetic_alerts(Universe.build(), 500, 50, end, "x-alerts"))
    docs = [orjson.loads(line) for line in lines[1::2]]
    assert len({doc["alert"]["id"] for doc in docs}) == 500
    assert {doc["alert"]["status"] for doc in docs} == {"open", "acknowledged", "closed"}
    assert {doc["rule"]["level"] for doc in docs} == {"informational", "low", "medium", "high", "critical"}
    assert len({doc["organization"]["id"] for doc in docs}) == 20
    assert all(doc["threat"]["technique"]["id"] and doc["event"]["ids"] for doc in docs)
    assert all(doc["alert"]["resolution"] for doc in docs if doc["alert"]["status"] == "closed")


async def test_every_scenario_is_answered_by_the_api_and_elasticsearch(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, tmp_path: Path
) -> None:
    settings = Settings(elasticsearch=es_settings, state_dir=tmp_path / "state")  # type: ignore[call-arg]
    result = await bench_api(settings, ALERTS, rate=20, seconds=2, warmup=0.5)
    prefix = bench_settings(settings).elasticsearch.index_prefix
    assert result.prefix == prefix
    assert (result.load.alerts, result.load.reused) == (ALERTS, False)
    assert result.load.events == ALERTS // 10 and result.load.segments >= 1
    assert {(r.target, r.scenario) for r in result.results} == {(t, s) for t in TARGETS for s, _ in MIX}
    for scenario, _ in MIX:
        api, peer = result.result("api", scenario), result.result("elasticsearch", scenario)
        assert api.requests == peer.requests > 0  # the same plan for both
        assert (api.errors, peer.errors) == ({}, {})
        assert len(api.latencies) == api.requests and len(peer.latencies) == peer.requests
        assert 0 < api.percentile(50) <= api.percentile(99) <= api.max
        assert result.p99_ratio(scenario) > 0
    assert sum(r.requests for r in result.results) == 2 * 40

    # A second run reuses the stored alerts; the API keys it made are revoked.
    again = await bench_api(settings, ALERTS, rate=20, seconds=1, warmup=0)
    assert (again.load.reused, again.load.alerts, again.load.seconds) == (True, ALERTS, 0.0)
    assert (await es.count(index=IndexNames(prefix).alerts))["count"] == ALERTS
    keys = await es.search(index=f"{prefix}-apikeys", query={"term": {"revoked": False}}, size=0)
    assert keys["hits"]["total"]["value"] == 0


async def test_a_larger_load_over_a_smaller_one_adds_the_missing_events(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, tmp_path: Path
) -> None:
    """Events sit in a data stream that cannot be deleted: a larger load stores the new ones beside the old."""
    own = es_settings.model_copy(update={"index_prefix": f"{es_settings.index_prefix}-grow"})
    settings = bench_settings(Settings(elasticsearch=own, state_dir=tmp_path / "state"))  # type: ignore[call-arg]
    client = connect(settings.elasticsearch)
    try:
        small = await load_alerts(client, settings, 200)
        larger = await load_alerts(client, settings, 400)  # half its events are stored already (409)
    finally:
        await client.close()
    assert (small.alerts, small.events, small.reused) == (200, 20, False)
    assert (larger.alerts, larger.events, larger.reused) == (400, 40, False)

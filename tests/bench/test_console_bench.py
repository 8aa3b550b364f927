"""``secmon bench console`` against the real test node: every page answered, as the page it claims, and rendered.

No wall-clock thresholds: a loaded machine makes a run slower, never wrong.
"""

from __future__ import annotations

from pathlib import Path

from elasticsearch import AsyncElasticsearch

from secmon.bench.api import bench_settings
from secmon.bench.console import MIX, bench_console
from secmon.config import ElasticsearchSettings, Settings
from secmon.store import IndexNames

ALERTS = 2_000  # bench api's test loads the same: whichever runs second reuses them


async def test_every_console_page_is_answered_beside_elasticsearch_and_the_queue_renders_in_chromium(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, tmp_path: Path
) -> None:
    settings = Settings(elasticsearch=es_settings, state_dir=tmp_path / "state")  # type: ignore[call-arg]
    result = await bench_console(settings, ALERTS, rate=20, seconds=2, warmup=0.5, renders=3)
    assert result.load.alerts == ALERTS
    assert {(r.target, r.scenario) for r in result.results} == {
        (t, s) for t in ("console", "elasticsearch") for s, _ in MIX
    }
    for scenario, _ in MIX:
        page, peer = result.result("console", scenario), result.result("elasticsearch", scenario)
        assert page.requests == peer.requests > 0  # the same plan for both
        # An answer that is not the page (the sign-in form, a problem page) would be an error here.
        assert (page.errors, peer.errors) == ({}, {})
        assert 0 < page.percentile(50) <= page.percentile(99) <= page.max
    assert result.render_problem is None
    assert len(result.renders) == 3 and all(r.first_paint > 0 and r.loaded > 0 for r in result.renders)
    assert all(r.path.startswith("/?") for r in result.renders)

    # The bench's keys are revoked when it ends, and with them the sessions it signed in with.
    prefix = bench_settings(settings).elasticsearch.index_prefix
    keys = await es.search(index=f"{prefix}-apikeys", query={"term": {"revoked": False}}, size=0)
    assert keys["hits"]["total"]["value"] == 0
    assert (await es.count(index=IndexNames(prefix).alerts))["count"] == ALERTS

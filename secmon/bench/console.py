"""``secmon bench console``: the web console's pages over a million alerts, beside raw Elasticsearch.

**Data** are ``secmon bench api``'s (the same prefix, reused when there): synthetic alerts shaped
like the detection engine's, 20 agencies, 300 rules, 30 days.

**Requests**, open loop from a separate process exactly as ``bench api`` sends them (same rate,
same filters, same keys: half admin, half an analyst scoped to three agencies), signed in with a
session cookie as a browser is:

- ``queue``: the queue page (``/?<filters>``) rendered on the server: a page of 50 alerts and the
  counts per level and status;
- ``detail``: an alert's page, with its events and audit trail;
- ``new``: the queue's polling request (``/console/queue/new``), how many alerts of the view
  were raised since the page was rendered: the request every open console sends every 10 s.

Each answer must be the page it claims (its rows, the alert, the count), or it counts as an
error. **Peer**: the searches each page sends, with the exact bodies the console's stores build
(captured with a recording client), straight to Elasticsearch, the searches of one page at once
as the page's handler gathers them; interleaved with the console's requests as in ``bench api``.

**Render**: after the load, Chromium (Debian's, through Playwright) signs in and opens queue
views of the plan one after the other; per view, the browser's own navigation timing: first
contentful paint, and the load event (page, stylesheet and script loaded and run).
"""

from __future__ import annotations

import os
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from secmon.api.schemas import SUMMARY_FIELDS
from secmon.auth import Role
from secmon.bench.api import (
    Call,
    EsRequest,
    LoadReport,
    ScenarioResult,
    Universe,
    _filters,
    _Pool,
    _pool,
    _RecordingClient,
    _run,
    _Target,
    bench_settings,
    es_target,
    load_alerts,
    serving,
)
from secmon.config import Settings
from secmon.console import create_site
from secmon.console.pages.queue import PAGE_SIZE
from secmon.console.web import COOKIE
from secmon.serving import freeze_startup_heap
from secmon.store import IndexNames, connect
from secmon.triage.audit import AuditLog
from secmon.triage.query import AlertFilter, AlertSort
from secmon.triage.store import AlertStore

MIX = (("queue", 0.55), ("detail", 0.3), ("new", 0.15))
SCENARIOS = tuple(name for name, _ in MIX)
# What each answer must hold to be the page asked for (not the sign-in form, not a problem page).
EXPECT = {"queue": b'id="queue"', "detail": b"data-alert-id=", "new": b'"new":'}
RENDERS = 20
CHROMIUM = os.environ.get("SECMON_CHROMIUM", "/usr/bin/chromium")
WARMUP_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Render:
    """One queue view opened in Chromium: milliseconds from navigation start."""

    path: str
    first_paint: float
    loaded: float


@dataclass(frozen=True, slots=True)
class ConsoleBenchResult:
    prefix: str
    load: LoadReport
    rate: float
    seconds: float
    results: list[ScenarioResult]
    renders: list[Render]
    render_problem: str | None  # why no render was measured
    notes: list[str]

    def result(self, target: str, scenario: str) -> ScenarioResult:
        return next(r for r in self.results if (r.target, r.scenario) == (target, scenario))

    def p99_ratio(self, scenario: str) -> float:
        return self.result("console", scenario).percentile(99) / self.result("elasticsearch", scenario).percentile(99)

    def render_times(self, what: str) -> list[float]:
        """``first_paint`` or ``loaded`` of every render, in milliseconds."""
        times: list[float] = [getattr(render, what) for render in self.renders]
        return times

    def render_median(self, what: str) -> float:
        return statistics.median(self.render_times(what))

    def render_max(self, what: str) -> float:
        return max(self.render_times(what))


async def bench_console(
    settings: Settings,
    alerts: int = 1_000_000,
    rate: float = 50.0,
    seconds: float = 30.0,
    *,
    reload: bool = False,
    warmup: float = WARMUP_SECONDS,
    renders: int = RENDERS,
    progress: Callable[[str], None] = lambda _: None,
) -> ConsoleBenchResult:
    """Load (or reuse) ``alerts`` alerts, then time the console's pages and raw Elasticsearch at ``rate``/s."""
    run_settings = bench_settings(settings)
    names = IndexNames(run_settings.elasticsearch.index_prefix)
    client = connect(run_settings.elasticsearch, max_retries=0)
    try:
        load = await load_alerts(client, run_settings, alerts, reload=reload, progress=progress)
        pool = await _pool(client, names)
        plan = await console_plan(pool, names, max(len(MIX), int(rate * seconds)), seed=1)
        warm = await console_plan(pool, names, max(len(MIX), int(rate * warmup)), seed=2) if warmup > 0 else []
        wanted = {"admin": (Role.ADMIN, ()), "analyst": (Role.ANALYST, pool.scope)}
        async with serving(run_settings, client, wanted, site=create_site, name="bench-console") as server:
            cookies = {name: await sign_in(server.url, secret) for name, secret in server.secrets.items()}
            console = _Target("console", server.url, cookies, expect=EXPECT)
            freeze_startup_heap()
            results = await _run([console, es_target(run_settings)], plan, warm, rate, progress, scenarios=SCENARIOS)
            progress(f"opening {renders} queue views in Chromium …")
            views = [call.path_for("console") for call in plan if call.scenario == "queue"][:renders]
            measured, problem = await _renders(server.url, server.secrets["analyst"], views)
    finally:
        await client.close()
    notes = [
        f"open loop at {rate:g} requests/s for {seconds:g}s per target, as bench api: load generator in its own"
        " process, the console (session cookie) and Elasticsearch (the pages' own searches, those of one page at"
        " once) interleaved, after a warm-up",
        f"mix: {', '.join(f'{name} {share:.0%}' for name, share in MIX)}; queue = the page of {PAGE_SIZE} alerts"
        " and its counts, rendered on the server; detail = the alert's page (alert, events, audit trail);"
        " new = the queue's polling request",
        f"render: Chromium ({CHROMIUM}) opening {len(measured)} queue views of the plan one after the other,"
        " signed in as the analyst, no other load; navigation timing of the browser itself",
    ]
    return ConsoleBenchResult(names.prefix, load, rate, seconds, results, measured, problem, notes)


async def console_plan(pool: _Pool, names: IndexNames, total: int, seed: int) -> list[Call]:
    """``total`` console requests in :data:`MIX`, each with the searches its page sends."""
    rnd = random.Random(seed)
    universe = Universe.build()
    plan: list[Call] = []
    for _ in range(total):
        scenario = rnd.choices(SCENARIOS, [share for _, share in MIX])[0]
        key = rnd.choice(("admin", "analyst"))
        scope: tuple[str, ...] | None = pool.scope if key == "analyst" else None
        if scenario == "detail":
            visible = [h for h in pool.hits if scope is None or h["_source"]["organization"]["id"] in scope]
            hit = rnd.choice(visible)
            searches = await _detail_searches(names, scope, hit)
            plan.append(Call("detail", "alert page", key, f"/console/alerts/{hit['_id']}", searches))
            continue
        label, params, where, sort = _filters(rnd, universe, pool, scope)
        if sort is not AlertSort.TIME:
            params["sort"] = sort.value  # the console names its filters as the API does
        if scenario == "new":
            params["after"] = (pool.newest - timedelta(minutes=rnd.randrange(1, 60))).isoformat()
            searches = await _new_searches(names, scope, where, params["after"])
            plan.append(
                Call("new", f"new {label}", key, f"/console/queue/new?{urlencode(params, doseq=True)}", searches)
            )
            continue
        searches = await _queue_searches(names, scope, where, sort)
        plan.append(Call("queue", f"queue {label}", key, f"/?{urlencode(params, doseq=True)}", searches, together=True))
    return plan


async def _queue_searches(
    names: IndexNames, scope: tuple[str, ...] | None, where: AlertFilter, sort: AlertSort
) -> tuple[EsRequest, ...]:
    """The queue page's two searches: a page of alerts, and the counts without the level and status filters."""
    recorder = _RecordingClient()
    store = _store(recorder, names)
    await store.search(where, scope, sort=sort, size=PAGE_SIZE, fields=SUMMARY_FIELDS)
    await store.stats(replace(where, level=(), status=()), scope, ["level", "status"], None)
    return tuple(recorder.searches)


async def _new_searches(
    names: IndexNames, scope: tuple[str, ...] | None, where: AlertFilter, after: str
) -> tuple[EsRequest, ...]:
    """The polling request's one search: how many alerts of the view secmon raised after ``after``."""
    recorder = _RecordingClient()
    created_after = datetime.fromisoformat(after)
    await _store(recorder, names).search(
        replace(where, created_after=created_after), scope, size=1, fields=("alert.id",)
    )
    return tuple(recorder.searches)


async def _detail_searches(
    names: IndexNames, scope: tuple[str, ...] | None, hit: dict[str, Any]
) -> tuple[EsRequest, ...]:
    """An alert page's searches: the alert, its events, its audit trail."""
    recorder = _RecordingClient(hit)
    store = _store(recorder, names)
    alert = await store.get(hit["_id"], scope)
    await store.events(alert, scope)
    await store.audit.trail("alert", hit["_id"], scope)
    return tuple(recorder.searches)


def _store(recorder: _RecordingClient, names: IndexNames) -> AlertStore:
    """An AlertStore whose searches ``recorder`` keeps."""
    client: Any = recorder
    return AlertStore(client, names, AuditLog(client, names))


async def sign_in(url: str, secret: str) -> dict[str, str]:
    """The session cookie header a browser gets for ``secret`` from the sign-in form."""
    async with httpx.AsyncClient(base_url=url) as client:
        answer = await client.post("/console/login", data={"api_key": secret, "next": "/"})
    token = answer.cookies.get(COOKIE)
    if answer.status_code != 303 or not token:
        raise RuntimeError(f"signing in to the console answered {answer.status_code}: {answer.text[:200]}")
    return {"Cookie": f"{COOKIE}={token}"}


async def _renders(url: str, secret: str, views: Sequence[str]) -> tuple[list[Render], str | None]:
    """Each queue view of ``views`` opened in Chromium, signed in with ``secret``; or why it cannot be."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        return [], "Playwright is not installed (pip install 'secmon[dev]')"
    if not _has_chromium():
        return [], f"no Chromium at {CHROMIUM} (apt install chromium, or set SECMON_CHROMIUM)"
    flags = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    renders: list[Render] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
        try:
            page = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
            await page.goto(f"{url}/console/login")
            await page.fill("#api_key", secret)
            await page.click("button[type=submit]")
            await page.wait_for_selector("#queue")
            for view in views:
                await page.goto(f"{url}{view}", wait_until="load")
                timing = await page.evaluate(
                    """() => {
                        const nav = performance.getEntriesByType('navigation')[0];
                        const paint = performance.getEntriesByName('first-contentful-paint')[0];
                        return {loaded: nav.loadEventEnd, paint: paint ? paint.startTime : nav.loadEventEnd,
                                queue: document.getElementById('queue') !== null};
                    }"""
                )
                if not timing["queue"]:
                    return renders, f"{view} did not show the queue"
                renders.append(Render(view, float(timing["paint"]), float(timing["loaded"])))
        finally:
            await browser.close()
    return renders, None


def _has_chromium() -> bool:
    return Path(CHROMIUM).exists()

"""``secmon bench api``: latency of the alert endpoints over a large alerts index, beside raw Elasticsearch.

**Data.** ``alerts`` synthetic alerts (default 1,000,000) shaped like the detection engine's
(:class:`~secmon.detection.alerts.AlertBuilder`): 20 agencies, 2,000 hosts, 5,000 users, 300
rules with levels from informational to critical and ATT&CK techniques, mostly open alerts and
some acknowledged or closed with a resolution, first seen over 30 days, grouped counts. Each
alert names one to three of ``alerts / 10`` stored events, so the detail endpoint fetches real
events as it does in service. They live under their own prefix, ``<index_prefix>-benchapi``,
with secmon's own templates and mappings, so a user's data is never touched. A run reuses them
when that index already holds exactly ``alerts`` alerts of the current shape (each with the
``event.created`` the console's "new alerts" count reads); ``reload`` deletes and loads them again.

**Load.** Documents are plain dicts serialized with orjson into NDJSON bulk requests, several
in flight, with refreshes off while loading; then one refresh and a wait until Elasticsearch's
own merges settle. No force-merge to one segment: secmon never does that to its live alerts
index, and a single segment would flatter both contenders; the segment count is reported.

**Load generator.** Open loop: request *n* is due at ``start + n / rate`` whatever happened to
the earlier ones, and its latency is counted from that moment, so a server falling behind shows
as queueing instead of a slower request rate. The generator runs in a **separate process**: the
API server (uvicorn) runs on this process's event loop, and an HTTP client sharing that loop
and its one core would add its own parsing and scheduling to every measured request. Both
contenders are driven by the same client (httpx, keep-alive connections) with the same plan.

**Peer.** The same requests straight to Elasticsearch's ``_search``, with the exact bodies
secmon's :class:`~secmon.triage.store.AlertStore` builds for each API request (captured by
running the store against a recording client), scope filter included; a detail is the same two
searches the API makes (the alert, then its events), one after the other. The ratio of the p99s
is the API's overhead: HTTP and auth, validation, the Elasticsearch client, response shaping.

**Order and caches.** Unmeasured warm-up first: a different plan to both, then the measured plan
itself to Elasticsearch at four times the rate, so every exact query has been run once before
either contender is measured (Elasticsearch's request cache keeps ``size: 0`` answers such as
the stats). Then both are measured at once, interleaved: each call of the plan goes to the API
and, half a period later, to Elasticsearch, so that merges, GC pauses and noisy neighbours fall
on both alike (measured one after the other, the same contender differed by 2x between runs).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import multiprocessing
import random
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from elasticsearch import AsyncElasticsearch
from starlette.types import ASGIApp

from secmon.api import ApiServices, create_app
from secmon.api.schemas import SUMMARY_FIELDS
from secmon.auth import ApiKey, KeyStore, Role
from secmon.bench.stats import percentile
from secmon.config import ElasticsearchSettings, Settings
from secmon.detection.alerts import LEVELS, severity
from secmon.errors import StoreError
from secmon.serving import AsgiServer, freeze_startup_heap
from secmon.store import IndexNames, connect, document_id, install_templates, read_when_ready
from secmon.store.client import cluster_url
from secmon.timestamps import epoch_to_iso_millis
from secmon.triage.audit import AuditLog
from secmon.triage.query import AlertFilter, AlertSort
from secmon.triage.store import AlertStore

BENCH_SUFFIX = "benchapi"
AGENCIES = 20
HOSTS = 2_000
USERS = 5_000
RULES = 300
DAYS = 30
EVENTS_DATASET = "windows.sysmon"
ANALYST_AGENCIES = 3  # the analyst key's scope: this many agencies
DETAIL_POOL = 2_000  # existing alerts the detail requests pick from
CREATED_DELAY = 2.0  # seconds from an alert's first event to secmon raising it (event.created)
BULK_DOCS = 2_000  # documents per bulk request while loading
BULK_IN_FLIGHT = 3
WARMUP_SECONDS = 5.0
MIX = (("list", 0.6), ("detail", 0.3), ("stats", 0.1))  # share of the requests per scenario
TARGETS = ("api", "elasticsearch")
SCENARIOS = tuple(name for name, _ in MIX)

_LEVEL_WEIGHTS = (10, 25, 35, 22, 8)  # informational … critical, in percent of the rules
_TECHNIQUES = (
    ("execution", ("T1059.001", "T1059.003", "T1047", "T1053.005", "T1569.002", "T1204.002")),
    ("persistence", ("T1547.001", "T1543.003", "T1136.001", "T1053.005", "T1505.003")),
    ("privilege_escalation", ("T1548.002", "T1055", "T1068", "T1134.001")),
    ("defense_evasion", ("T1562.001", "T1070.001", "T1218.011", "T1027", "T1112", "T1036.005")),
    ("credential_access", ("T1003.001", "T1110.001", "T1558.003", "T1552.001", "T1555.003")),
    ("discovery", ("T1033", "T1087.002", "T1082", "T1018", "T1069.002", "T1016")),
    ("lateral_movement", ("T1021.001", "T1021.002", "T1021.006", "T1570")),
    ("command_and_control", ("T1071.001", "T1105", "T1572", "T1090")),
    ("exfiltration", ("T1048.003", "T1041", "T1567.002")),
    ("impact", ("T1486", "T1490", "T1489")),
)
_SUBJECTS = (
    "PowerShell",
    "Rundll32",
    "Regsvr32",
    "Mshta",
    "WMI",
    "Certutil",
    "Bitsadmin",
    "Scheduled Task",
    "Service",
    "LSASS",
    "SAM Hive",
    "Registry Run Key",
    "Office Macro",
    "PsExec",
    "RDP",
    "SMB Share",
    "Kerberos",
    "Net.exe",
    "Whoami",
    "Vssadmin",
    "Wevtutil",
    "Msiexec",
    "Cmd.exe",
    "WScript",
)
_ACTIONS = (
    "Suspicious",
    "Encoded Command Via",
    "Download Cradle Via",
    "Remote Execution Via",
    "Dump Via",
    "Tampering With",
    "Unusual Parent Of",
    "Persistence Via",
    "Discovery Via",
    "Defense Evasion Via",
)
_WORDS = (
    "attacker",
    "adversary",
    "payload",
    "download",
    "encoded",
    "credential",
    "lateral",
    "ransomware",
    "beacon",
    "loader",
    "obfuscated",
    "privilege",
    "token",
    "registry",
    "service",
    "shadow",
    "backup",
)
_STATUSES = (("open", 80), ("acknowledged", 12), ("closed", 8))
_RESOLUTIONS = ("true_positive", "false_positive", "benign")


@dataclass(frozen=True, slots=True)
class EsRequest:
    """One ``_search`` as the AlertStore sends it: index, URL parameters and body."""

    index: str
    params: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Call:
    """One planned request: to the API (``path``, as ``key``), or to Elasticsearch (``es``, in order).

    ``paths`` names what other HTTP targets ask for the same data (the console's page for the
    API's list, say); ``together`` sends the searches at once, as a handler that gathers them does.
    """

    scenario: str
    label: str  # what it asks, for the report
    key: str  # "admin" or "analyst"
    path: str
    es: tuple[EsRequest, ...]
    paths: tuple[tuple[str, str], ...] = ()  # (target name, path) where it is not ``path``
    together: bool = False

    def path_for(self, target: str) -> str:
        """What HTTP target ``target`` is asked."""
        return dict(self.paths).get(target, self.path)


@dataclass(slots=True)
class ScenarioResult:
    """One scenario against one target."""

    target: str
    scenario: str
    requests: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds from due time to answer, answered only
    errors: dict[str, int] = field(default_factory=dict)  # status code or exception name → count

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)

    @property
    def max(self) -> float:
        return max(self.latencies, default=float("nan"))


@dataclass(frozen=True, slots=True)
class LoadReport:
    alerts: int
    events: int
    reused: bool
    seconds: float  # loading, refresh and merges; 0 when reused
    segments: int
    store_bytes: int


@dataclass(frozen=True, slots=True)
class ApiBenchResult:
    prefix: str
    load: LoadReport
    rate: float
    seconds: float
    results: list[ScenarioResult]  # every (target, scenario)
    notes: list[str]

    def result(self, target: str, scenario: str) -> ScenarioResult:
        return next(r for r in self.results if (r.target, r.scenario) == (target, scenario))

    def p99_ratio(self, scenario: str) -> float:
        """p99 of the API over p99 of Elasticsearch for ``scenario``."""
        return self.result("api", scenario).percentile(99) / self.result("elasticsearch", scenario).percentile(99)


# --- data ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    id: str
    title: str
    level: str
    description: str
    tags: tuple[str, ...]
    techniques: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Universe:
    """The agencies, hosts, users and rules every alert is drawn from (the same for a given seed)."""

    agencies: tuple[str, ...]
    hosts: tuple[tuple[str, ...], ...]  # per agency
    users: tuple[tuple[str, ...], ...]  # per agency
    rules: tuple[_Rule, ...]
    rule_weights: tuple[float, ...]  # cumulative: a few noisy rules raise most alerts

    @classmethod
    def build(cls, seed: int = 7) -> Universe:
        rnd = random.Random(seed)
        agencies = tuple(f"agency-{n:02d}" for n in range(AGENCIES))
        hosts = tuple(
            tuple(f"{('ws', 'srv', 'dc', 'lt')[h % 4]}-{a:02d}-{h:04d}" for h in range(a, HOSTS, AGENCIES))
            for a in range(AGENCIES)
        )
        users = tuple(tuple(f"user{u:04d}" for u in range(a, USERS, AGENCIES)) for a in range(AGENCIES))
        rules = []
        for n in range(RULES):
            tactic, techniques = _TECHNIQUES[n % len(_TECHNIQUES)]
            chosen = tuple(sorted(set(rnd.sample(techniques, rnd.choice((1, 1, 2))))))
            title = f"{rnd.choice(_ACTIONS)} {rnd.choice(_SUBJECTS)} {n:03d}"
            words = " ".join(rnd.sample(_WORDS, 6))
            rules.append(
                _Rule(
                    id=f"00000000-0000-4000-8000-{n:012d}",
                    title=title,
                    level=rnd.choices(LEVELS, _LEVEL_WEIGHTS)[0],
                    description=f"Detects {title.lower()}, as used by an {words}.",
                    tags=(f"attack.{tactic}", *(f"attack.{t.lower()}" for t in chosen)),
                    techniques=chosen,
                )
            )
        weights = [1 / (rank + 1) ** 0.8 for rank in range(RULES)]
        cumulative = []
        total = 0.0
        for weight in weights:
            total += weight
            cumulative.append(total)
        return cls(agencies, hosts, users, tuple(rules), tuple(cumulative))


def event_id(n: int) -> str:
    return f"benchapi-evt-{n:08d}"


def alerted_events(universe: Universe, count: int, end: datetime, index: str) -> Iterator[bytes]:
    """NDJSON create actions of the ``count`` events the alerts name; event ``n`` belongs to agency ``n % AGENCIES``.

    Not :func:`secmon.bench.events.synthetic_events`: these are drawn from the alerts' universe
    (its agencies, hosts and users), so that an alert's detail finds its events in its agency.
    """
    rnd = random.Random(11)
    start = end.timestamp() - DAYS * 86_400
    for n in range(count):
        agency = n % AGENCIES
        host = rnd.choice(universe.hosts[agency])
        user = rnd.choice(universe.users[agency])
        at = datetime.fromtimestamp(start + rnd.random() * DAYS * 86_400, UTC)
        source = {
            "@timestamp": at.isoformat(timespec="milliseconds"),
            "event": {"dataset": EVENTS_DATASET, "code": "1", "kind": "event"},
            "host": {"name": host},
            "user": {"name": user},
            "organization": {"id": universe.agencies[agency]},
            "process": {
                "executable": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                "command_line": f"powershell.exe -nop -w hidden -enc {secrets.token_hex(12)}",
                "pid": rnd.randrange(100, 60_000),
            },
        }
        yield orjson.dumps({"create": {"_index": index, "_id": event_id(n)}})
        yield orjson.dumps(source)


def synthetic_alerts(universe: Universe, count: int, events: int, end: datetime, index: str) -> Iterator[bytes]:
    """NDJSON create actions of ``count`` alerts, shaped as the detection engine's AlertBuilder makes them."""
    rnd = random.Random(13)
    start = end.timestamp() - DAYS * 86_400
    events_index = IndexNames(index.removesuffix("-alerts")).events(EVENTS_DATASET)
    per_agency = max(1, events // AGENCIES)
    statuses = [s for s, _ in _STATUSES]
    status_weights = [w for _, w in _STATUSES]
    for _ in range(count):
        rule = universe.rules[rnd.choices(range(RULES), cum_weights=universe.rule_weights)[0]]
        a = rnd.randrange(AGENCIES)
        agency, host, user = universe.agencies[a], rnd.choice(universe.hosts[a]), rnd.choice(universe.users[a])
        first = start + rnd.random() * DAYS * 86_400
        count_ = 1 if rnd.random() < 0.7 else min(500, int(rnd.expovariate(1 / 20)) + 2)
        last = first + (0 if count_ == 1 else rnd.random() * 3600)
        ids = [event_id(a + AGENCIES * rnd.randrange(per_agency)) for _ in range(min(count_, rnd.randint(1, 3)))]
        alert_id = document_id("alert", rule.id, agency, host, user, ids[0], repr(first))
        status = rnd.choices(statuses, status_weights)[0]
        notes: list[dict[str, str]] = []
        alert: dict[str, Any] = {
            "id": alert_id,
            "status": status,
            "count": count_,
            "first_seen": epoch_to_iso_millis(first),
            "last_seen": epoch_to_iso_millis(last),
            "group_key": f"{rule.id}|{agency}|{host}|{user}",
        }
        if status != "open":
            analyst = f"analyst{rnd.randrange(40):02d}"
            updated = epoch_to_iso_millis(last + rnd.random() * 86_400)
            alert.update(assignee=analyst, updated=updated, updated_by=analyst)
            if status == "closed":
                alert.update(resolution=rnd.choice(_RESOLUTIONS), closed=updated)
                notes = [{"at": updated, "by": analyst, "text": f"Checked with the {rnd.choice(_WORDS)} team."}]
        source = {
            "@timestamp": epoch_to_iso_millis(first),
            "message": rule.title,
            "alert": alert,
            **({"notes": notes} if notes else {}),
            "rule": {
                "id": rule.id,
                "name": rule.title.lower().replace(" ", "_"),
                "title": rule.title,
                "level": rule.level,
                "description": rule.description,
                "author": "secmon bench",
                "tags": list(rule.tags),
                "references": [f"https://attack.mitre.org/techniques/{rule.techniques[0].replace('.', '/')}/"],
                "type": "sigma",
            },
            "tags": list(rule.tags),
            "event": {
                "kind": "alert",
                # When secmon raised it, as AlertBuilder stamps it: a moment after the first event.
                # Not drawn from rnd, so that every other field stays what earlier runs loaded.
                "created": epoch_to_iso_millis(first + CREATED_DELAY),
                "severity": severity(rule.level),
                "ids": ids,
                "indices": [events_index],
                "dataset": EVENTS_DATASET,
            },
            "threat": {"technique": {"id": list(rule.techniques)}},
            "host": {"name": host},
            "user": {"name": user, "domain": f"CORP{a:02d}"},
            "source": {"ip": f"10.{a}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"},
            "organization": {"id": agency, "name": f"Agency {a:02d}"},
        }
        yield orjson.dumps({"create": {"_index": index, "_id": alert_id}})
        yield orjson.dumps(source)


async def load_alerts(
    client: AsyncElasticsearch,
    settings: Settings,
    alerts: int,
    *,
    reload: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> LoadReport:
    """Make sure the bench prefix holds ``alerts`` alerts and their events (reused when it already does)."""
    es_settings = settings.elasticsearch
    names = IndexNames(es_settings.index_prefix)
    events_index = names.events(EVENTS_DATASET)
    events = max(AGENCIES, alerts // 10)
    if reload:
        await client.indices.delete(index=names.alerts, ignore_unavailable=True)
    await install_templates(client, es_settings)
    stored = await _count(client, names.alerts)
    stored_events = await _count(client, events_index)
    # Alerts loaded before they carried event.created are loaded again, once.
    current = stored == alerts and await _count(client, names.alerts, {"exists": {"field": "event.created"}}) == alerts
    if current and stored_events >= events:
        return LoadReport(alerts, stored_events, True, 0.0, *await _segments(client, names.alerts))
    started = time.perf_counter()
    if stored:
        await client.indices.delete(index=names.alerts)
        await install_templates(client, es_settings)
    universe = Universe.build()
    end = datetime.now(UTC).replace(microsecond=0)
    refresh = await _refresh_interval(client, names.alerts)
    await client.indices.put_settings(index=names.alerts, settings={"index": {"refresh_interval": "-1"}})
    try:
        if stored_events < events:
            # Events go to a data stream, which this node cannot delete: ids are deterministic, so
            # the ones already stored are refused as duplicates (409) and the rest are added.
            await _bulk_load(client, alerted_events(universe, events, end, events_index), events, "events", progress)
        await _bulk_load(
            client, synthetic_alerts(universe, alerts, events, end, names.alerts), alerts, "alerts", progress
        )
    finally:
        await client.indices.put_settings(index=names.alerts, settings={"index": {"refresh_interval": refresh}})
    progress("refreshing and waiting for merges …")
    await client.indices.refresh(index=f"{names.alerts},{events_index}")
    await _settle(client, names.alerts)
    return LoadReport(
        await _count(client, names.alerts),
        await _count(client, events_index),
        False,
        time.perf_counter() - started,
        *await _segments(client, names.alerts),
    )


async def _bulk_load(
    client: AsyncElasticsearch, lines: Iterator[bytes], total: int, what: str, progress: Callable[[str], None]
) -> None:
    slots = asyncio.Semaphore(BULK_IN_FLIGHT)
    failures: list[str] = []
    done = 0
    started = time.perf_counter()

    async def send(body: bytes, docs: int) -> None:
        nonlocal done
        try:
            # Pre-encoded NDJSON: the client sends bytes as they are (its types say only lists).
            response = await client.bulk(
                operations=body,  # type: ignore[arg-type]
                filter_path="errors,items.*.error,items.*.status",
            )
            if response.get("errors"):
                for item in response.get("items", []):
                    result = next(iter(item.values()))
                    # Items stored (201) come back too; 409: stored by an earlier run.
                    if result.get("error") is not None and result.get("status") != 409:
                        failures.append(str(result["error"]))
            done += docs
            if done % 100_000 < docs or done == total:
                rate = done / (time.perf_counter() - started)
                progress(f"{what}: {done:,} of {total:,} stored ({rate:,.0f}/s)")
        finally:
            slots.release()

    tasks: list[asyncio.Task[None]] = []
    chunk: list[bytes] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) == 2 * BULK_DOCS:
            await slots.acquire()
            if any(t.done() and t.exception() for t in tasks):
                break  # a request failed: stop generating, gather raises it
            tasks.append(asyncio.create_task(send(b"\n".join(chunk) + b"\n", BULK_DOCS)))
            chunk = []
    else:
        if chunk:
            await slots.acquire()
            tasks.append(asyncio.create_task(send(b"\n".join(chunk) + b"\n", len(chunk) // 2)))
    await asyncio.gather(*tasks)
    if failures:
        raise RuntimeError(f"{len(failures):,} {what} were refused; the first: {failures[0]}")


async def _count(client: AsyncElasticsearch, index: str, query: dict[str, Any] | None = None) -> int:
    if not await client.indices.exists(index=index):
        return 0
    # An earlier run's index may still be starting its shard (a cluster that has just restarted).
    response = await read_when_ready(client, lambda: client.count(index=index, query=query))
    return int(response["count"])


async def _refresh_interval(client: AsyncElasticsearch, index: str) -> str:
    response = await client.indices.get_settings(index=index, name="index.refresh_interval", flat_settings=True)
    value = next(iter(response.body.values()))["settings"].get("index.refresh_interval")
    return str(value or "1s")


async def _settle(client: AsyncElasticsearch, index: str, timeout: float = 300.0) -> None:
    """Wait until no merge runs on ``index``: a merge under way would load the node being measured."""
    deadline = time.monotonic() + timeout
    await client.indices.flush(index=index)
    while time.monotonic() < deadline:
        stats = await client.indices.stats(index=index, metric="merge")
        if not stats["_all"]["primaries"]["merges"]["current"]:
            return
        await asyncio.sleep(1.0)


async def _segments(client: AsyncElasticsearch, index: str) -> tuple[int, int]:
    stats = await client.indices.stats(index=index, metric="segments,store")
    primaries = stats["_all"]["primaries"]
    return int(primaries["segments"]["count"]), int(primaries["store"]["size_in_bytes"])


# --- the plan --------------------------------------------------------------------------------------------------


class _RecordingClient:
    """Stands in for Elasticsearch under an AlertStore: keeps each search it is sent, answers ``hit``."""

    def __init__(self, hit: dict[str, Any] | None = None) -> None:
        self.hit = hit
        self.searches: list[EsRequest] = []

    async def search(self, *, index: str, **body: Any) -> dict[str, Any]:
        params: dict[str, str] = {}
        for name in ("ignore_unavailable", "allow_no_indices"):  # URL parameters, not body fields
            if name in body:
                params[name] = str(body.pop(name)).lower()
        self.searches.append(EsRequest(index, params, orjson.dumps(body)))
        hits = [self.hit] if self.hit is not None and not self.searches[1:] else []
        aggregations: dict[str, Any] = {name: {"buckets": []} for name in body.get("aggs", {})}
        return {"hits": {"hits": hits, "total": {"value": len(hits), "relation": "eq"}}, "aggregations": aggregations}


@dataclass(frozen=True, slots=True)
class _Pool:
    """What requests are drawn from: alerts that exist, with what the detail endpoint reads of them."""

    hits: list[dict[str, Any]]
    newest: datetime
    scope: tuple[str, ...]  # the analyst key's agencies


async def _pool(client: AsyncElasticsearch, names: IndexNames) -> _Pool:
    response = await client.search(
        index=names.alerts,
        query={"function_score": {"query": {"match_all": {}}, "random_score": {"seed": 42, "field": "_seq_no"}}},
        size=DETAIL_POOL,
        source_includes=["alert.id", "organization.id", "event.ids", "event.indices"],
        aggs={"newest": {"max": {"field": "@timestamp"}}},
    )
    newest = response["aggregations"]["newest"]["value_as_string"]
    universe = Universe.build()
    return _Pool(
        list(response["hits"]["hits"]),
        datetime.fromisoformat(newest.replace("Z", "+00:00")),
        universe.agencies[:ANALYST_AGENCIES],
    )


async def _searches(
    scenario: str,
    names: IndexNames,
    scope: tuple[str, ...] | None,
    *,
    where: AlertFilter | None = None,
    sort: AlertSort = AlertSort.TIME,
    hit: dict[str, Any] | None = None,
) -> tuple[EsRequest, ...]:
    """The searches an AlertStore sends for one API request of ``scenario``, captured by a recording client."""
    recorder = _RecordingClient(hit)
    client: Any = recorder
    store = AlertStore(client, names, AuditLog(client, names))
    if scenario == "detail":
        assert hit is not None
        alert = await store.get(hit["_id"], scope)
        await store.events(alert, scope)
    elif scenario == "stats":
        await store.stats(where or AlertFilter(), scope, ["level", "status", "rule", "agency"], "1h")
    else:
        await store.search(where or AlertFilter(), scope, sort=sort, fields=SUMMARY_FIELDS)  # as GET /alerts does
    return tuple(recorder.searches)


async def build_plan(pool: _Pool, names: IndexNames, total: int, seed: int) -> list[Call]:
    """``total`` requests in a random mix of scenarios, each with the searches the AlertStore makes for it."""
    rnd = random.Random(seed)
    universe = Universe.build()
    scenarios = [name for name, _ in MIX]
    weights = [share for _, share in MIX]
    plan: list[Call] = []
    for _ in range(total):
        scenario = rnd.choices(scenarios, weights)[0]
        key = rnd.choice(("admin", "analyst"))
        scope: tuple[str, ...] | None = pool.scope if key == "analyst" else None
        if scenario == "detail":
            visible = [h for h in pool.hits if scope is None or h["_source"]["organization"]["id"] in scope]
            hit = rnd.choice(visible)
            searches = await _searches("detail", names, scope, hit=hit)
            plan.append(Call("detail", "GET /alerts/{id}", key, f"/alerts/{hit['_id']}", searches))
            continue
        label, params, where, sort = _filters(rnd, universe, pool, scope)
        if scenario == "stats":
            path = f"/alerts/stats?{urlencode(params, doseq=True)}"
            plan.append(Call("stats", f"stats {label}", key, path, await _searches("stats", names, scope, where=where)))
            continue
        if sort is not AlertSort.TIME:
            params["sort"] = sort.value
        searches = await _searches("list", names, scope, where=where, sort=sort)
        plan.append(Call("list", f"list {label}", key, f"/alerts?{urlencode(params, doseq=True)}", searches))
    return plan


def _filters(
    rnd: random.Random, universe: Universe, pool: _Pool, scope: tuple[str, ...] | None
) -> tuple[str, dict[str, Any], AlertFilter, AlertSort]:
    """A filter an analyst would use: its label, the API's query parameters, and the AlertFilter they make."""
    agencies = scope or universe.agencies
    a = universe.agencies.index(rnd.choice(agencies))
    choice = rnd.randrange(7)
    sort = AlertSort.TIME
    if choice == 0:
        label, params = "status=open&level=high", {"status": "open", "level": "high"}
        where = AlertFilter(status=["open"], level=["high"])
    elif choice == 1:
        since = pool.newest - timedelta(days=7)
        label, params = "agency, last 7 days", {"agency": universe.agencies[a], "since": since.isoformat()}
        where = AlertFilter(agency=[universe.agencies[a]], since=since)
    elif choice == 2:
        host = rnd.choice(universe.hosts[a])
        label, params, where = "host", {"host": host}, AlertFilter(host=[host])
    elif choice == 3:
        rule = rnd.choice(universe.rules).id
        label, params, where = "rule", {"rule": rule}, AlertFilter(rule=[rule])
    elif choice == 4:
        text = rnd.choice((*_WORDS, *(s.lower() for s in _SUBJECTS)))
        label, params, where = "q=free text", {"q": text}, AlertFilter(text=text)
    elif choice == 5:
        technique = rnd.choice(rnd.choice(_TECHNIQUES)[1])
        label, params, where = "technique", {"technique": technique}, AlertFilter(technique=[technique])
    else:
        label, params = "status=open by severity", {"status": "open"}
        where, sort = AlertFilter(status=["open"]), AlertSort.SEVERITY
    return label, params, where, sort


# --- driving ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    """Where calls go: Elasticsearch (named so) gets their searches; any other name, their HTTP path for it."""

    name: str
    base_url: str
    headers: dict[str, dict[str, str]]  # per key name ("admin", "analyst"): a bearer key or a session cookie
    auth: dict[str, str] = field(default_factory=dict)  # headers of every request
    verify: str = "True"  # TLS: "True", "False" or a CA file
    # Per scenario, what every answer's body must contain (say, the queue's rows): a fast answer
    # that is not the page claimed (a sign-in form, an empty table) counts as an error.
    expect: dict[str, bytes] = field(default_factory=dict)


UNEXPECTED = "unexpected answer"  # the error of an answer without its target's ``expect`` marker


def es_target(settings: Settings) -> _Target:
    """The peer: the cluster of ``settings`` itself, which must take requests without credentials."""
    if settings.elasticsearch.api_key or settings.elasticsearch.username:
        raise NotImplementedError("the Elasticsearch peer sends no credentials: use an unsecured test node")
    return _Target("elasticsearch", cluster_url(settings.elasticsearch), {})


def _es_auth(es: ElasticsearchSettings) -> dict[str, str]:
    """The headers that authenticate to the cluster as secmon does (API key, else basic auth)."""
    if es.api_key:
        return {"Authorization": f"ApiKey {es.api_key}"}
    if es.username:
        token = base64.b64encode(f"{es.username}:{es.password or ''}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


Outcome = tuple[str, float | None, str | None]  # scenario, latency (None when it failed), error


def drive(targets: list[_Target], plan: Sequence[Call], rate: float) -> list[list[Outcome]]:
    """Send ``plan`` open-loop at ``rate``/s to each target (run in its own process), interleaved.

    Call n goes to target k at ``n / rate + k / (rate * len(targets))``: every target sees the
    same queries at the same rate in the same seconds, so a merge, a GC pause or a noisy
    neighbour hits them alike. Per target, per call: scenario, latency, error.
    """
    return asyncio.run(_drive(targets, plan, rate))


async def _drive(targets: list[_Target], plan: Sequence[Call], rate: float) -> list[list[Outcome]]:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    results: list[list[Outcome]] = [[("", None, None)] * len(plan) for _ in targets]
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for target in targets:
            verify: bool | str = {"True": True, "False": False}.get(target.verify, target.verify)
            client = httpx.AsyncClient(
                base_url=target.base_url, headers=target.auth, limits=limits, timeout=30.0, verify=verify
            )
            clients.append(await stack.enter_async_context(client))

        async def search(client: httpx.AsyncClient, request: EsRequest) -> None:
            response = await client.post(
                f"/{request.index}/_search",
                params=request.params,
                content=request.body,
                headers={"content-type": "application/json"},
            )
            response.raise_for_status()

        async def one(k: int, n: int, call: Call, due: float) -> None:
            target, client = targets[k], clients[k]
            expected = True
            try:
                if target.name != "elasticsearch":
                    response = await client.get(call.path_for(target.name), headers=target.headers[call.key])
                    response.raise_for_status()
                    marker = target.expect.get(call.scenario)
                    expected = marker is None or marker in response.content
                elif call.together:
                    await asyncio.gather(*(search(client, request) for request in call.es))
                else:
                    for request in call.es:
                        await search(client, request)
            except httpx.HTTPStatusError as exc:
                results[k][n] = (call.scenario, None, str(exc.response.status_code))
            except httpx.HTTPError as exc:
                results[k][n] = (call.scenario, None, type(exc).__name__)
            else:
                latency = time.perf_counter() - due
                results[k][n] = (call.scenario, latency, None) if expected else (call.scenario, None, UNEXPECTED)

        tasks = []
        start = time.perf_counter() + 0.05
        slots = [(n / rate + k / (rate * len(targets)), k, n) for n in range(len(plan)) for k in range(len(targets))]
        for offset, k, n in sorted(slots):
            due = start + offset
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(k, n, plan[n], due)))
        await asyncio.gather(*tasks)
    return results


# --- the benchmark ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BenchServer:
    """The server under test, started over the bench prefix, and the keys made for this run by name."""

    url: str
    keys: dict[str, ApiKey]
    secrets: dict[str, str]

    def bearer(self) -> dict[str, dict[str, str]]:
        """The Authorization header of each key, by name: how the API is asked."""
        return {name: {"Authorization": f"Bearer {secret}"} for name, secret in self.secrets.items()}


@contextlib.asynccontextmanager
async def serving(
    settings: Settings,
    client: AsyncElasticsearch,
    wanted: Mapping[str, tuple[Role, tuple[str, ...]]],
    *,
    site: Callable[[ApiServices], ASGIApp] = create_app,
    name: str = "bench-api",
) -> AsyncIterator[BenchServer]:
    """``site`` over ``settings``' prefix on a free port, with a key per name of ``wanted`` (role, agencies).

    The keys are named ``<name>-<key name>`` and revoked when the server stops.
    """
    keys = KeyStore(client, IndexNames(settings.elasticsearch.index_prefix))
    await keys.ensure_index()
    services = ApiServices.build(settings, client, keys)
    await services.prepare()
    made = {
        key_name: await keys.create(role, agencies=agencies, name=f"{name}-{key_name}")
        for key_name, (role, agencies) in wanted.items()
    }
    server = AsgiServer(site(services), "127.0.0.1:0", name=name)
    await server.start()
    try:
        yield BenchServer(
            server.url,
            {key_name: key for key_name, (key, _) in made.items()},
            {key_name: secret for key_name, (_, secret) in made.items()},
        )
    finally:
        await server.stop()
        for key, _ in made.values():
            with contextlib.suppress(StoreError):  # a key left unrevoked is harmless here
                await keys.revoke(key.id)


def bench_settings(settings: Settings) -> Settings:
    """``settings`` with the bench's own index prefix."""
    prefix = f"{settings.elasticsearch.index_prefix}-{BENCH_SUFFIX}"
    es = settings.elasticsearch.model_copy(update={"index_prefix": prefix})
    return settings.model_copy(update={"elasticsearch": es})


async def bench_api(
    settings: Settings,
    alerts: int = 1_000_000,
    rate: float = 50.0,
    seconds: float = 30.0,
    *,
    reload: bool = False,
    warmup: float = WARMUP_SECONDS,
    progress: Callable[[str], None] = lambda _: None,
) -> ApiBenchResult:
    """Load (or reuse) ``alerts`` alerts, then time the alert endpoints and raw Elasticsearch at ``rate``/s."""
    run_settings = bench_settings(settings)
    names = IndexNames(run_settings.elasticsearch.index_prefix)
    client = connect(run_settings.elasticsearch, max_retries=0)
    try:
        load = await load_alerts(client, run_settings, alerts, reload=reload, progress=progress)
        pool = await _pool(client, names)
        total = max(len(MIX), int(rate * seconds))
        plan = await build_plan(pool, names, total, seed=1)
        warm = await build_plan(pool, names, max(len(MIX), int(rate * warmup)), seed=2) if warmup > 0 else []
        wanted = {"admin": (Role.ADMIN, ()), "analyst": (Role.ANALYST, pool.scope)}
        async with serving(run_settings, client, wanted) as server:
            targets = [_Target("api", server.url, server.bearer()), es_target(run_settings)]
            freeze_startup_heap()  # as secmon up and secmon api do once started
            results = await _run(targets, plan, warm, rate, progress)
    finally:
        await client.close()
    notes = [
        f"open loop at {rate:g} requests/s for {seconds:g}s per target, latency from each request's due time;"
        " load generator in its own process (httpx, keep-alive); the API and Elasticsearch get the same plan,"
        " interleaved (each call to one, half a period later to the other), after a warm-up that ran every"
        " query of the plan once",
        f"mix: {', '.join(f'{name} {share:.0%}' for name, share in MIX)}; half the requests with an analyst key"
        f" scoped to {len(pool.scope)} agencies, half with an admin key",
        "detail = the alert, then its events: the API's two searches, sent one after the other to Elasticsearch",
    ]
    return ApiBenchResult(names.prefix, load, rate, seconds, results, notes)


async def _run(
    targets: list[_Target],
    plan: list[Call],
    warm: list[Call],
    rate: float,
    progress: Callable[[str], None],
    *,
    scenarios: Sequence[str] = SCENARIOS,
) -> list[ScenarioResult]:
    """The warm-up, then ``plan`` to every target at once, interleaved: each target's result per scenario."""
    loop = asyncio.get_running_loop()
    results: list[ScenarioResult] = []
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        progress("warming up …")
        if warm:
            await loop.run_in_executor(pool, drive, targets, warm, rate)
        peer = [target for target in targets if target.name == "elasticsearch"]
        await loop.run_in_executor(pool, drive, peer, plan, 4 * rate)  # every exact query seen once by both
        progress(f"measuring {' and '.join(target.name for target in targets)}, interleaved …")
        outcomes = await loop.run_in_executor(pool, drive, targets, plan, rate)
        for target, target_outcomes in zip(targets, outcomes, strict=True):
            by_scenario = {name: ScenarioResult(target.name, name) for name in scenarios}
            for scenario, latency, error in target_outcomes:
                result = by_scenario[scenario]
                result.requests += 1
                if latency is not None:
                    result.latencies.append(latency)
                if error is not None:
                    result.errors[error] = result.errors.get(error, 0) + 1
            results.extend(by_scenario.values())
    return results

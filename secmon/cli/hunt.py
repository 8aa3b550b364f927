"""``secmon hunt``: the streaming matcher over events already stored in Elasticsearch (a new rule over history)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from secmon.cli.context import ensure_cluster, load
from secmon.config import SHIPPED_RULES_DIR, Settings, default_cache_dir, parse_duration
from secmon.events import get_field


def hunt(
    ctx: typer.Context,
    rules: Annotated[
        list[Path] | None,
        typer.Option("--rules", "-r", help="Sigma rule folders or files (repeatable); default: rules/.", exists=True),
    ] = None,
    since: Annotated[str, typer.Option(help="How far back to look: 30m, 12h, 7d ...")] = "7d",
    agency: Annotated[str | None, typer.Option(help="Only events of this agency (organization.id).")] = None,
) -> None:
    """Match stored events of the last SINCE against Sigma rules; one JSON line per match, a summary on stderr."""
    from secmon.detection.detector import load_detector

    try:
        seconds = parse_duration(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    settings = load(ctx)
    ensure_cluster(settings)
    errors = Console(stderr=True)
    with errors.status("Loading rules …"):
        detector = load_detector(rules or [SHIPPED_RULES_DIR], cache_dir=default_cache_dir() / "rule-cache")
    errors.print(f"{len(detector.rules):,} rules, {len(detector.ruleset.correlations):,} correlations loaded")
    started = time.perf_counter()
    events, findings = asyncio.run(_hunt(settings, detector, seconds, agency))
    errors.print(f"{events:,} stored events, {findings:,} matches in {time.perf_counter() - started:.1f}s")


async def _hunt(settings: Settings, detector: Any, seconds: float, agency: str | None) -> tuple[int, int]:
    from elasticsearch.helpers import async_scan

    from secmon.store import IndexNames, connect, wait_for_primaries

    names = IndexNames(settings.elasticsearch.index_prefix)
    client = connect(settings.elasticsearch)
    filters: list[dict[str, Any]] = [{"range": {"@timestamp": {"gte": f"now-{int(seconds)}s"}}}]
    if agency:
        filters.append({"term": {"organization.id": agency}})
    events = findings = 0
    out = sys.stdout.buffer
    try:
        # A scan fails on a data stream a running secmon created a moment ago, its shard not started yet.
        await wait_for_primaries(client, names.events_pattern)
        scan = async_scan(
            client,
            index=names.events_pattern,
            query={"query": {"bool": {"filter": filters}}, "sort": ["@timestamp"]},
            preserve_order=True,
            size=2000,
        )
        async for hit in scan:
            events += 1
            detection = detector.detect(hit["_source"], hit["_id"])
            for rule in detection.rules:
                findings += 1
                out.write(_line(rule.id, rule.title, rule.level, hit))
            for correlation in detection.correlations:
                findings += 1
                out.write(_line(correlation.rule.id, correlation.rule.title, correlation.rule.level, hit))
    finally:
        out.flush()
        await client.close()
    return events, findings


def _line(rule_id: str, title: str, level: str, hit: dict[str, Any]) -> bytes:
    source = hit["_source"]
    found = {
        "rule_id": rule_id,
        "title": title,
        "level": level,
        "timestamp": source.get("@timestamp"),
        "index": hit["_index"],
        "event_id": hit["_id"],
        "agency": (source.get("organization") or {}).get("id"),
    }
    # Where to find the event in its original log, as `secmon detect` reports it.
    record_id = get_field(source, "winlog.record_id")
    if record_id is not None:
        found["record_id"] = record_id
    if (path := get_field(source, "log.file.path")) is not None:
        found["file"] = path
    return orjson.dumps(found) + b"\n"

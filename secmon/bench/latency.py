"""``secmon bench latency``: from a syslog line entering secmon to its alert being searchable.

The service runs in this process (a TCP syslog source, detection with the shipped rules plus a
probe rule, the disk buffer, the writer) against the configured Elasticsearch. A sender writes
probe lines at a steady rate, each naming its own host (``lat-<n>``), and remembers when it
sent each one; a poller searches the alerts index every few milliseconds and records when each
probe's alert first shows up. Latency is the difference; the poll interval bounds its error.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from secmon.bench.runs import free_port
from secmon.bench.stats import percentile
from secmon.config import SHIPPED_RULES_DIR, Settings
from secmon.service import running_service
from secmon.store import IndexNames, connect

PROBE_RULE_ID = "8d6b1f0e-2a8c-4bd5-a0a4-5f3e4c2b1a90"
PROBE_RULE = f"""title: secmon latency probe
id: {PROBE_RULE_ID}
status: test
level: informational
logsource:
  product: linux
  service: syslog
detection:
  selection:
    message|contains: secmon-latency-probe
  condition: selection
"""
POLL_SECONDS = 0.02
MAX_POLLED = 100


@dataclass(frozen=True, slots=True)
class LatencyResult:
    sent: int
    seen: int
    rate: float
    latencies: list[float]  # seconds, one per alert seen

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)

    @property
    def median(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")


async def bench_latency(settings: Settings, rate: float, seconds: float) -> LatencyResult:
    """Send ``rate`` probe lines per second for ``seconds``; measure each one's time to a searchable alert."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="secmon-latency-") as work:
        rules = Path(work) / "rules"
        rules.mkdir()
        (rules / "probe.yml").write_text(PROBE_RULE)
        # One fixed prefix for every run: this distribution cannot delete the event data streams
        # a run leaves, so runs share them; the alerts index is emptied first.
        prefix = f"{settings.elasticsearch.index_prefix}-bench-latency"
        data = settings.model_dump()
        data["elasticsearch"]["index_prefix"] = prefix
        data["detection"] = {"rules": [SHIPPED_RULES_DIR, rules], "group_window": "0s"}
        data["sources"] = {"probe": {"type": "syslog", "mode": "tcp", "address": f"127.0.0.1:{port}"}}
        data["state_dir"] = Path(work) / "state"
        data["metrics"]["address"] = None
        data["api"]["enabled"] = False  # the user's own service may hold the API's port
        run_settings = Settings.model_validate(data)
        names = IndexNames(prefix)
        cleaner = connect(run_settings.elasticsearch, max_retries=0)
        try:
            await cleaner.indices.delete(index=names.alerts, ignore_unavailable=True)
        finally:
            await cleaner.close()
        async with running_service(run_settings):
            client = connect(run_settings.elasticsearch, max_retries=0)
            try:
                return await _measure(client, names, port, rate, seconds)
            finally:
                await client.close()


async def _measure(client: object, names: IndexNames, port: int, rate: float, seconds: float) -> LatencyResult:
    from elasticsearch import AsyncElasticsearch

    assert isinstance(client, AsyncElasticsearch)
    total = max(1, int(rate * seconds))
    sent_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    _, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send() -> None:
        start = time.perf_counter()
        for n in range(total):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            host = f"lat-{n}"
            writer.write(f"<13>Nov 24 10:00:00 {host} probe[1]: secmon-latency-probe {n}\n".encode())
            await writer.drain()
            sent_at[host] = time.perf_counter()

    async def poll() -> None:
        deadline = None
        while len(seen_at) < total:
            # The oldest awaited probes only: alerts arrive about in order, and a small query keeps
            # the poller from loading the node it measures.
            pending = [host for host in sent_at if host not in seen_at][:MAX_POLLED]
            if not pending:
                await asyncio.sleep(POLL_SECONDS)
                continue
            response = await client.search(
                index=names.alerts,
                query={"bool": {"filter": [{"term": {"rule.id": PROBE_RULE_ID}}, {"terms": {"host.name": pending}}]}},
                source_includes=["host.name"],
                size=len(pending),
                ignore_unavailable=True,
            )
            now = time.perf_counter()
            for hit in response["hits"]["hits"]:
                host = hit["_source"].get("host", {}).get("name")
                if host and host not in seen_at:
                    seen_at[host] = now
            if len(sent_at) == total:
                deadline = deadline or now + 30.0
                if now > deadline:
                    return  # alerts that never came are reported as missing
            await asyncio.sleep(POLL_SECONDS)

    await asyncio.gather(send(), poll())
    writer.close()
    latencies = [seen_at[h] - sent_at[h] for h in seen_at if h in sent_at]
    return LatencyResult(sent=total, seen=len(latencies), rate=rate, latencies=latencies)

"""The live status panel of ``secmon up``: events/s, alerts by level, what waits where, cluster health.

It reads the running service's own counters (no request to itself) once a second and asks
Elasticsearch for its health every few seconds. A process of the scale-out mode shows its roles
instead (:class:`RolesPanel`), with each consumer group's total lag, events/s in and out, and who
owns its partitions, read from Kafka in a thread at most every LAG_SECONDS. Log lines keep printing above it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from secmon.cli.detect import LEVEL_STYLES
from secmon.config import BusSettings
from secmon.detection.alerts import LEVELS
from secmon.service import Running, RunningRoles
from secmon.store import cluster_url

if TYPE_CHECKING:
    from secmon.bus.lag import GroupRate, PartitionLag

REFRESH_SECONDS = 1.0
HEALTH_EVERY = 5  # refreshes between two cluster health checks
RATE_WINDOW = 5  # seconds the events/s figure is averaged over
HEALTH_STYLES = {"green": "green", "yellow": "yellow", "red": "bold red"}
LAG_SECONDS = 2.0  # between two readings of the consumer groups' lag at least
LAG_TIMEOUT = 2.0  # seconds a reading may take; the panel keeps showing the previous one meanwhile


class _LivePanel:
    """A panel kept on screen, refreshed every REFRESH_SECONDS, with log lines printing above it."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()

    def render(self) -> RenderableType:
        raise NotImplementedError

    async def tick(self, count: int) -> None:
        """Before each refresh: read what the next rendering shows."""

    def closing(self) -> None:
        """When the panel goes away."""

    async def run(self) -> None:
        """Refresh until cancelled; logs go above the panel meanwhile."""
        root = logging.getLogger()
        saved = root.handlers[:]
        with Live(self.render(), console=self.console, refresh_per_second=4, transient=True) as live:
            root.handlers[:] = [_ConsoleHandler(live.console, saved)]
            try:
                count = 0
                while True:
                    await self.tick(count)
                    live.update(self.render())
                    count += 1
                    await asyncio.sleep(REFRESH_SECONDS)
            finally:
                root.handlers[:] = saved
                self.closing()


class StatusPanel(_LivePanel):
    """Renders a :class:`~secmon.service.Running` service; :meth:`run` keeps it on screen."""

    def __init__(self, running: Running, console: Console) -> None:
        super().__init__(console)
        self.running = running
        self.health = "…"
        self._received: deque[tuple[float, float]] = deque(maxlen=RATE_WINDOW + 1)

    async def tick(self, count: int) -> None:
        if count % HEALTH_EVERY == 0:
            self.health = await _cluster_health(self.running.client)

    def render(self) -> RenderableType:
        """The panel as it is now."""
        running, telemetry = self.running, self.running.pipeline.telemetry
        components = list(running.sources)
        # What came in otherwise than from a source (secmon up --demo's import) counts too.
        imported = [c for c in _receiving_components(running) if c not in running.sources]
        received = sum(
            telemetry.value("secmon_component_received_events_total", component=c) for c in components + imported
        )
        now = time.monotonic()
        self._received.append((now, received))
        first_at, first = self._received[0]
        rate = (received - first) / (now - first_at) if now > first_at else 0.0

        summary = Table.grid(padding=(0, 2))
        summary.add_column(style="bold")
        summary.add_column()
        es = running.settings.elasticsearch
        summary.add_row("Elasticsearch", Text(f"{cluster_url(es)}  {self.health}", HEALTH_STYLES.get(self.health, "")))
        if running.api is not None:
            summary.add_row("API", f"{running.api.url}  (docs: {running.api.url}/docs)")
        stats = running.writer.stats
        events = f"{rate:,.0f}/s   {received:,.0f} received   {stats.stored:,} stored"
        if stats.duplicates:  # a replay (the demo's, a file read again) stores nothing twice
            events += f"   {stats.duplicates:,} already stored"
        summary.add_row("events", events)
        alerts = Text()
        for level in reversed(LEVELS):
            count = telemetry.value("secmon_alerts_total", level=level)
            alerts.append(f"{level} {count:,.0f}   ", LEVEL_STYLES.get(level, ""))
        summary.add_row("new alerts", alerts)
        waiting = f"disk buffer {running.pipeline.buffer.pending_bytes / 1e6:,.1f} MB"
        if running.notifier is not None:
            waiting += f"   notifications {running.notifier.pending:,}"
        if stats.dead_lettered:
            waiting += f"   dead-lettered {stats.dead_lettered:,}"
        summary.add_row("waiting", waiting)
        summary.add_row("up", _duration(now - self.started))

        sources = Table("source", "type", "received", "errors", "dropped", box=None, header_style="bold")
        for component in components + imported:
            source = running.settings.sources.get(component)
            sources.add_row(
                component,
                source.type if source is not None else "import",
                f"{telemetry.value('secmon_component_received_events_total', component=component):,.0f}",
                f"{_total(running, 'secmon_component_errors', component):,.0f}",
                f"{_total(running, 'secmon_component_discarded_events', component):,.0f}",
            )
        parts: list[RenderableType] = [summary]
        if components or imported:
            parts.append(sources)
        parts.append(Text("Ctrl-C stops secmon (what is in flight is flushed first).", style="dim"))
        return Group(*parts)


class RolesPanel(_LivePanel):
    """Renders the roles of a scale-out process (:class:`~secmon.service.RunningRoles`) and the bus's lag."""

    def __init__(self, running: RunningRoles, console: Console) -> None:
        super().__init__(console)
        self.running = running
        self.health = "…"
        bus = running.settings.bus
        assert bus is not None
        self.kafka = KafkaLag(bus, running.settings.topic_prefix)

    async def tick(self, count: int) -> None:
        store = self.running.store
        if store is not None and count % HEALTH_EVERY == 0:
            self.health = await _cluster_health(store.client)
        self.kafka.refresh()

    def closing(self) -> None:
        self.kafka.close()

    def render(self) -> RenderableType:
        running = self.running
        summary = Table.grid(padding=(0, 2))
        summary.add_column(style="bold")
        summary.add_column()
        summary.add_row("roles", f"{', '.join(running.settings.roles)}   Kafka {running.cluster.bootstrap}")
        if running.store is not None:
            es = running.settings.elasticsearch
            summary.add_row(
                "Elasticsearch", Text(f"{cluster_url(es)}  {self.health}", HEALTH_STYLES.get(self.health, ""))
            )
        if running.api is not None:
            summary.add_row("API", f"{running.api.url}  (docs: {running.api.url}/docs)")
        if running.pipeline is not None:
            telemetry = running.pipeline.telemetry
            received = sum(
                telemetry.value("secmon_component_received_events_total", component=c) for c in running.sources
            )
            buffered = running.pipeline.buffer.pending_bytes / 1e6
            summary.add_row("collected", f"{received:,.0f} received   disk buffer {buffered:,.1f} MB")
        if running.detect is not None:
            detected = f"{running.detect.events:,} events stored"
            if running.correlate is not None:
                detected += f"   {running.correlate.hits:,} correlation hits counted"
            summary.add_row("detected", detected)
        for label, value in self.kafka.summary():
            summary.add_row(label, value)
        summary.add_row("up", _duration(time.monotonic() - self.started))
        return Group(summary, Text("Ctrl-C stops this process (what is not committed is handled again).", style="dim"))


async def _cluster_health(client: AsyncElasticsearch) -> str:
    try:
        health = await client.options(request_timeout=2, max_retries=0).cluster.health()
    except (ApiError, TransportError):
        return "unreachable (events wait in the disk buffer)"
    return str(health.get("status", "unknown"))


class KafkaLag:
    """The consumer groups' lag on the bus, read in a thread (librdkafka blocks) and kept for the panel."""

    def __init__(self, bus: BusSettings, topic_prefix: str) -> None:
        from secmon.bus.lag import bus_address  # librdkafka loads only with a bus
        from secmon.bus.topics import Topics

        self.bus = bus
        self.bootstrap = bus_address(bus)
        self.topics = Topics(topic_prefix, bus.group)
        self.rows: list[PartitionLag] = []
        self.rates: dict[str, GroupRate] = {}
        self.error: str | None = None
        self._read_at: float | None = None  # when the rows were read
        self._asked_at = float("-inf")
        self._reading: asyncio.Task[None] | None = None

    def refresh(self) -> None:
        """Start a reading, unless one is under way or the last one began less than LAG_SECONDS ago."""
        now = time.monotonic()
        if (self._reading is not None and not self._reading.done()) or now - self._asked_at < LAG_SECONDS:
            return
        self._asked_at = now
        self._reading = asyncio.create_task(self.read())

    async def read(self) -> None:
        """Read the lag now; a cluster that does not answer leaves the last rows and says so."""
        from secmon.bus.lag import group_lag, rates
        from secmon.errors import BrokerError

        started = time.monotonic()
        try:
            rows = await asyncio.to_thread(group_lag, self.bootstrap, self.topics, self.bus.options, LAG_TIMEOUT)
        except BrokerError as exc:
            self.error = str(exc)
            return
        if self._read_at is not None:
            self.rates = {rate.group: rate for rate in rates(self.rows, rows, started - self._read_at)}
        self.rows, self._read_at, self.error = rows, started, None

    def close(self) -> None:
        """Stop waiting for a reading under way (its thread ends by itself within LAG_TIMEOUT)."""
        if self._reading is not None:
            self._reading.cancel()

    def summary(self) -> list[tuple[str, RenderableType]]:
        """Rows for the panel: one per consumer group (lag, events/s, owners), or why there is none."""
        if self.error is not None:
            return [("Kafka", Text(self.error, "yellow"))]
        if self._read_at is None:
            return [("Kafka", Text(f"{self.bootstrap}  …"))]
        from secmon.bus.lag import total_lag

        lines: list[tuple[str, RenderableType]] = []
        for group, lag in total_lag(self.rows).items():
            line = f"lag {lag:,}"
            rate = self.rates.get(group)
            if rate is not None:
                line += f"   {rate.produced:,.0f}/s in  {rate.consumed:,.0f}/s out"
            # Text, not markup: a client.id is whatever the member chose, brackets included.
            lines.append((group, Text(f"{line}   {_owners([row for row in self.rows if row.group == group])}")))
        return lines or [("Kafka", Text(f"{self.bootstrap}  no topics yet"))]


def _owners(rows: list[PartitionLag]) -> str:
    """Who owns which partitions, compactly: ``secmon-detect-a-12: 0 1 2 · unassigned: 3``."""
    partitions: dict[str, list[int]] = {}
    for row in rows:
        partitions.setdefault(row.owner or "unassigned", []).append(row.partition)
    return " · ".join(f"{owner}: {' '.join(map(str, numbers))}" for owner, numbers in partitions.items())


class _ConsoleHandler(logging.Handler):
    """Prints log records above the live panel, formatted as the handlers it stands in for."""

    def __init__(self, console: Console, replaced: list[logging.Handler]) -> None:
        super().__init__()
        self.console = console
        formatter = next((handler.formatter for handler in replaced if handler.formatter), None)
        self.setFormatter(formatter or logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.console.print(Text(self.format(record)), soft_wrap=True)


def _receiving_components(running: Running) -> list[str]:
    """The components that received events so far, sources or not, in the order they first did."""
    return [
        sample.labels["component"]
        for metric in running.pipeline.telemetry.registry.collect()
        if metric.name == "secmon_component_received_events"
        for sample in metric.samples
        if sample.name.endswith("_total")
    ]


def _total(running: Running, metric_name: str, component: str) -> float:
    """A counter of ``component`` summed over its other labels (errors by stage, drops by reason)."""
    return sum(
        sample.value
        for metric in running.pipeline.telemetry.registry.collect()
        if metric.name == metric_name
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels.get("component") == component
    )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"

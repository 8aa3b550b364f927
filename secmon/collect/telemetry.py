"""Per-component counters, exposed as Prometheus metrics and read by ``secmon status``.

A failure on one event is counted here and logged, never raised: the stream carries on.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server


class Telemetry:
    """The counters of one secmon process, in a registry of its own (tests make several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "secmon_component_received_events", "Events a component received.", ["component"], registry=self.registry
        )
        self.sent = Counter(
            "secmon_component_sent_events", "Events a component passed on.", ["component"], registry=self.registry
        )
        self.errors = Counter(
            "secmon_component_errors", "Events a component failed on.", ["component", "stage"], registry=self.registry
        )
        self.discarded = Counter(
            "secmon_component_discarded_events",
            "Events a component dropped (only sources that cannot push back, such as UDP, do).",
            ["component", "reason"],
            registry=self.registry,
        )
        self.hits = Counter(
            "secmon_detection_hits",
            "Rule hits (before grouping into alerts), by rule level.",
            ["level"],
            registry=self.registry,
        )
        self.alerts = Counter(
            "secmon_alerts",
            "New alerts (a grouped alert counts once), by rule level.",
            ["level"],
            registry=self.registry,
        )
        self.buffer_bytes = Gauge(
            "secmon_buffer_bytes", "Bytes waiting in the disk buffer for Elasticsearch.", registry=self.registry
        )

    def serve(self, address: str) -> Callable[[], None]:
        """Serve ``/metrics`` on ``address`` (host:port) from a thread; returns how to stop it."""
        host, _, port = address.rpartition(":")
        server, thread = start_http_server(int(port), host, registry=self.registry)

        def stop() -> None:
            server.shutdown()
            thread.join()

        return stop

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """The current value of a metric sample (for ``secmon status`` and tests)."""
        return self.registry.get_sample_value(name, labels) or 0.0

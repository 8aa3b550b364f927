"""The notifier: matches new alerts to channels on the hot path, delivers them from a worker.

:meth:`Notifier.notify` is synchronous and cheap: it runs each channel's compiled filter and
queues a delivery per match, and when ``queue_size`` deliveries are waiting or being retried
it drops the new one (counted and logged, never waited for). :meth:`Notifier.run` is the
worker: it sends up to ``concurrency`` deliveries at once, retries a retryable failure with
exponential backoff and jitter (or the receiver's ``Retry-After``) up to ``retries`` times, and
records each final outcome in the notifications index and the counter
``secmon_notifications_total{channel,outcome}`` (outcome ``delivered``, ``failed`` or ``dropped``).

Deliveries are in memory: those still queued when the process stops are lost (the alerts
themselves are safe in Elasticsearch). Call :meth:`Notifier.notify` from the event loop's
thread; it keeps a reference to each alert, which the caller must not change afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from secmon.errors import SecmonError
from secmon.ids import document_id
from secmon.log import get_logger
from secmon.notify.config import EmailChannel, NotificationSettings, WebhookChannel
from secmon.notify.deliveries import Attempt, DeliveryLog, DeliveryResult, Sender
from secmon.notify.email import EmailSender
from secmon.notify.filters import AlertMatcher, compile_filter
from secmon.notify.webhook import WebhookSender
from secmon.timestamps import epoch_to_iso_millis

log = get_logger(__name__)

# One counter per process, registered once at import (tests build many notifiers); add it to
# another registry, such as the pipeline telemetry's, with register_metrics.
NOTIFICATIONS = Counter(
    "secmon_notifications",
    "Alert notifications by channel and final outcome: delivered, failed (after its retries) or dropped (queue full).",
    ["channel", "outcome"],
    registry=REGISTRY,
)
DROP_LOG_INTERVAL = 10.0  # seconds between two "queue full" warnings: a flood must not flood the log too


def register_metrics(registry: CollectorRegistry) -> None:
    """Expose the notification counter in ``registry`` too (a second call is harmless)."""
    with contextlib.suppress(ValueError):  # already registered there
        registry.register(NOTIFICATIONS)


class NotificationError(SecmonError):
    """A notification request that cannot be carried out."""


class UnknownChannelError(NotificationError, LookupError):
    """No channel of that name is configured."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        super().__init__(f"no notification channel is called {channel!r}")


@dataclass(frozen=True, slots=True)
class _Route:
    channel: WebhookChannel | EmailChannel
    matches: AlertMatcher
    sender: Sender


@dataclass(frozen=True, slots=True)
class _Job:
    route: _Route
    alert: Mapping[str, Any]
    id: str


def make_sender(channel: WebhookChannel | EmailChannel, http: httpx.AsyncClient, timeout: float) -> Sender:
    """The sender of ``channel``'s type (the type is the name of its module)."""
    match channel:
        case WebhookChannel():
            return WebhookSender(channel, http, timeout)
        case EmailChannel():
            return EmailSender(channel, timeout)


class Notifier:
    """Delivers new alerts to the configured channels and records every outcome in ``index``."""

    def __init__(
        self,
        settings: NotificationSettings,
        client: AsyncElasticsearch,
        index: str,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.records = DeliveryLog(client, index)
        self.dropped = 0  # deliveries dropped because the queue was full
        self.record_errors = 0  # outcomes Elasticsearch did not store (they are logged)
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._http = httpx.AsyncClient(follow_redirects=False)
        self._routes = [
            _Route(channel, compile_filter(channel), make_sender(channel, self._http, settings.timeout))
            for channel in settings.channels
        ]
        self._by_name = {route.channel.name: route for route in self._routes}
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._pending = 0  # queued, being sent or waiting to retry
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._drops_unlogged = 0
        self._last_drop_log = -math.inf

    @property
    def index(self) -> str:
        return self.records.index

    @property
    def pending(self) -> int:
        """Deliveries queued, being sent or waiting for a retry."""
        return self._pending

    async def ensure_index(self) -> None:
        """Create the notifications index with its strict mapping unless it exists."""
        await self.records.ensure_index()

    # -- hot path --------------------------------------------------------------------------

    def notify(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Queue a delivery of each new alert to each channel it matches; never waits."""
        if not self._routes:
            return
        for alert in alerts:
            for route in self._routes:
                if route.matches(alert):
                    self._enqueue(route, alert)

    def _enqueue(self, route: _Route, alert: Mapping[str, Any]) -> None:
        name = route.channel.name
        if self._pending >= self.settings.queue_size:
            self.dropped += 1
            NOTIFICATIONS.labels(name, "dropped").inc()
            self._log_drop(name)
            return
        alert_id = _alert_id(alert) or secrets.token_hex(8)
        self._pending += 1
        self._queue.put_nowait(_Job(route, alert, document_id("notification", name, alert_id)))

    def _log_drop(self, channel: str) -> None:
        self._drops_unlogged += 1
        now = self._clock()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL:
            log.warning(
                "Notification queue full; dropping deliveries.",
                channel=channel,
                dropped=self._drops_unlogged,
                queue_size=self.settings.queue_size,
            )
            self._last_drop_log = now
            self._drops_unlogged = 0

    # -- worker ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Send queued deliveries until cancelled; cancelling abandons those under way."""
        log.info("Notifier started.", channels=len(self._routes), index=self.index)
        async with asyncio.TaskGroup() as tasks:
            while True:
                job = await self._queue.get()
                tasks.create_task(self._deliver(job))

    async def join(self) -> None:
        """Wait until every queued delivery has finished and been recorded (needs :meth:`run`)."""
        await self._queue.join()

    async def _deliver(self, job: _Job) -> None:
        started = self._clock()
        try:
            try:
                result = await self._with_retries(job, started)
            except Exception as exc:  # the top of one delivery: record it as failed, the worker carries on
                log.exception("Notification delivery crashed.", channel=job.route.channel.name, delivery=job.id)
                result = self._result(job, Attempt(False, error=f"internal error: {exc!r}"), 1, started)
            await self._finish(result)
        except Exception:  # an outcome that cannot even be recorded must not stop the worker
            log.exception("Notification outcome lost.", channel=job.route.channel.name, delivery=job.id)
        finally:
            self._pending -= 1
            self._queue.task_done()

    async def _with_retries(self, job: _Job, started: float) -> DeliveryResult:
        attempts = 0
        while True:
            attempts += 1
            async with self._slots:
                attempt = await job.route.sender.send(job.alert, delivery_id=job.id, now=self._clock())
            if attempt.delivered or not attempt.retryable or attempts > self.settings.retries:
                return self._result(job, attempt, attempts, started)
            delay = self.backoff(attempts, attempt.retry_after)
            log.info(
                "Notification attempt failed; retrying.",
                channel=job.route.channel.name,
                delivery=job.id,
                attempt=attempts,
                delay=round(delay, 3),
                error=attempt.error,
            )
            await self._sleep(delay)

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 is the first).

        The receiver's ``Retry-After`` when it gave one; else a random wait between half and all
        of ``backoff_base * 2 ** (attempt - 1)``, so channels failing together do not retry in step.
        Never more than ``backoff_max``.
        """
        cap = self.settings.backoff_max
        if retry_after is not None:
            return min(max(retry_after, 0.0), cap)
        ceiling = min(cap, self.settings.backoff_base * 2.0 ** min(attempt - 1, 64))
        return ceiling / 2 + self._jitter() * ceiling / 2

    async def _finish(self, result: DeliveryResult) -> None:
        """Count, log and record a final outcome (a record Elasticsearch refuses is logged, not raised)."""
        NOTIFICATIONS.labels(result.channel, result.outcome).inc()
        if result.delivered:
            log.info("Notification delivered.", channel=result.channel, alert=result.alert_id, attempts=result.attempts)
        else:
            log.warning(
                "Notification failed.",
                channel=result.channel,
                alert=result.alert_id,
                attempts=result.attempts,
                error=result.error,
            )
        try:
            await self.records.record(result)
        except (ApiError, TransportError) as exc:
            self.record_errors += 1
            log.warning("Notification outcome not recorded.", index=self.index, delivery=result.id, error=str(exc))

    def _result(
        self, job: _Job, attempt: Attempt, attempts: int, started: float, *, test: bool = False
    ) -> DeliveryResult:
        alert, channel = job.alert, job.route.channel
        rule, organization = _section(alert, "rule"), _section(alert, "organization")
        return DeliveryResult(
            id=job.id,
            channel=channel.name,
            type=channel.type,
            alert_id=_alert_id(alert) or "",
            outcome="delivered" if attempt.delivered else "failed",
            attempts=attempts,
            error=attempt.error,
            status=attempt.status,
            started=started,
            finished=self._clock(),
            rule_id=_text(rule.get("id")),
            rule_title=_text(rule.get("title")),
            level=_text(rule.get("level")),
            agency=_text(organization.get("id")),
            test=test,
        )

    # -- API -------------------------------------------------------------------------------

    async def send_test(self, channel: str, alert: Mapping[str, Any] | None = None) -> DeliveryResult:
        """Send ``alert`` (by default a sample) to ``channel`` once, now, whatever its filter; record the result."""
        route = self._by_name.get(channel)
        if route is None:
            raise UnknownChannelError(channel)
        started = self._clock()
        alert = alert if alert is not None else sample_alert(started, agency=route.channel.agency)
        job = _Job(route, alert, document_id("notification-test", channel, _alert_id(alert) or "", repr(started)))
        try:
            attempt = await route.sender.send(alert, delivery_id=job.id, now=started)
        except Exception as exc:  # the answer to an API call: report the failure instead of a 500
            log.exception("Test notification crashed.", channel=channel)
            attempt = Attempt(False, error=f"internal error: {exc!r}")
        result = self._result(job, attempt, 1, started, test=True)
        await self._finish(result)
        return result

    async def deliveries(
        self,
        alert_id: str | None = None,
        channel: str | None = None,
        outcome: str | None = None,
        size: int = 50,
        *,
        agencies: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Recent delivery records, newest first, optionally of one alert, channel or outcome."""
        return await self.records.search(
            alert_id=alert_id, channel=channel, outcome=outcome, agencies=agencies, size=size
        )

    async def aclose(self) -> None:
        """Close the HTTP connections; call after :meth:`run` has stopped."""
        await self._http.aclose()
        for route in self._routes:
            await route.sender.aclose()


def sample_alert(now: float, *, agency: str | None = None) -> dict[str, Any]:
    """An alert document of the usual shape that no event triggered, for testing a channel."""
    at = epoch_to_iso_millis(now)
    alert: dict[str, Any] = {
        "@timestamp": at,
        "message": "secmon test notification",
        "alert": {
            "id": f"test-{secrets.token_hex(6)}",
            "status": "open",
            "count": 1,
            "first_seen": at,
            "last_seen": at,
            "group_key": "secmon-test",
        },
        "rule": {
            "id": "secmon-test",
            "name": "secmon_test",
            "title": "secmon test notification",
            "level": "informational",
            "description": "Sent from secmon to test this channel; no event triggered it.",
            "author": "secmon",
            "tags": [],
            "references": [],
            "type": "test",
        },
        "tags": [],
        "host": {"name": "secmon-test-host"},
        "user": {"name": "secmon-test-user"},
        "event": {"kind": "alert", "ids": [], "indices": []},
    }
    if agency is not None:
        alert["organization"] = {"id": agency}
    return alert


def _alert_id(alert: Mapping[str, Any]) -> str | None:
    section = alert.get("alert")
    value = section.get("id") if isinstance(section, Mapping) else None
    return str(value) if value is not None else None


def _section(alert: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = alert.get(name)
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)

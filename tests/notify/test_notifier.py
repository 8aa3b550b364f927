"""Alert notifications against real servers: a local HTTP receiver, a local SMTP server, Elasticsearch.

Time is injected: the clock steps one second per reading and the retry sleep only records the
delay it was asked for, so retries are instant and the backoff schedule can be checked exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import http
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from elasticsearch import AsyncElasticsearch
from prometheus_client import REGISTRY, CollectorRegistry

from secmon.notify import (
    ChannelFilter,
    EmailChannel,
    NotificationSettings,
    Notifier,
    UnknownChannelError,
    WebhookChannel,
    register_metrics,
    verify_signature,
)
from secmon.notify.filters import compile_filter
from secmon.store import IndexNames

START = 1_750_000_000.0


# -- the stand-ins for third parties -------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


@dataclass
class WebhookReceiver:
    """A minimal HTTP/1.1 server on 127.0.0.1: records requests, answers ``script`` first, then 200."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/hook"

    def fail(self, *statuses: int, headers: dict[str, str] | None = None) -> None:
        self.script.extend((status, headers or {}) for status in statuses)

    async def __aenter__(self) -> WebhookReceiver:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, _ = (await reader.readline()).decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Request(method, path, headers, body))
            status, extra = self.script.pop(0) if self.script else (200, {})
            answer = b"{}" if status < 300 else f"error {status}".encode()
            head = [
                f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
                f"Content-Length: {len(answer)}",
                "Content-Type: text/plain",
                "Connection: close",
                *(f"{name}: {value}" for name, value in extra.items()),
            ]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + answer)
            await writer.drain()
        finally:
            writer.close()


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"


class LoopbackController(Controller):
    """aiosmtpd's Controller on port 0: it learns the port the system picked before checking it is up."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class Clock:
    """A clock that moves one second each time it is read."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


# -- fixtures and helpers ------------------------------------------------------------------

Make = Callable[..., Awaitable[Notifier]]


@dataclass
class Harness:
    sleeps: list[float] = field(default_factory=list)

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
def harness() -> Harness:
    return Harness()


@pytest.fixture
async def make_notifier(es: AsyncElasticsearch, names: IndexNames, harness: Harness) -> AsyncIterator[Make]:
    """Builds notifiers on a fresh index, with the worker running; stops and deletes them after the test."""
    built: list[tuple[Notifier, asyncio.Task[None] | None]] = []

    async def make(*channels: WebhookChannel | EmailChannel, run: bool = True, **options: Any) -> Notifier:
        fast = {"retries": 3, "backoff_base": 0.5, "backoff_max": 60.0, "timeout": 5.0, **options}
        settings = NotificationSettings(channels=list(channels), **fast)
        index = f"{names.prefix}-notifications-{secrets.token_hex(4)}"
        notifier = Notifier(settings, es, index, clock=Clock(), sleep=harness.sleep, jitter=lambda: 0.5)
        await notifier.ensure_index()
        built.append((notifier, start(notifier) if run else None))
        return notifier

    yield make
    for notifier, task in built:
        if task is not None:
            await stop(task)
        await notifier.aclose()
        await es.indices.delete(index=notifier.index, ignore_unavailable=True)


def start(notifier: Notifier) -> asyncio.Task[None]:
    return asyncio.create_task(notifier.run())


async def stop(worker: asyncio.Task[None]) -> None:
    worker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker


async def finished(notifier: Notifier, es: AsyncElasticsearch, **query: Any) -> list[dict[str, Any]]:
    """The delivery records once every queued delivery is done."""
    await asyncio.wait_for(notifier.join(), 30)
    await es.indices.refresh(index=notifier.index)
    return await notifier.deliveries(**query)


def unique(name: str) -> str:
    return f"{name}-{secrets.token_hex(3)}"


def webhook(url: str, name: str | None = None, **options: Any) -> WebhookChannel:
    return WebhookChannel(name=name or unique("hook"), type="webhook", url=url, **options)


def alert(
    *,
    level: str = "high",
    agency: str | None = "agency-a",
    rule_id: str = "rule-ssh-brute",
    tags: list[str] | None = None,
    host: str = "web-01",
) -> dict[str, Any]:
    """An alert document shaped as secmon.detection.alerts builds it."""
    tags = ["attack.credential_access", "attack.t1110"] if tags is None else tags
    document: dict[str, Any] = {
        "@timestamp": "2025-06-15T10:00:00.000Z",
        "message": "SSH brute force",
        "alert": {
            "id": f"alert-{secrets.token_hex(6)}",
            "status": "open",
            "count": 12,
            "first_seen": "2025-06-15T10:00:00.000Z",
            "last_seen": "2025-06-15T10:04:00.000Z",
            "group_key": f"{rule_id}|{agency or ''}|{host}|root",
        },
        "rule": {
            "id": rule_id,
            "name": "ssh_brute_force",
            "title": "SSH brute force",
            "level": level,
            "description": "Many failed SSH logins from one source.",
            "author": "secmon",
            "tags": tags,
            "references": [],
            "type": "sigma",
        },
        "tags": tags,
        "threat": {"technique": {"id": ["T1110"]}},
        "host": {"name": host},
        "user": {"name": "root"},
        "source": {"ip": "203.0.113.7"},
        "event": {"kind": "alert", "ids": ["e1"], "indices": ["secmon-events-sshd"]},
    }
    if agency is not None:
        document["organization"] = {"id": agency}
    return document


def counted(channel: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("secmon_notifications_total", {"channel": channel, "outcome": outcome}) or 0.0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- filters -------------------------------------------------------------------------------


def channel_with(agency: str | None = None, **filters: list[str]) -> WebhookChannel:
    return webhook("http://127.0.0.1:9/", agency=agency, filter=ChannelFilter(**filters))


def test_an_empty_filter_matches_every_alert() -> None:
    matches = compile_filter(channel_with())
    assert matches(alert()) and matches(alert(level="low", agency=None, tags=[]))


def test_levels_select_by_rule_level() -> None:
    matches = compile_filter(channel_with(levels=["high", "critical"]))
    assert matches(alert(level="high"))
    assert matches(alert(level="critical"))
    assert not matches(alert(level="medium"))
    assert not matches({"message": "no rule at all"})


def test_an_agency_channel_receives_only_its_agency() -> None:
    matches = compile_filter(channel_with(agency="agency-a"))
    assert matches(alert(agency="agency-a"))
    assert not matches(alert(agency="agency-b"))
    assert not matches(alert(agency=None))


def test_tags_match_when_any_tag_is_listed_whatever_the_case() -> None:
    matches = compile_filter(channel_with(tags=["attack.T1110", "attack.t1078"]))
    assert matches(alert(tags=["attack.credential_access", "attack.t1110"]))
    assert not matches(alert(tags=["attack.execution", "attack.t1059"]))
    assert not matches(alert(tags=[]))


def test_rules_and_agencies_lists_and_every_list_must_match() -> None:
    matches = compile_filter(channel_with(rules=["rule-ssh-brute"], agencies=["agency-a", "agency-c"], levels=["high"]))
    assert matches(alert(rule_id="rule-ssh-brute", agency="agency-c"))
    assert not matches(alert(rule_id="rule-other"))
    assert not matches(alert(agency="agency-b"))
    assert not matches(alert(level="low"))


def test_channel_names_must_be_unique_and_types_are_checked() -> None:
    with pytest.raises(ValueError, match="used twice"):
        NotificationSettings(channels=[webhook("http://h/", name="x"), webhook("http://h/", name="x")])
    with pytest.raises(ValueError, match="webhook"):
        NotificationSettings.model_validate({"channels": [{"name": "x", "type": "pager", "url": "http://h/"}]})
    with pytest.raises(ValueError, match="set by secmon"):
        webhook("http://h/", headers={"X-Secmon-Signature": "forged"})
    parsed = NotificationSettings.model_validate(
        {"channels": [{"name": "m", "type": "email", "smtp_host": "mail", "sender": "s@x", "recipients": ["r@x"]}]}
    )
    assert isinstance(parsed.channels[0], EmailChannel) and parsed.channels[0].starttls


async def test_notify_queues_one_delivery_per_matching_channel(make_notifier: Make) -> None:
    high = channel_with(levels=["high"])
    agency_b = channel_with(agency="agency-b")
    everything = channel_with()
    notifier = await make_notifier(high, agency_b, everything, run=False)

    notifier.notify([alert(level="high", agency="agency-a"), alert(level="low", agency="agency-b")])

    # high: the first; agency_b: the second; everything: both
    assert notifier.pending == 4
    assert notifier.dropped == 0


# -- webhook -------------------------------------------------------------------------------


async def test_webhook_signature_verifies_with_the_documented_recipe(
    make_notifier: Make, es: AsyncElasticsearch
) -> None:
    secret = "s3cret-key"
    async with WebhookReceiver() as receiver:
        channel = webhook(receiver.url, secret=secret, headers={"Authorization": "Bearer abc"})
        notifier = await make_notifier(channel)
        sent = alert()
        notifier.notify([sent])
        [record] = await finished(notifier, es)

    [request] = receiver.requests
    timestamp, received, body = (
        request.headers["x-secmon-timestamp"],
        request.headers["x-secmon-signature"],
        request.body,
    )
    # The recipe of secmon.notify.webhook's docstring, written out as a receiver would.
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, received)
    assert abs(START - int(timestamp)) <= 300
    assert verify_signature(secret.encode(), timestamp, body, received, now=int(timestamp) + 10)
    assert not verify_signature(secret.encode(), timestamp, body + b" ", received, now=int(timestamp))
    assert not verify_signature(b"other", timestamp, body, received, now=int(timestamp))
    assert not verify_signature(secret.encode(), timestamp, body, received, now=int(timestamp) + 301)  # replayed late

    assert request.method == "POST" and request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer abc"
    assert request.headers["x-secmon-delivery"] == record["delivery"]["id"]
    payload = orjson.loads(body)
    assert payload["secmon"] == {"channel": channel.name}
    assert {k: v for k, v in payload.items() if k != "secmon"} == sent
    assert record["delivery"]["outcome"] == "delivered"
    assert record["alert"]["id"] == sent["alert"]["id"]


async def test_unsigned_webhook_has_a_timestamp_but_no_signature(make_notifier: Make, es: AsyncElasticsearch) -> None:
    async with WebhookReceiver() as receiver:
        notifier = await make_notifier(webhook(receiver.url))
        notifier.notify([alert()])
        await finished(notifier, es)
    [request] = receiver.requests
    assert "x-secmon-signature" not in request.headers
    assert request.headers["x-secmon-timestamp"].isdigit()


async def test_503_twice_then_success_is_delivered_once_after_three_attempts(
    make_notifier: Make, es: AsyncElasticsearch, harness: Harness
) -> None:
    async with WebhookReceiver() as receiver:
        channel = webhook(receiver.url)
        notifier = await make_notifier(channel)
        receiver.fail(503)
        receiver.fail(503, headers={"Retry-After": "7"})
        sent = alert()
        notifier.notify([sent])
        records = await finished(notifier, es)

    assert len(receiver.requests) == 3
    assert len({request.headers["x-secmon-delivery"] for request in receiver.requests}) == 1  # one delivery
    [record] = records
    assert record["delivery"]["outcome"] == "delivered"
    assert record["delivery"]["attempts"] == 3
    assert record["delivery"]["status"] == 200
    assert record["alert"]["id"] == sent["alert"]["id"]
    assert record["rule"] == {"id": "rule-ssh-brute", "title": "SSH brute force", "level": "high"}
    assert record["organization"] == {"id": "agency-a"}
    # First retry: backoff_base with jitter 0.5 → 3/4 of it; second: the receiver's Retry-After.
    assert harness.sleeps == [0.375, 7.0]
    assert counted(channel.name, "delivered") == 1
    assert counted(channel.name, "failed") == 0


async def test_a_400_is_not_retried_and_is_recorded_failed(make_notifier: Make, es: AsyncElasticsearch) -> None:
    async with WebhookReceiver() as receiver:
        channel = webhook(receiver.url)
        notifier = await make_notifier(channel)
        receiver.fail(400)
        notifier.notify([alert()])
        [record] = await finished(notifier, es)

    assert len(receiver.requests) == 1
    assert record["delivery"]["outcome"] == "failed"
    assert record["delivery"]["attempts"] == 1
    assert record["delivery"]["status"] == 400
    assert "HTTP 400" in record["delivery"]["error"]
    assert counted(channel.name, "failed") == 1


@pytest.mark.parametrize(("status", "attempts"), [(408, 2), (429, 2), (500, 2), (502, 2), (401, 1), (404, 1), (301, 1)])
async def test_which_statuses_are_retried(
    make_notifier: Make, es: AsyncElasticsearch, status: int, attempts: int
) -> None:
    async with WebhookReceiver() as receiver:
        notifier = await make_notifier(webhook(receiver.url))
        receiver.fail(status)
        notifier.notify([alert()])
        [record] = await finished(notifier, es)
    assert record["delivery"]["attempts"] == attempts
    assert record["delivery"]["outcome"] == ("delivered" if attempts == 2 else "failed")


def test_retry_after_is_seconds_or_an_http_date() -> None:
    from secmon.notify.webhook import parse_retry_after

    assert parse_retry_after("120", START) == 120.0
    assert parse_retry_after(formatdate(START + 30, usegmt=True), START) == 30.0
    assert parse_retry_after(formatdate(START - 30, usegmt=True), START) == 0.0
    assert parse_retry_after("soon", START) is None
    assert parse_retry_after(None, START) is None


async def test_an_unreachable_url_fails_after_every_retry(
    make_notifier: Make, es: AsyncElasticsearch, harness: Harness
) -> None:
    channel = webhook(f"http://127.0.0.1:{closed_port()}/hook")
    notifier = await make_notifier(channel, retries=3, backoff_base=1.0, backoff_max=3.0)
    notifier.notify([alert()])
    [record] = await finished(notifier, es, outcome="failed")

    assert record["delivery"]["attempts"] == 4  # the first attempt and three retries
    assert "Connect" in record["delivery"]["error"]
    assert "status" not in record["delivery"]
    # Exponential, jitter 0.5 → 3/4 of 1, 2, then 4 capped at 3.
    assert harness.sleeps == [0.75, 1.5, 2.25]
    assert counted(channel.name, "failed") == 1


async def test_backoff_stays_between_half_and_all_of_the_capped_exponential(es: AsyncElasticsearch) -> None:
    settings = NotificationSettings(backoff_base=1.0, backoff_max=300.0)
    low = Notifier(settings, es, "unused", jitter=lambda: 0.0)
    high = Notifier(settings, es, "unused", jitter=lambda: 1.0)
    try:
        assert [low.backoff(n) for n in (1, 2, 3, 10, 40)] == [0.5, 1.0, 2.0, 150.0, 150.0]
        assert [high.backoff(n) for n in (1, 2, 3, 10, 40)] == [1.0, 2.0, 4.0, 300.0, 300.0]
        assert high.backoff(1, retry_after=1000.0) == 300.0  # a Retry-After is capped too
    finally:
        await low.aclose()
        await high.aclose()


# -- email ---------------------------------------------------------------------------------


@pytest.fixture
def smtp_server() -> Any:
    inbox = Inbox()
    controller = LoopbackController(inbox, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


async def test_email_arrives_with_the_subject_and_fields(
    make_notifier: Make, es: AsyncElasticsearch, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    channel = EmailChannel(
        name=unique("mail"),
        type="email",
        smtp_host="127.0.0.1",
        smtp_port=port,
        starttls=False,
        sender="secmon@example.org",
        recipients=["soc@example.org", "oncall@example.org"],
        agency="agency-a",
    )
    notifier = await make_notifier(channel)
    sent = alert()
    notifier.notify([sent, alert(agency="agency-b")])  # the second is another agency's
    [record] = await finished(notifier, es)

    [message] = inbox.messages
    assert message["Subject"] == "[secmon HIGH] SSH brute force on web-01"
    assert message["From"] == "secmon@example.org"
    assert inbox.envelopes == [("secmon@example.org", ["soc@example.org", "oncall@example.org"])]
    text = message.get_content()
    expected_lines = [
        "Level:      HIGH",
        "Rule:       SSH brute force (rule-ssh-brute)",
        "Host:       web-01",
        "User:       root",
        "Source IP:  203.0.113.7",
        "Agency:     agency-a",
        "First seen: 2025-06-15T10:00:00.000Z",
        "Last seen:  2025-06-15T10:04:00.000Z",
        "Count:      12",
    ]
    assert [line for line in text.splitlines() if line in expected_lines] == expected_lines
    assert "Many failed SSH logins" in text
    assert record["delivery"]["type"] == "email"
    assert record["delivery"]["outcome"] == "delivered"
    assert record["alert"]["id"] == sent["alert"]["id"]


async def test_an_email_server_that_is_down_is_retried_then_failed(
    make_notifier: Make, es: AsyncElasticsearch, harness: Harness
) -> None:
    channel = EmailChannel(
        name=unique("mail"),
        type="email",
        smtp_host="127.0.0.1",
        smtp_port=closed_port(),
        starttls=False,
        sender="s@example.org",
        recipients=["r@example.org"],
    )
    notifier = await make_notifier(channel, retries=1)
    notifier.notify([alert()])
    [record] = await finished(notifier, es)
    assert record["delivery"]["outcome"] == "failed"
    assert record["delivery"]["attempts"] == 2
    assert "ConnectionRefused" in record["delivery"]["error"]
    assert len(harness.sleeps) == 1


# -- send_test, queue, records -------------------------------------------------------------


async def test_send_test_delivers_a_sample_now_whatever_the_filter(make_notifier: Make, es: AsyncElasticsearch) -> None:
    async with WebhookReceiver() as receiver:
        channel = webhook(receiver.url, agency="agency-a", filter=ChannelFilter(levels=["critical"]))
        failing = webhook(receiver.url)
        notifier = await make_notifier(channel, failing, run=False)

        result = await notifier.send_test(channel.name)
        receiver.fail(500)
        failed = await notifier.send_test(failing.name, alert())
        with pytest.raises(UnknownChannelError):
            await notifier.send_test("no-such-channel")

    assert result.delivered and result.attempts == 1 and result.test
    assert failed.outcome == "failed" and failed.attempts == 1 and failed.status == 500  # one attempt, no retry
    payload = orjson.loads(receiver.requests[0].body)
    assert payload["rule"]["id"] == "secmon-test"
    assert payload["organization"] == {"id": "agency-a"}  # the channel's agency, as its real alerts carry
    await es.indices.refresh(index=notifier.index)
    [record] = await notifier.deliveries(channel=channel.name)
    assert record["delivery"]["test"] is True
    assert record["delivery"]["id"] == result.id


async def test_a_full_queue_drops_and_counts_without_blocking(make_notifier: Make, es: AsyncElasticsearch) -> None:
    async with WebhookReceiver() as receiver:
        channel = webhook(receiver.url)
        notifier = await make_notifier(channel, run=False, queue_size=2)

        notifier.notify([alert() for _ in range(5)])  # synchronous: returns at once with no worker running

        assert notifier.pending == 2
        assert notifier.dropped == 3
        assert counted(channel.name, "dropped") == 3
        worker = start(notifier)
        try:
            records = await finished(notifier, es)
        finally:
            await stop(worker)

    assert len(receiver.requests) == 2
    assert [r["delivery"]["outcome"] for r in records] == ["delivered", "delivered"]
    assert notifier.pending == 0


async def test_deliveries_are_newest_first_and_filtered(make_notifier: Make, es: AsyncElasticsearch) -> None:
    async with WebhookReceiver() as receiver:
        channel = webhook(receiver.url)
        notifier = await make_notifier(channel, concurrency=1)
        alerts = [alert() for _ in range(3)]
        receiver.fail(403)
        for sent in alerts:  # one at a time, so they finish in order
            notifier.notify([sent])
            await asyncio.wait_for(notifier.join(), 30)
        records = await finished(notifier, es)

    assert [r["alert"]["id"] for r in records] == [a["alert"]["id"] for a in reversed(alerts)]
    assert [r["alert"]["id"] for r in await notifier.deliveries(outcome="failed")] == [alerts[0]["alert"]["id"]]
    assert len(await notifier.deliveries(alert_id=alerts[1]["alert"]["id"])) == 1
    assert len(await notifier.deliveries(size=2)) == 2
    assert await notifier.deliveries(channel="another") == []


async def test_the_index_is_strict_and_ensure_index_is_idempotent(make_notifier: Make, es: AsyncElasticsearch) -> None:
    notifier = await make_notifier(run=False)
    await notifier.ensure_index()
    mapping = (await es.indices.get_mapping(index=notifier.index)).body[notifier.index]["mappings"]
    assert mapping["dynamic"] == "strict"
    settings = (await es.indices.get_settings(index=notifier.index)).body[notifier.index]["settings"]["index"]
    assert settings["number_of_shards"] == "1"


async def test_deliveries_of_a_missing_index_are_empty(es: AsyncElasticsearch, names: IndexNames) -> None:
    notifier = Notifier(NotificationSettings(), es, f"{names.prefix}-notifications-missing")
    try:
        assert await notifier.deliveries() == []
    finally:
        await notifier.aclose()


def test_the_counter_can_join_another_registry() -> None:
    registry = CollectorRegistry()
    register_metrics(registry)
    register_metrics(registry)  # harmless twice
    assert any(metric.name == "secmon_notifications" for metric in registry.collect())


def test_public_surface_is_listed() -> None:
    import secmon.notify

    assert all(hasattr(secmon.notify, name) for name in secmon.notify.__all__)
    assert {"Notifier", "NotificationSettings", "DeliveryResult", "verify_signature"} <= set(secmon.notify.__all__)


def test_a_webhook_body_is_the_alert_plus_the_channel() -> None:
    from secmon.notify.webhook import webhook_body

    sent: Mapping[str, Any] = alert()
    assert orjson.loads(webhook_body(sent, "c")) == {**sent, "secmon": {"channel": "c"}}

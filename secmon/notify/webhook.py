"""Webhook channel: each alert is POSTed as JSON, signed with HMAC-SHA256 when the channel has a secret.

The body is the alert document plus ``{"secmon": {"channel": <name>}}``. Every request carries

* ``X-Secmon-Timestamp``: Unix seconds when this attempt was made (each retry has its own);
* ``X-Secmon-Delivery``: the delivery id, the same on every retry of one delivery, so a
  receiver can drop a retry of a request it already handled;
* ``X-Secmon-Signature: sha256=<hex>`` when a secret is set: the HMAC-SHA256, keyed with the
  secret, of the timestamp, a dot and the raw body bytes.

A receiver verifies a request like this, on the raw body bytes before parsing them::

    import hashlib, hmac, time

    def verify(secret: bytes, timestamp: str, body: bytes, signature: str, tolerance: int = 300) -> bool:
        expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(timestamp)) <= tolerance   # the replay window
        return fresh and hmac.compare_digest(expected, signature)

The signature proves the request came from a holder of the secret and was not altered; the
timestamp inside it bounds replays to the window (five minutes is usual; keep the receiver's
clock synchronised). :func:`verify_signature` is that recipe.

Outcomes: 2xx is delivered. 408, 429 and 5xx, timeouts and network errors are retried
(a ``Retry-After`` on 429 and 503 sets the wait, within ``backoff_max``); any other status is
failed at once, since sending the same request again would get the same answer.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from secmon import __version__
from secmon.notify.config import WebhookChannel
from secmon.notify.deliveries import Attempt

RETRYABLE_STATUSES = frozenset({408, 429})  # and every 5xx
RETRY_AFTER_STATUSES = frozenset({429, 503})
MAX_ERROR_BODY = 500  # characters of the receiver's answer kept in the error text


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Secmon-Signature`` value of ``body`` sent at ``timestamp``."""
    return "sha256=" + hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes, timestamp: str, body: bytes, received: str, *, now: float, tolerance: float = 300.0
) -> bool:
    """True when ``received`` signs ``body`` at ``timestamp`` and the timestamp is within ``tolerance`` of ``now``."""
    try:
        fresh = abs(now - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(signature(secret, timestamp, body), received)


def webhook_body(alert: Mapping[str, Any], channel: str) -> bytes:
    """The JSON body posted for ``alert``."""
    return orjson.dumps({**alert, "secmon": {"channel": channel}}, default=str)


class WebhookSender:
    """Posts alerts to one webhook channel over a shared HTTP client."""

    def __init__(self, channel: WebhookChannel, client: httpx.AsyncClient, timeout: float) -> None:
        self.channel = channel
        self.client = client
        self.timeout = timeout
        self._secret = channel.secret.get_secret_value().encode("utf-8") if channel.secret else None

    async def send(self, alert: Mapping[str, Any], *, delivery_id: str, now: float) -> Attempt:
        """One POST of ``alert``; never raises for an HTTP or network failure."""
        try:
            body = webhook_body(alert, self.channel.name)
        except TypeError as exc:  # orjson: a value it cannot encode even as str (e.g. a non-str key)
            return Attempt(False, error=f"alert cannot be encoded as JSON: {exc}")
        timestamp = str(int(now))
        headers = {
            **self.channel.headers,
            "Content-Type": "application/json",
            "User-Agent": f"secmon/{__version__}",
            "X-Secmon-Timestamp": timestamp,
            "X-Secmon-Delivery": delivery_id,
        }
        if self._secret is not None:
            headers["X-Secmon-Signature"] = signature(self._secret, timestamp, body)
        try:
            response = await self.client.post(self.channel.url, content=body, headers=headers, timeout=self.timeout)
        except httpx.TimeoutException as exc:
            return Attempt(False, retryable=True, error=f"timed out: {type(exc).__name__}")
        except httpx.TransportError as exc:
            return Attempt(False, retryable=True, error=f"{type(exc).__name__}: {exc}".rstrip(": "))
        status = response.status_code
        if 200 <= status < 300:
            return Attempt(True, status=status)
        retryable = status >= 500 or status in RETRYABLE_STATUSES
        retry_after = (
            parse_retry_after(response.headers.get("Retry-After"), now) if status in RETRY_AFTER_STATUSES else None
        )
        text = response.text[:MAX_ERROR_BODY].strip()
        error = f"HTTP {status} {response.reason_phrase}".rstrip() + (f": {text}" if text else "")
        return Attempt(False, retryable=retryable, error=error, status=status, retry_after=retry_after)

    async def aclose(self) -> None:
        """Nothing to close: the HTTP client belongs to the notifier."""


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)

"""Email channel: each alert is a plain-text message sent over SMTP (stdlib smtplib, in a thread).

The subject reads ``[secmon HIGH] <rule title> on <host>``; the body lists the level, rule,
host, user, source, agency, first and last seen and count. STARTTLS (with the certificate
verified) and login are used when the channel configures them.

Outcomes: the server accepting the message for at least one recipient is delivered. SMTP 4xx
replies, a dropped connection, timeouts and network errors are retried; 5xx replies (a refused
sender, recipients or login) and a server without STARTTLS are failed at once.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from secmon.events import get_field
from secmon.notify.config import EmailChannel
from secmon.notify.deliveries import Attempt


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


def subject(alert: Mapping[str, Any]) -> str:
    """``[secmon HIGH] <rule title> on <host>`` (without `` on ...`` when the alert has no host)."""
    level = _one_line(get_field(alert, "rule.level") or "unknown").upper()
    title = _one_line(get_field(alert, "rule.title") or alert.get("message") or "alert")
    host = get_field(alert, "host.name")
    return f"[secmon {level}] {title}" + (f" on {_one_line(host)}" if host else "")


def body(alert: Mapping[str, Any]) -> str:
    """The plain-text body: the alert's fields an analyst reads first, then the rule's description."""
    rule_id = get_field(alert, "rule.id")
    title = get_field(alert, "rule.title") or alert.get("message") or ""
    techniques = get_field(alert, "threat.technique.id")
    rows = [
        ("Level", str(get_field(alert, "rule.level") or "").upper()),
        ("Rule", f"{title} ({rule_id})" if rule_id else title),
        ("Host", get_field(alert, "host.name")),
        ("User", get_field(alert, "user.name")),
        ("Source IP", get_field(alert, "source.ip")),
        ("Agency", get_field(alert, "organization.id")),
        ("First seen", get_field(alert, "alert.first_seen")),
        ("Last seen", get_field(alert, "alert.last_seen")),
        ("Count", get_field(alert, "alert.count")),
        ("Techniques", ", ".join(map(str, techniques)) if isinstance(techniques, list) else techniques),
        ("Alert id", get_field(alert, "alert.id")),
    ]
    lines = [f"secmon alert: {_one_line(title)}", ""]
    lines += [f"{name + ':':<12}{_one_line(value)}" for name, value in rows if value not in (None, "", [])]
    description = get_field(alert, "rule.description")
    if description:
        lines += ["", str(description).strip()]
    return "\n".join(lines) + "\n"


class EmailSender:
    """Sends alerts to one email channel, one SMTP session per message."""

    def __init__(self, channel: EmailChannel, timeout: float) -> None:
        self.channel = channel
        self.timeout = timeout

    def message(self, alert: Mapping[str, Any], *, delivery_id: str, now: float) -> EmailMessage:
        """The message sent for ``alert``."""
        message = EmailMessage()
        message["Subject"] = subject(alert)
        message["From"] = self.channel.sender
        message["To"] = ", ".join(self.channel.recipients)
        message["Date"] = formatdate(now, usegmt=True)
        message["Message-ID"] = make_msgid("secmon")
        message["X-Secmon-Delivery"] = delivery_id
        message["X-Secmon-Channel"] = self.channel.name
        message.set_content(body(alert))
        return message

    async def send(self, alert: Mapping[str, Any], *, delivery_id: str, now: float) -> Attempt:
        """One SMTP session delivering ``alert``; never raises for an SMTP or network failure."""
        try:
            message = self.message(alert, delivery_id=delivery_id, now=now)
        except ValueError as exc:  # a header the email package refuses (e.g. a malformed address)
            return Attempt(False, error=f"message cannot be built: {exc}")
        return await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> Attempt:
        channel = self.channel
        try:
            with smtplib.SMTP(channel.smtp_host, channel.smtp_port, timeout=self.timeout) as smtp:
                if channel.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if channel.username:
                    password = channel.password.get_secret_value() if channel.password else ""
                    smtp.login(channel.username, password)
                refused = smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            return smtp_failure(exc)
        if refused:
            partial = ", ".join(f"{to} ({code})" for to, (code, _) in refused.items())
            return Attempt(True, status=250, error=f"some recipients refused: {partial}")
        return Attempt(True, status=250)

    async def aclose(self) -> None:
        """Nothing to close: each message has its own SMTP session."""


def smtp_failure(exc: smtplib.SMTPException | OSError) -> Attempt:
    """The attempt an SMTP error makes: 4xx and network errors are worth a retry, 5xx is final."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        error = "recipients refused: " + ", ".join(f"{to} ({code})" for to, (code, _) in exc.recipients.items())
        return Attempt(False, retryable=any(400 <= code < 500 for code in codes), error=error, status=max(codes))
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return Attempt(False, error=f"SMTP server does not support it: {exc}")
    if isinstance(exc, smtplib.SMTPResponseException):  # sender, login or data refused, 421 ...
        code, reply = exc.smtp_code, exc.smtp_error
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return Attempt(False, retryable=code < 500, error=f"SMTP {code}: {text}", status=code)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Attempt(False, error=f"TLS certificate not trusted: {exc.verify_message}")
    # Disconnected, connection refused, timed out, TLS handshake failed: the next try may work.
    return Attempt(False, retryable=True, error=f"{type(exc).__name__}: {exc}".rstrip(": "))

"""Configuration of alert notifications: the channels, what each receives, and the delivery worker.

A channel is keyed by ``name`` and typed by ``type`` (``webhook`` or ``email``), the same
string as the module that delivers it::

    notifications:
      channels:
        - name: soc-webhook
          type: webhook
          url: https://hooks.example/secmon
          secret: change-me
          filter: {levels: [high, critical]}
        - name: agency-a-mail
          type: email
          agency: agency-a          # only alerts whose organization.id is agency-a
          smtp_host: mail.example
          sender: secmon@example
          recipients: [soc-a@example]
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Level = Literal["informational", "low", "medium", "high", "critical"]  # Sigma's rule levels

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Headers secmon sets itself on every webhook request; a channel may not replace them.
RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "x-secmon-timestamp", "x-secmon-signature", "x-secmon-delivery"}
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelFilter(_Section):
    """Which alerts a channel receives. Every list that is not empty must match; an empty list matches any alert."""

    levels: list[Level] = Field(default_factory=list, description="Rule levels to send, e.g. [high, critical].")
    rules: list[str] = Field(default_factory=list, description="Rule ids (rule.id) to send.")
    tags: list[str] = Field(
        default_factory=list,
        description="Tags (e.g. attack.t1110); an alert matches when any of its tags is listed (case-insensitive).",
    )
    agencies: list[str] = Field(default_factory=list, description="Agencies (organization.id) to send.")


class _Channel(_Section):
    name: str = Field(
        ...,
        pattern=_NAME,
        description="Unique name of the channel, used in logs, metrics, delivery records and the API.",
    )
    agency: str | None = Field(
        None,
        description="Agency (organization.id) this channel belongs to: it receives only that agency's alerts. "
        "Empty: a global channel that receives every agency's alerts.",
    )
    filter: ChannelFilter = Field(default_factory=ChannelFilter, description="Which alerts the channel receives.")


class WebhookChannel(_Channel):
    """An HTTP endpoint that receives each alert as a JSON POST, signed with HMAC-SHA256 when a secret is set."""

    type: Literal["webhook"] = Field(..., description="webhook: a JSON POST per alert.")
    url: str = Field(..., description="URL the alerts are posted to (http:// or https://).")
    secret: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 key: when set, each request carries X-Secmon-Signature so the receiver can "
        "check it came from secmon and was not altered or replayed.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra request headers, e.g. {Authorization: Bearer ...}; secmon's own headers cannot be replaced.",
    )

    @field_validator("url")
    @classmethod
    def _url_has_scheme(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("headers")
    @classmethod
    def _headers_are_valid(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"{name} is set by secmon itself")
            if "\r" in text or "\n" in text:
                raise ValueError(f"the value of {name} contains a line break")
        return value


class EmailChannel(_Channel):
    """Mailboxes that receive each alert as a plain-text email over SMTP."""

    type: Literal["email"] = Field(..., description="email: a plain-text message per alert.")
    smtp_host: str = Field(..., min_length=1, description="SMTP server (relay or submission server).")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port: 587 for submission, 25 for a relay.")
    starttls: bool = Field(
        True, description="Upgrade the connection with STARTTLS (certificate verified) before sending."
    )
    username: str | None = Field(None, description="SMTP login user; empty: no login.")
    password: SecretStr | None = Field(None, description="SMTP login password.")
    sender: str = Field(..., min_length=3, description="From address, e.g. secmon@example.org.")
    recipients: list[str] = Field(..., min_length=1, description="To addresses.")

    @model_validator(mode="after")
    def _password_needs_username(self) -> EmailChannel:
        if self.password is not None and not self.username:
            raise ValueError("password is set but username is not")
        return self


ChannelSettings = Annotated[WebhookChannel | EmailChannel, Field(discriminator="type")]


class NotificationSettings(_Section):
    """Where alert notifications go, and how the delivery worker retries them."""

    channels: list[ChannelSettings] = Field(
        default_factory=list, description="Notification channels; each new alert goes to every channel it matches."
    )
    retries: int = Field(5, ge=0, le=50, description="Retries after a failed attempt before a delivery is failed.")
    backoff_base: float = Field(
        1.0, gt=0, description="Seconds before the first retry; doubles with each retry (with jitter)."
    )
    backoff_max: float = Field(
        300.0, gt=0, description="Longest wait between attempts in seconds, also the cap on a Retry-After."
    )
    timeout: float = Field(
        10.0, gt=0, description="Seconds one delivery attempt (HTTP request, SMTP session) may take."
    )
    queue_size: int = Field(
        10_000,
        ge=1,
        description="Deliveries waiting or being retried at most; beyond it new ones are dropped and counted.",
    )
    concurrency: int = Field(4, ge=1, le=256, description="Delivery attempts under way at once.")

    @field_validator("channels")
    @classmethod
    def _names_are_unique(cls, value: list[WebhookChannel | EmailChannel]) -> list[WebhookChannel | EmailChannel]:
        seen: set[str] = set()
        for channel in value:
            if channel.name in seen:
                raise ValueError(f"channel name {channel.name!r} is used twice")
            seen.add(channel.name)
        return value

    @model_validator(mode="after")
    def _backoff_base_within_max(self) -> NotificationSettings:
        if self.backoff_base > self.backoff_max:
            raise ValueError("backoff_base is greater than backoff_max")
        return self

    def channel(self, name: str) -> WebhookChannel | EmailChannel | None:
        """The channel called ``name``, or None."""
        return next((channel for channel in self.channels if channel.name == name), None)

"""Notification channels (webhook, email): which exist, what was delivered or failed, a test send."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from secmon.api.deps import AdminKey, AnalystKey, ServicesDep
from secmon.api.problems import SERVICE_UNAVAILABLE
from secmon.api.services import ApiServices
from secmon.notify import Notifier, UnknownChannelError, WebhookChannel
from secmon.serving.problems import NOT_FOUND, Problem

router = APIRouter(prefix="/notifications", tags=["notifications"])


class ChannelOut(BaseModel):
    name: str
    type: str
    agency: str | None = Field(None, description="Only this agency's alerts; null: every agency's.")
    target: str = Field(description="Where it sends: the webhook's host, or the email recipients.")
    filter: dict[str, list[str]]


class DeliveryTestOut(BaseModel):
    channel: str
    delivered: bool
    attempts: int
    status: int | None = None
    error: str | None = None


@router.get("/channels", response_model=list[ChannelOut])
async def list_channels(services: ServicesDep, key: AnalystKey) -> list[ChannelOut]:
    """The configured channels your agencies' alerts may go to (never their secrets)."""
    channels = []
    for channel in services.settings.notifications.channels:
        if key.scope is not None and channel.agency is not None and channel.agency not in key.scope:
            continue
        target = urlsplit(channel.url).netloc if isinstance(channel, WebhookChannel) else ", ".join(channel.recipients)
        channels.append(
            ChannelOut(
                name=channel.name,
                type=channel.type,
                agency=channel.agency,
                target=target,
                filter={name: [str(v) for v in values] for name, values in channel.filter.model_dump().items()},
            )
        )
    return channels


@router.get("/deliveries", response_model=list[dict[str, Any]])
async def list_deliveries(
    *,
    services: ServicesDep,
    key: AnalystKey,
    alert_id: Annotated[str | None, Query(max_length=200)] = None,
    channel: Annotated[str | None, Query(max_length=200)] = None,
    outcome: Literal["delivered", "failed"] | None = None,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """Recent deliveries, newest first: failed ones say why (the last error) after how many attempts."""
    notifier = _notifier(services)
    return await notifier.deliveries(alert_id, channel, outcome, size, agencies=key.scope)


@router.post("/channels/{name}/test", response_model=DeliveryTestOut)
async def test_channel(
    services: ServicesDep, key: AdminKey, name: Annotated[str, Path(max_length=200)]
) -> DeliveryTestOut:
    """Send a sample alert through one channel now, once, and say what happened."""
    try:
        result = await _notifier(services).send_test(name)
    except UnknownChannelError:
        raise Problem(NOT_FOUND, f"no notification channel {name}; see GET /notifications/channels") from None
    return DeliveryTestOut(
        channel=name, delivered=result.delivered, attempts=result.attempts, status=result.status, error=result.error
    )


def _notifier(services: ApiServices) -> Notifier:
    if services.notifier is None:
        raise Problem(
            SERVICE_UNAVAILABLE, "notifications are not running in this process: start secmon up, or secmon api"
        )
    return services.notifier

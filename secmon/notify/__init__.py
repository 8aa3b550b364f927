"""Alert notifications: new alerts matched to webhook and email channels, delivered with retries.

secmon.notify
├── config      NotificationSettings and the channel models (webhook, email) with their filters
├── filters     each channel's filter compiled once into a predicate
├── webhook     signed JSON POSTs (the module docstring shows how a receiver verifies them)
├── email       plain-text messages over SMTP
├── deliveries  attempt and delivery outcomes, and the index that records them
└── notifier    Notifier: the hot-path queue, the worker, send_test and deliveries
"""

from secmon.notify.config import ChannelFilter, ChannelSettings, EmailChannel, NotificationSettings, WebhookChannel
from secmon.notify.deliveries import Attempt, DeliveryResult
from secmon.notify.notifier import (
    NOTIFICATIONS,
    NotificationError,
    Notifier,
    UnknownChannelError,
    register_metrics,
    sample_alert,
)
from secmon.notify.webhook import signature, verify_signature

__all__ = [
    "NOTIFICATIONS",
    "Attempt",
    "ChannelFilter",
    "ChannelSettings",
    "DeliveryResult",
    "EmailChannel",
    "NotificationError",
    "NotificationSettings",
    "Notifier",
    "UnknownChannelError",
    "WebhookChannel",
    "register_metrics",
    "sample_alert",
    "signature",
    "verify_signature",
]

"""Delivery outcomes: what one attempt did, what a delivery ended as, and the index that records them.

Every delivery's final outcome (delivered, or failed after N attempts with the last error) is
one document in the notifications index, whose id is the delivery id: a replayed alert sent
again overwrites its record instead of adding a second one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from elasticsearch import AsyncElasticsearch, NotFoundError

from secmon.timestamps import epoch_to_iso_millis

DeliveryOutcome = Literal["delivered", "failed"]

# dynamic: strict, so a record of the wrong shape is refused instead of growing the mapping.
_KEYWORD = {"type": "keyword", "ignore_above": 1024}
NOTIFICATIONS_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "@timestamp": {"type": "date"},
        "delivery": {
            "properties": {
                "id": _KEYWORD,
                "channel": _KEYWORD,
                "type": _KEYWORD,
                "outcome": _KEYWORD,
                "attempts": {"type": "integer"},
                "status": {"type": "integer"},
                "error": {"type": "text", "fields": {"keyword": _KEYWORD}},
                "started": {"type": "date"},
                "test": {"type": "boolean"},
            }
        },
        "alert": {"properties": {"id": _KEYWORD}},
        "rule": {"properties": {"id": _KEYWORD, "title": _KEYWORD, "level": _KEYWORD}},
        "organization": {"properties": {"id": _KEYWORD}},
    },
}
NOTIFICATIONS_SETTINGS: dict[str, Any] = {"number_of_shards": 1, "auto_expand_replicas": "0-1"}
MAX_ERROR_CHARS = 2000  # a long error page is cut: the record says what failed, not all of it


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one delivery attempt did: delivered, or failed and whether trying again may help."""

    delivered: bool
    retryable: bool = False
    error: str | None = None
    status: int | None = None  # HTTP status, or SMTP reply code
    retry_after: float | None = None  # seconds the receiver asked to wait (Retry-After)


class Sender(Protocol):
    """Delivers one alert over one channel's protocol; one class per channel ``type``.

    ``send`` never raises for a failure of the receiver or the network: it returns an
    :class:`Attempt` saying whether a retry may succeed.
    """

    async def send(self, alert: Mapping[str, Any], *, delivery_id: str, now: float) -> Attempt: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The final outcome of delivering one alert to one channel."""

    id: str
    channel: str
    type: str
    alert_id: str
    outcome: DeliveryOutcome
    attempts: int
    error: str | None
    status: int | None
    started: float
    finished: float
    rule_id: str | None = None
    rule_title: str | None = None
    level: str | None = None
    agency: str | None = None
    test: bool = False

    @property
    def delivered(self) -> bool:
        return self.outcome == "delivered"

    def document(self) -> dict[str, Any]:
        """The record stored in the notifications index."""
        delivery: dict[str, Any] = {
            "id": self.id,
            "channel": self.channel,
            "type": self.type,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "started": epoch_to_iso_millis(self.started),
            "test": self.test,
        }
        if self.status is not None:
            delivery["status"] = self.status
        if self.error is not None:
            delivery["error"] = self.error[:MAX_ERROR_CHARS]
        rule_fields = (("id", self.rule_id), ("title", self.rule_title), ("level", self.level))
        rule = {key: value for key, value in rule_fields if value is not None}
        document: dict[str, Any] = {
            "@timestamp": epoch_to_iso_millis(self.finished),
            "delivery": delivery,
            "alert": {"id": self.alert_id},
        }
        if rule:
            document["rule"] = rule
        if self.agency is not None:
            document["organization"] = {"id": self.agency}
        return document


class DeliveryLog:
    """The notifications index: one record per finished delivery, newest first when read."""

    def __init__(self, client: AsyncElasticsearch, index: str) -> None:
        self.client = client
        self.index = index

    async def ensure_index(self) -> None:
        """Create the index with its strict mapping, or bring it up to date; safe at every start."""
        # Imported here: the configuration loads this package, and secmon.store loads the configuration.
        from secmon.store.indices import ensure_index

        await ensure_index(self.client, self.index, NOTIFICATIONS_MAPPING, NOTIFICATIONS_SETTINGS)

    async def record(self, result: DeliveryResult) -> None:
        """Store ``result`` under its delivery id (raises the client's errors)."""
        await self.client.index(index=self.index, id=result.id, document=result.document())

    async def search(
        self,
        *,
        alert_id: str | None = None,
        channel: str | None = None,
        outcome: str | None = None,
        agencies: Sequence[str] | None = None,
        size: int = 50,
    ) -> list[dict[str, Any]]:
        """Recent records, newest first, optionally of one alert, channel or outcome, or of ``agencies`` only."""
        filters: list[dict[str, Any]] = []
        for field, value in (("alert.id", alert_id), ("delivery.channel", channel), ("delivery.outcome", outcome)):
            if value is not None:
                filters.append({"term": {field: value}})
        if agencies is not None:
            filters.append({"terms": {"organization.id": list(agencies)}})
        try:
            response = await self.client.search(
                index=self.index,
                query={"bool": {"filter": filters}},
                sort=[{"@timestamp": "desc"}, {"delivery.started": "desc"}],
                size=max(0, min(size, 10_000)),
            )
        except NotFoundError:
            return []  # nothing was ever delivered (or ensure_index was not run)
        return [dict(hit["_source"]) for hit in response.body["hits"]["hits"]]

"""What the API answers and accepts, apart from how documents are stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from secmon.triage.workflow import MAX_NOTE_CHARS, Resolution, Status


class RuleRef(BaseModel):
    id: str
    title: str | None = None
    level: str | None = None
    type: str | None = Field(None, description="sigma, or correlation.<type>")


class Note(BaseModel):
    at: datetime
    by: str
    text: str


# What AlertSummary reads of a stored alert: the list asks Elasticsearch for these only.
SUMMARY_FIELDS = ("@timestamp", "alert.id", "alert.status", "alert.resolution", "alert.assignee", "alert.tags",
                  "alert.count", "alert.first_seen", "alert.last_seen", "alert.updated", "alert.updated_by",
                  "alert.group", "rule.id", "rule.title", "rule.level", "rule.type", "tags", "threat.technique.id",
                  "organization.id", "host.name", "user.name", "source.ip")  # fmt: skip


class AlertSummary(BaseModel):
    """An alert as the list shows it.

    ``agency``, ``host``, ``user`` and ``source_ip`` are the ECS fields ``organization.id``,
    ``host.name``, ``user.name`` and ``source.ip`` of the alert, which is what the CLI's columns
    are named; ``group`` says what a correlation counted its events by.
    """

    id: str
    status: str
    resolution: str | None = None
    assignee: str | None = None
    tags: list[str] = Field(default_factory=list, description="The analysts' tags (the rule's are in rule_tags).")
    rule: RuleRef
    rule_tags: list[str] = Field(default_factory=list)
    techniques: list[str] = Field(default_factory=list, description="ATT&CK technique ids.")
    count: int = Field(1, description="Hits grouped into this alert.")
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    agency: str | None = Field(None, description="organization.id: the agency the events came from.")
    host: str | None = Field(None, description="host.name of the events.")
    user: str | None = Field(None, description="user.name of the events.")
    source_ip: str | None = Field(None, description="source.ip of the events (an attacker's address, say).")
    group: dict[str, str] = Field(
        default_factory=dict,
        description="A correlation's group-by values by ECS field, e.g. {'source.ip': '203.0.113.9'};"
        " empty for the alert of a single rule.",
    )
    updated: datetime | None = None
    updated_by: str | None = None

    @classmethod
    def of(cls, document: dict[str, Any]) -> AlertSummary:
        return cls(**_summary_fields(document))


class AlertDetail(AlertSummary):
    """An alert with its notes, its triggering events and the full stored document."""

    notes: list[Note] = Field(default_factory=list)
    description: str | None = None
    references: list[str] = Field(default_factory=list)
    events: list[dict[str, Any]] = Field(default_factory=list, description="The stored events that raised it.")
    document: dict[str, Any] = Field(description="The alert as stored.")

    @classmethod
    def of_document(cls, document: dict[str, Any], events: list[dict[str, Any]]) -> AlertDetail:
        rule = document.get("rule") or {}
        return cls(
            **_summary_fields(document),
            notes=[Note(**note) for note in document.get("notes") or []],
            description=rule.get("description"),
            references=list(rule.get("references") or []),
            events=events,
            document=document,
        )


class AlertPageOut(BaseModel):
    alerts: list[AlertSummary]
    total: int = Field(description="Matching alerts; a lower bound when total_is_exact is false.")
    total_is_exact: bool
    next_cursor: str | None = Field(None, description="Pass as cursor= for the next page; null on the last.")


class TriageIn(BaseModel):
    """A triage change; fields left out are not changed."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    resolution: Resolution | None = Field(None, description="Required when closing.")
    assignee: str | None = Field(None, max_length=200, description="An empty string unassigns.")
    add_tags: list[str] = Field(default_factory=list, max_length=50)
    remove_tags: list[str] = Field(default_factory=list, max_length=50)
    note: str | None = Field(None, max_length=MAX_NOTE_CHARS)


class BulkTriageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(min_length=1, max_length=1000)
    change: TriageIn


class BulkOutcome(BaseModel):
    id: str
    ok: bool
    status: int = Field(description="What a single update of this alert would have answered: 200, 404 or 409.")
    detail: str | None = None
    alert: AlertSummary | None = None


class BulkTriageOut(BaseModel):
    updated: int
    failed: int
    results: list[BulkOutcome]


class AuditEntry(BaseModel):
    at: datetime = Field(alias="@timestamp")
    actor: dict[str, str]
    action: str
    changes: list[dict[str, Any]]

    model_config = ConfigDict(populate_by_name=True)


class BucketOut(BaseModel):
    key: str
    count: int


class AlertStatsOut(BaseModel):
    total: int
    by: dict[str, list[BucketOut]]
    timeline: list[BucketOut]


class EventPageOut(BaseModel):
    events: list[dict[str, Any]]
    total: int
    total_is_exact: bool
    next_cursor: str | None = None


def _summary_fields(document: dict[str, Any]) -> dict[str, Any]:
    alert, rule = document.get("alert") or {}, document.get("rule") or {}
    return {
        "id": alert.get("id", ""),
        "status": alert.get("status", "open"),
        "resolution": alert.get("resolution"),
        "assignee": alert.get("assignee"),
        "tags": list(alert.get("tags") or []),
        "rule": RuleRef(
            id=str(rule.get("id", "")), title=rule.get("title"), level=rule.get("level"), type=rule.get("type")
        ),
        "rule_tags": list(document.get("tags") or []),
        "techniques": list(((document.get("threat") or {}).get("technique") or {}).get("id") or []),
        "count": int(alert.get("count") or 1),
        "first_seen": alert.get("first_seen") or document.get("@timestamp"),
        "last_seen": alert.get("last_seen"),
        "agency": (document.get("organization") or {}).get("id"),
        "host": (document.get("host") or {}).get("name"),
        "user": (document.get("user") or {}).get("name"),
        "source_ip": (document.get("source") or {}).get("ip"),
        "group": {
            str(entry["field"]): str(entry.get("value"))
            for entry in alert.get("group") or []
            if isinstance(entry, dict) and "field" in entry
        },
        "updated": alert.get("updated"),
        "updated_by": alert.get("updated_by"),
    }

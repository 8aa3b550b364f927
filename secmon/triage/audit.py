"""The audit trail: who changed what, when, from what to what (alerts' triage and rules).

One document per change in ``<prefix>-audit``, a plain index with a strict mapping, written with
``refresh=wait_for`` so that an alert's trail shows a change as soon as the change is answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import AsyncElasticsearch

from secmon.auth import ApiKey
from secmon.errors import StoreError
from secmon.store.indices import ensure_index
from secmon.store.names import IndexNames
from secmon.triage.query import Scope, scoped
from secmon.triage.workflow import FieldChange

_KEYWORD = {"type": "keyword", "ignore_above": 1024}
_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "@timestamp": {"type": "date_nanos"},
        "actor": {"properties": {"id": _KEYWORD, "name": _KEYWORD, "role": _KEYWORD}},
        "action": _KEYWORD,
        "target": {"properties": {"type": _KEYWORD, "id": _KEYWORD}},
        "organization": {"properties": {"id": _KEYWORD}},
        # Values of any type (a status, a list of tags, a note): kept, not searched.
        "changes": {"type": "object", "enabled": False},
    },
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: an API key (id, name and role), or secmon itself."""

    id: str
    name: str
    role: str

    @classmethod
    def of(cls, key: ApiKey) -> Actor:
        return cls(key.id, key.name, key.role.value)


# actor, action, target type, target id, changes, agency
Entry = tuple[Actor, str, str, str, Sequence[FieldChange], str | None]


def audit_index(names: IndexNames) -> str:
    return f"{names.prefix}-audit"


class AuditLog:
    """Records changes and reads them back, per target."""

    def __init__(self, client: AsyncElasticsearch, names: IndexNames) -> None:
        self.client = client
        self.index = audit_index(names)

    async def ensure_index(self) -> None:
        """Create the audit index, or bring its mapping up to date; safe to run at every start."""
        await ensure_index(self.client, self.index, _MAPPING)

    async def record(
        self,
        actor: Actor,
        action: str,
        target_type: str,
        target_id: str,
        changes: Sequence[FieldChange],
        *,
        agency: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Add one entry: ``actor`` did ``action`` to ``target_type`` ``target_id``."""
        await self.record_many([(actor, action, target_type, target_id, changes, agency)], at=at)

    async def record_many(self, entries: Sequence[Entry], *, at: datetime | None = None) -> None:
        """Add several entries in one request."""
        if not entries:
            return
        stamp = (at or datetime.now(UTC)).isoformat(timespec="microseconds")
        operations: list[dict[str, Any]] = []
        for actor, action, target_type, target_id, changes, agency in entries:
            document: dict[str, Any] = {
                "@timestamp": stamp,
                "actor": {"id": actor.id, "name": actor.name, "role": actor.role},
                "action": action,
                "target": {"type": target_type, "id": target_id},
                "changes": [{"field": c.field, "from": c.before, "to": c.after} for c in changes],
            }
            if agency:
                document["organization"] = {"id": agency}
            operations += [{"create": {}}, document]
        response = await self.client.bulk(index=self.index, operations=operations, refresh="wait_for")
        if response["errors"]:
            reasons = {item["create"]["error"]["reason"] for item in response["items"] if "error" in item["create"]}
            raise StoreError(f"Elasticsearch refused audit entries: {'; '.join(sorted(reasons))}")

    async def trail(self, target_type: str, target_id: str, scope: Scope, size: int = 500) -> list[dict[str, Any]]:
        """The entries of one target, oldest first."""
        conditions = [{"term": {"target.type": target_type}}, {"term": {"target.id": target_id}}]
        response = await self.client.search(
            index=self.index,
            query=scoped(conditions, scope),
            sort=[{"@timestamp": "asc"}],
            size=size,
            ignore_unavailable=True,
        )
        return [hit["_source"] for hit in response["hits"]["hits"]]

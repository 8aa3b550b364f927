"""Rule hits → alert documents, with grouping.

Each alert is one document in ``<prefix>-alerts``, created with status ``open``. Hits of the
same rule for the same agency, host and user spanning at most ``window`` seconds (event time,
in whatever order they arrive) are one alert: the first hit creates it, later ones update its
count, ``first_seen``, ``last_seen`` and event ids (partial updates, so an analyst's triage
fields are never overwritten). Alert ids are deterministic (rule id, group key, first event id): a replay of
the same events recreates the same alert, which the writer counts as a duplicate.

Group state is in memory: after a restart the next hit of a group opens a new alert. That
costs one extra alert per active group per restart and keeps nothing on disk to go stale.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from secmon.detection.correlation import CorrelationHit, CorrelationRule
from secmon.detection.fields import event_time
from secmon.detection.rules import Rule, techniques_of
from secmon.events import get_field, set_field
from secmon.store.documents import Document, document_id  # not secmon.store: no Elasticsearch client here
from secmon.timestamps import epoch_to_iso_millis

ALERTS_COMPONENT = "alerts"  # the component of new alert documents, as the writer counts them
ALERT_UPDATES_COMPONENT = "alert-updates"
MAX_EVENT_IDS = 100  # an alert lists at most this many triggering events; the count says how many
MAX_GROUPS = 50_000  # open groups kept; the least recently hit is forgotten first

_COPIED_FIELDS = ("user.name", "user.domain", "source.ip", "destination.ip", "organization.id",
                  "organization.name", "event.dataset")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Trigger:
    """The stored event that matched: its document id, index and content."""

    id: str
    index: str
    source: Mapping[str, Any]


@dataclass(slots=True)
class _Group:
    alert_id: str
    first_seen: float
    last_seen: float
    count: int = 1
    event_ids: list[str] = field(default_factory=list)
    event_indices: list[str] = field(default_factory=list)


class AlertBuilder:
    """Turns hits into alert documents; one instance per pipeline, fed in event order."""

    def __init__(self, alerts_index: str, window: float) -> None:
        self.alerts_index = alerts_index
        self.window = window
        self._groups: OrderedDict[tuple[str, ...], _Group] = OrderedDict()

    def alerts(self, hits: Sequence[tuple[Rule, Trigger]]) -> list[Document]:
        """The documents for a batch of hits: creates for new alerts, one update per grown alert."""
        created: dict[str, Document] = {}
        grown: dict[str, _Group] = {}
        for rule, trigger in hits:
            at = event_time(trigger.source)
            key = group_key(rule, trigger.source)
            group = self._groups.get(key)
            # A hit a little older than the group's first belongs to it too: events of one host
            # reach detection out of order (two collectors, a sender's retry).
            if (
                group is not None
                and self.window > 0
                and max(group.last_seen, at) - min(group.first_seen, at) <= self.window
            ):
                self._groups.move_to_end(key)
                group.count += 1
                group.first_seen = min(group.first_seen, at)
                group.last_seen = max(group.last_seen, at)
                if len(group.event_ids) < MAX_EVENT_IDS:
                    group.event_ids.append(trigger.id)
                    if trigger.index not in group.event_indices:
                        group.event_indices.append(trigger.index)
                pending = created.get(group.alert_id)
                if pending is not None:  # created in this same batch: fold the hit into the creation
                    created[group.alert_id] = self._document(rule, trigger, key, group)
                else:
                    grown[group.alert_id] = group
                continue
            alert_id = document_id("alert", rule.id, *key[1:], trigger.id)
            group = _Group(alert_id, at, at, event_ids=[trigger.id], event_indices=[trigger.index])
            self._groups[key] = group
            self._groups.move_to_end(key)
            while len(self._groups) > MAX_GROUPS:
                self._groups.popitem(last=False)
            created[alert_id] = self._document(rule, trigger, key, group)
        updates = [self._update(alert_id, group) for alert_id, group in grown.items() if alert_id not in created]
        return [*created.values(), *updates]

    def _document(self, rule: Rule, trigger: Trigger, key: tuple[str, ...], group: _Group) -> Document:
        event = trigger.source
        source: dict[str, Any] = {
            "@timestamp": epoch_to_iso_millis(group.first_seen),
            "message": rule.title,
            "alert": {
                "id": group.alert_id,
                "status": "open",
                "count": group.count,
                "first_seen": epoch_to_iso_millis(group.first_seen),
                "last_seen": epoch_to_iso_millis(group.last_seen),
                "group_key": "|".join(key),
            },
            "rule": _rule_fields(rule, "sigma"),
            "tags": list(rule.tags),
            "event": {
                "kind": "alert",
                "created": epoch_to_iso_millis(time.time()),  # when secmon raised it: what "new" means in a queue
                "severity": severity(rule.level),
                "ids": list(group.event_ids),
                "indices": list(group.event_indices),
            },
        }
        if rule.techniques:
            source["threat"] = {"technique": {"id": list(rule.techniques)}}
        host = host_name(event)
        if host:
            source["host"] = {"name": host}
        for name in _COPIED_FIELDS:
            value = get_field(event, name)
            if value is not None:
                set_field(source, name, value)
        return Document(self.alerts_index, group.alert_id, source, component=ALERTS_COMPONENT)

    def correlation_alert(self, hit: CorrelationHit, trigger: Trigger) -> Document:
        """The alert of a fired correlation; ``trigger`` is the event that completed it."""
        group = sorted(hit.group.items())
        key = "|".join(f"{name}={value}" for name, value in group)
        alert_id = document_id("correlation", hit.rule.id, key, hit.event_ids[0], repr(hit.first))
        rule = hit.rule
        source: dict[str, Any] = {
            "@timestamp": epoch_to_iso_millis(hit.first),
            "message": rule.title,
            "alert": {
                "id": alert_id,
                "status": "open",
                "count": len(hit.event_ids),
                "value": hit.value,
                "first_seen": epoch_to_iso_millis(hit.first),
                "last_seen": epoch_to_iso_millis(hit.last),
                "group_key": key,
                # The group-by values field by field, in the rule's order: what the alert is about (an
                # attacker's source.ip ...), also for fields not copied below (destination.port ...).
                "group": [{"field": name, "value": value} for name, value in hit.group.items()],
            },
            "rule": _rule_fields(rule, f"correlation.{rule.type}"),
            "tags": list(rule.tags),
            "event": {
                "kind": "alert",
                "created": epoch_to_iso_millis(time.time()),  # when secmon raised it: what "new" means in a queue
                "severity": severity(rule.level),
                "ids": list(hit.event_ids),
                "indices": [trigger.index],
            },
        }
        techniques = techniques_of(rule.tags)
        if techniques:
            source["threat"] = {"technique": {"id": list(techniques)}}
        for name, value in group:  # the group's values where alerts keep them (source.ip, user.name ...)
            if name in _COPIED_FIELDS or name == "host.name":
                set_field(source, name, value)
        for name in ("organization.id", "organization.name"):
            value = get_field(trigger.source, name)
            if value is not None and get_field(source, name) is None:
                set_field(source, name, value)
        return Document(self.alerts_index, alert_id, source, component=ALERTS_COMPONENT)

    def _update(self, alert_id: str, group: _Group) -> Document:
        partial = {
            "alert": {
                "count": group.count,
                "first_seen": epoch_to_iso_millis(group.first_seen),
                "last_seen": epoch_to_iso_millis(group.last_seen),
            },
            "event": {"ids": list(group.event_ids), "indices": list(group.event_indices)},
        }
        return Document(self.alerts_index, alert_id, {"doc": partial}, op="update", component=ALERT_UPDATES_COMPONENT)


LEVELS = ("informational", "low", "medium", "high", "critical")  # Sigma's levels, least severe first


def severity(level: str | None) -> int:
    """``event.severity`` of an alert: its rule level's rank (informational 0 … critical 4), for sorting."""
    return LEVELS.index(level) if level in LEVELS else 0


def group_key(rule: Rule, event: Mapping[str, Any]) -> tuple[str, ...]:
    """What makes two hits of one rule the same alert: the rule, the agency, the host and the user."""
    organization, user = get_field(event, "organization.id"), get_field(event, "user.name")
    return (rule.id, str(organization or ""), host_name(event), str(user or ""))


def host_name(event: Mapping[str, Any]) -> str:
    """The event's host: ``host.name``, or the ``host.hostname`` a syslog header gives."""
    return str(get_field(event, "host.name") or get_field(event, "host.hostname") or "")


def _rule_fields(rule: Rule | CorrelationRule, kind: str) -> dict[str, Any]:
    """What an alert says of its rule (``rule.*``); ``kind`` is ``sigma`` or ``correlation.<type>``."""
    return {
        "id": rule.id,
        "name": rule.name,
        "title": rule.title,
        "level": rule.level,
        "description": rule.description,
        "author": rule.author,
        "tags": list(rule.tags),
        "references": list(rule.references),
        "type": kind,
    }

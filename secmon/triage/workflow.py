"""The triage workflow: which changes an analyst may make to an alert, and what they change.

Status goes open → acknowledged → closed; an alert may be closed straight from open, and
reopened from acknowledged or closed. Closing needs a resolution; reopening clears it. Pure
functions of the alert's current triage fields: the store applies them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from secmon.errors import SecmonError
from secmon.timestamps import datetime_to_iso_millis


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class Resolution(StrEnum):
    TRUE_POSITIVE = "true_positive"
    FALSE_POSITIVE = "false_positive"
    BENIGN = "benign"


ALLOWED = {
    Status.OPEN: {Status.ACKNOWLEDGED, Status.CLOSED},
    Status.ACKNOWLEDGED: {Status.OPEN, Status.CLOSED},
    Status.CLOSED: {Status.OPEN},
}
MAX_NOTE_CHARS = 10_000
MAX_TAGS = 50


class TriageError(SecmonError, ValueError):
    """A change the workflow does not allow; the message says why and what would be allowed."""


@dataclass(frozen=True, slots=True)
class TriageChange:
    """What an analyst asks to change; fields left None are not changed."""

    status: Status | None = None
    resolution: Resolution | None = None
    assignee: str | None = None  # "" unassigns
    add_tags: Sequence[str] = ()
    remove_tags: Sequence[str] = ()
    note: str | None = None

    @property
    def empty(self) -> bool:
        return (
            self.status is None
            and self.resolution is None
            and self.assignee is None
            and not self.add_tags
            and not self.remove_tags
            and not self.note
        )


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of an alert, before and after: a line of the audit trail."""

    field: str
    before: Any
    after: Any


@dataclass(slots=True)
class Applied:
    """The result of a change: the partial document to write and what it changed."""

    partial: dict[str, Any] = field(default_factory=dict)
    changes: list[FieldChange] = field(default_factory=list)
    note: dict[str, Any] | None = None


def apply(current: Mapping[str, Any], change: TriageChange, *, actor: str, at: datetime) -> Applied:
    """The partial ``alert`` object that makes ``change`` to an alert whose ``alert`` object is ``current``.

    Raises :class:`TriageError` for a change the workflow refuses.
    """
    if change.empty:
        raise TriageError("the change is empty: give a status, resolution, assignee, tags or a note")
    applied = Applied()
    status = Status(current.get("status") or Status.OPEN)
    resolution = current.get("resolution")
    new_status = change.status or status
    if new_status != status and new_status not in ALLOWED[status]:
        allowed = ", ".join(sorted(ALLOWED[status]))
        raise TriageError(f"an alert that is {status} cannot become {new_status}; it can become {allowed}")
    new_resolution = resolution
    if new_status is Status.CLOSED:
        new_resolution = change.resolution or (resolution if status is Status.CLOSED else None)
        if new_resolution is None:
            raise TriageError("closing an alert needs a resolution: true_positive, false_positive or benign")
    elif change.resolution is not None:
        raise TriageError("a resolution is given only when closing an alert (status closed)")
    else:
        new_resolution = None  # reopened: the earlier resolution no longer holds
    _set(applied, "status", status.value, new_status.value)
    _set(applied, "resolution", resolution, new_resolution)
    if new_status is Status.CLOSED and status is not Status.CLOSED:
        applied.partial["closed"] = datetime_to_iso_millis(at)
    if change.assignee is not None:
        _set(applied, "assignee", current.get("assignee"), change.assignee.strip() or None)
    if change.add_tags or change.remove_tags:
        tags = list(current.get("tags") or [])
        for tag in (raw.strip() for raw in change.add_tags):
            if tag and tag not in tags:
                tags.append(tag)
        tags = [tag for tag in tags if tag not in set(change.remove_tags)]
        if len(tags) > MAX_TAGS:
            raise TriageError(f"an alert has at most {MAX_TAGS} tags")
        _set(applied, "tags", list(current.get("tags") or []), tags)
    if change.note:
        if len(change.note) > MAX_NOTE_CHARS:
            raise TriageError(f"a note has at most {MAX_NOTE_CHARS} characters")
        applied.note = {"at": datetime_to_iso_millis(at), "by": actor, "text": change.note}
        applied.changes.append(FieldChange("notes", None, change.note))
    if applied.changes:
        applied.partial["updated"] = datetime_to_iso_millis(at)
        applied.partial["updated_by"] = actor
    return applied


def _set(applied: Applied, name: str, before: Any, after: Any) -> None:
    if before != after:
        applied.partial[name] = after
        applied.changes.append(FieldChange(name, before, after))

"""Alerts as analysts work them: scoped searches, the triage workflow, the audit trail, event search."""

from secmon.triage.audit import Actor, AuditLog
from secmon.triage.events import EventFilter, EventSearch
from secmon.triage.query import AlertFilter, AlertSort, InvalidQuery, Scope
from secmon.triage.store import AlertNotFound, AlertStore
from secmon.triage.workflow import Resolution, Status, TriageChange, TriageError

__all__ = [
    "Actor",
    "AlertFilter",
    "AlertNotFound",
    "AlertSort",
    "AlertStore",
    "AuditLog",
    "EventFilter",
    "EventSearch",
    "InvalidQuery",
    "Resolution",
    "Scope",
    "Status",
    "TriageChange",
    "TriageError",
]

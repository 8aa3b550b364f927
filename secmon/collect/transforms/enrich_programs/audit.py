"""Audit records that come through syslog: forwarded by audispd, or logged by the kernel itself."""

from __future__ import annotations

from secmon.collect.transforms.parse_auditd import AUDIT_RECORD, apply_record
from secmon.events import Event


def enrich_audit(event: Event, message: str) -> None:
    """The audit record in ``message``, read as :mod:`~secmon.collect.transforms.parse_auditd` reads a line."""
    # Searched, not matched: the kernel writes "audit: type=1400 audit(...)", audisp "node=h type=...".
    record = AUDIT_RECORD.search(message)
    if record is not None:
        apply_record(event, record)

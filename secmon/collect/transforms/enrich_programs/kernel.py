"""The kernel's own log: a firewall rule's packet, or an audit record."""

from __future__ import annotations

import re

from secmon.collect.transforms.enrich_programs.audit import enrich_audit
from secmon.collect.transforms.enrich_programs.firewall import enrich_firewall
from secmon.events import Event

_KERNEL_TIME = re.compile(r"\[\s*\d+\.\d+\]\s*")


def enrich_kernel(event: Event, message: str) -> None:
    """A packet a firewall rule logged, or an audit record; other kernel messages are left as they are."""
    if message[:1] == "[":  # "[12345.678901] " when the kernel's own clock is in the line
        kernel_time = _KERNEL_TIME.match(message)
        if kernel_time is not None:
            message = message[kernel_time.end() :]
    if "IN=" in message and " OUT=" in message:
        enrich_firewall(event, message)
    elif "audit(" in message:
        enrich_audit(event, message)

"""ECS field writers shared by :mod:`.enrich_programs` and :mod:`.parse_auditd`.

They live beside both rather than in the package: ``enrich_programs`` reads audit records that
come through syslog with :mod:`.parse_auditd`, which therefore cannot import from it.
"""

from __future__ import annotations

from typing import Any

from secmon.collect.transforms.parse_syslog import is_ip, to_port
from secmon.events import Event


def merge_fields(event: Event, key: str, value: dict[str, Any]) -> None:
    """Merge ``value`` into ``event[key]``, which may hold fields already."""
    existing = event.get(key)
    if isinstance(existing, dict):
        for name, child in value.items():
            if isinstance(child, dict) and isinstance(existing.get(name), dict):
                existing[name].update(child)
            else:
                existing[name] = child
    else:
        event[key] = value


def set_peer(event: Event, side: str, address: str, port: str | None = None) -> None:
    """An address that should be an IP (sshd's, a firewall's): anything else stays only in ``<side>.address``."""
    peer: dict[str, Any] = {"address": address}
    if is_ip(address):
        peer["ip"] = address
        if port is not None and (number := to_port(port)) is not None:
            peer["port"] = number
    merge_fields(event, side, peer)


def categorize(event: Event, action: str, category: list[str], types: list[str], outcome: str | None) -> None:
    """Set ``event.action``, ``event.category``, ``event.type`` and, unless ``None``, ``event.outcome``."""
    meta = event["event"]
    meta["action"] = action
    meta["category"] = category
    meta["type"] = types
    if outcome is not None:
        meta["outcome"] = outcome

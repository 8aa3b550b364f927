"""The kernel's packet log, as iptables, nftables and ufw rules write it: ``[prefix] IN=eth0 OUT= SRC=...``."""

from __future__ import annotations

import re
from typing import Any

from secmon.collect.transforms.ecs_fields import merge_fields, set_peer
from secmon.collect.transforms.parse_syslog import to_int
from secmon.events import Event

FIREWALL_DATASET = "iptables"

_FIREWALL = re.compile(r"(.*?)\s*\bIN=(\S*) OUT=(\S*)(?: (.*))?$", re.DOTALL)
# The rule's log prefix says what it did, in the words of whoever wrote the rule: (words, action, type).
_FIREWALL_ACTIONS = (
    (("block", "drop", "deny", "denied", "reject"), "block", "denied"),
    (("allow", "accept", "pass"), "allow", "allowed"),
    (("audit",), "audit", None),
)


def enrich_firewall(event: Event, message: str) -> None:
    """``[UFW BLOCK] IN=eth0 OUT= MAC=... SRC=... DST=... LEN=60 ... PROTO=TCP SPT=1 DPT=22 ...``."""
    match = _FIREWALL.match(message)
    if match is None:
        return
    prefix, ingress, egress, rest = match.groups()
    event["event"]["dataset"] = FIREWALL_DATASET
    fields: dict[str, Any] = {}
    flags = []
    # ICMP errors quote the offending packet's header in [brackets]: its SRC/DST are not this packet's.
    for token in (rest or "").partition(" [")[0].split():
        key, equals, value = token.partition("=")
        if equals:
            fields[key] = value
        else:
            flags.append(token)
    event_type = ["connection"]
    action = None
    lowered = prefix.lower()
    for words, name, denied_or_allowed in _FIREWALL_ACTIONS:
        if any(word in lowered for word in words):
            action = name
            if denied_or_allowed is not None:
                event_type.append(denied_or_allowed)
            break
    meta = event["event"]
    meta["category"] = ["network"]
    meta["type"] = event_type
    if action is not None:
        meta["action"] = action
    rule_name = prefix.strip().strip("[]:").strip()
    if rule_name:
        event["rule"] = {"name": rule_name}
    observer: dict[str, Any] = {}
    if ingress:
        observer["ingress"] = {"interface": {"name": ingress}}
    if egress:
        observer["egress"] = {"interface": {"name": egress}}
    if observer:
        merge_fields(event, "observer", observer)

    source, destination = fields.pop("SRC", None), fields.pop("DST", None)
    if source:
        set_peer(event, "source", source, fields.pop("SPT", None))
    if destination:
        set_peer(event, "destination", destination, fields.pop("DPT", None))
    network: dict[str, Any] = {}
    if protocol := fields.pop("PROTO", None):
        network["transport"] = protocol.lower()
    if source:
        network["type"] = "ipv6" if ":" in source else "ipv4"
    if network:
        merge_fields(event, "network", network)
    mac = fields.pop("MAC", "").split(":")
    if len(mac) == 14:  # destination (6 octets), source (6), EtherType (2)
        merge_fields(event, "destination", {"mac": "-".join(mac[:6]).upper()})
        merge_fields(event, "source", {"mac": "-".join(mac[6:12]).upper()})
    if protocol in ("ICMP", "ICMPv6"):
        icmp = {
            key.lower(): number for key in ("TYPE", "CODE") if (number := to_int(fields.pop(key, ""), 3)) is not None
        }
        if icmp:
            event["icmp"] = icmp
    extra: dict[str, Any] = {key.lower(): value for key, value in fields.items()}
    if flags:
        extra["flags"] = flags
    if extra:
        event["iptables"] = extra

"""ARP packets to ECS ``network.arp`` events, flagging an IP address that moves to another MAC.

Each ARP packet is one event (ARP is a small share of any link's traffic): ``source`` is the
sender, ``destination`` the target. :class:`ArpWatch` remembers the last MAC seen for each
sender IP; when it changes, the event also carries ``event.type: change``, the tag
:data:`BINDING_CHANGED_TAG` and ``arp.previous_mac``, what an ARP-spoofing rule looks for. A
header with other than Ethernet/IPv4 address lengths is an event tagged
:data:`CORRUPT_TAG`, as Zeek reports it, instead of being read past its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from socket import inet_ntoa
from struct import Struct
from typing import Any

from secmon.events import Event

DATASET = "network.arp"
BINDING_CHANGED_TAG = "arp_binding_changed"
CORRUPT_TAG = "arp_corrupt_header"
OPERATIONS = {1: "request", 2: "reply", 3: "rarp_request", 4: "rarp_reply"}

_HEADER = Struct("!HHBBH")
_UNSPECIFIED = bytes(4)


def mac_text(mac: bytes) -> str:
    """A MAC address as ECS writes it: ``AA-BB-CC-DD-EE-FF``."""
    return "-".join(f"{b:02X}" for b in mac)


@dataclass(slots=True)
class ArpPacket:
    """One ARP packet; ``problem`` says what is wrong with a corrupt header (addresses then empty)."""

    ts: float
    operation: int
    sender_mac: bytes
    sender_ip: bytes
    target_mac: bytes
    target_ip: bytes
    frame_source_mac: bytes
    vlan: int | None = None
    problem: str | None = None


def parse_arp(ts: float, data: bytes, offset: int, vlan: int | None) -> ArpPacket | None:
    """The ARP packet at ``offset`` of an Ethernet frame, or ``None`` if the frame ends inside its header."""
    if len(data) < offset + 8:
        return None
    hardware, protocol, hardware_length, protocol_length, operation = _HEADER.unpack_from(data, offset)
    frame_source = data[6:12] if offset >= 14 else b""
    if hardware_length != 6 or protocol_length != 4 or protocol != 0x0800:
        problem = f"corrupt ARP header (hrd={hardware}, hln={hardware_length}, pro={protocol}, pln={protocol_length})"
        return ArpPacket(ts, operation, b"", b"", b"", b"", frame_source, vlan, problem)
    if len(data) < offset + 28:
        return None
    body = offset + 8
    return ArpPacket(
        ts,
        operation,
        data[body : body + 6],
        data[body + 6 : body + 10],
        data[body + 10 : body + 16],
        data[body + 16 : body + 20],
        frame_source,
        vlan,
    )


class ArpWatch:
    """Last MAC seen per sender IP, bounded; :meth:`event` turns a packet into its event."""

    def __init__(self, max_bindings: int = 65536) -> None:
        self.max_bindings = max_bindings
        self.bindings: dict[bytes, bytes] = {}

    def event(self, packet: ArpPacket) -> Event:
        """The event of ``packet``, marked as a change when its sender IP has a new MAC."""
        event: Event = {
            "event": {"kind": "event", "category": ["network"], "type": ["info"], "dataset": DATASET},
            "network": {"protocol": "arp"},
            "arp": {"operation": OPERATIONS.get(packet.operation, str(packet.operation))},
        }
        if packet.frame_source_mac:
            event["observer"] = {"ingress": {"mac": mac_text(packet.frame_source_mac)}}
        if packet.vlan is not None:
            event["network"]["vlan"] = {"id": str(packet.vlan)}
        if packet.problem is not None:
            event["tags"] = [CORRUPT_TAG]
            event["error"] = {"message": packet.problem}
            return event
        sender_ip, sender_mac = packet.sender_ip, packet.sender_mac
        event["source"] = {"ip": inet_ntoa(sender_ip), "mac": mac_text(sender_mac)}
        target: dict[str, Any] = {"ip": inet_ntoa(packet.target_ip)}
        if any(packet.target_mac):
            target["mac"] = mac_text(packet.target_mac)
        event["destination"] = target
        if sender_ip == packet.target_ip:
            event["arp"]["gratuitous"] = True
        if sender_ip != _UNSPECIFIED:  # 0.0.0.0: an address probe (RFC 5227), binds nothing
            previous = self.bindings.get(sender_ip)
            if previous is not None and previous != sender_mac:
                event["event"]["type"] = ["change"]
                event["tags"] = [BINDING_CHANGED_TAG]
                event["arp"]["previous_mac"] = mac_text(previous)
            if previous != sender_mac:
                if previous is None and len(self.bindings) >= self.max_bindings:
                    self.bindings.pop(next(iter(self.bindings)))  # the oldest binding goes first
                self.bindings[sender_ip] = sender_mac
        return event

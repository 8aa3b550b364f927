"""ICMP error messages to ECS ``network.icmp`` events.

Echo traffic is counted in flows (one flow per host pair); an error message (destination
unreachable, time exceeded, redirect, parameter problem, and their ICMPv6 kin) is an event of
its own, with the packet it quotes: a port-unreachable answer to a UDP probe is what a scan
detection looks for, and time-exceeded messages are what traceroute leaves.
"""

from __future__ import annotations

from struct import Struct
from typing import Any

from secmon.collect.transforms.packets.decode import PROTO_ICMP, TRANSPORTS, Packet, ip_text
from secmon.events import Event

DATASET = "network.icmp"

ERRORS_V4 = {3: "destination_unreachable", 5: "redirect", 11: "time_exceeded", 12: "parameter_problem"}
ERRORS_V6 = {1: "destination_unreachable", 2: "packet_too_big", 3: "time_exceeded", 4: "parameter_problem"}
UNREACHABLE_V4 = {0: "net", 1: "host", 2: "protocol", 3: "port", 4: "fragmentation_needed", 9: "net_prohibited",
                  10: "host_prohibited", 13: "communication_prohibited"}  # fmt: skip
UNREACHABLE_V6 = {0: "no_route", 1: "prohibited", 3: "address", 4: "port"}

_PORTS = Struct("!HH")


def is_error(packet: Packet) -> bool:
    """Whether an ICMP or ICMPv6 packet is an error message (and not echo or neighbour discovery)."""
    return packet.sport in (ERRORS_V4 if packet.proto == PROTO_ICMP else ERRORS_V6)


def _quoted(payload: bytes, version4: bool) -> dict[str, Any] | None:
    """Addresses, transport and ports of the packet an error quotes (after the 4 unused bytes)."""
    inner = payload[4:]
    if version4:
        if len(inner) < 20 or inner[0] >> 4 != 4:
            return None
        proto, start = inner[9], (inner[0] & 0x0F) * 4
        src, dst = inner[12:16], inner[16:20]
    else:
        if len(inner) < 40 or inner[0] >> 4 != 6:
            return None
        proto, start = inner[6], 40
        src, dst = inner[8:24], inner[24:40]
    quoted: dict[str, Any] = {
        "source": {"ip": ip_text(src)},
        "destination": {"ip": ip_text(dst)},
        "transport": TRANSPORTS.get(proto, str(proto)),
    }
    if proto in (6, 17) and len(inner) >= start + 4:
        sport, dport = _PORTS.unpack_from(inner, start)
        quoted["source"]["port"] = sport
        quoted["destination"]["port"] = dport
    return quoted


def icmp_event(packet: Packet) -> Event:
    """The event of one ICMP error message (addresses are added by the caller)."""
    version4 = packet.proto == PROTO_ICMP
    icmp_type, code = packet.sport, packet.dport
    name = (ERRORS_V4 if version4 else ERRORS_V6).get(icmp_type, str(icmp_type))
    icmp: dict[str, Any] = {"type": icmp_type, "code": code, "type_name": name}
    if name == "destination_unreachable":
        icmp["code_name"] = (UNREACHABLE_V4 if version4 else UNREACHABLE_V6).get(code, str(code))
    quoted = _quoted(packet.payload, version4)
    if quoted is not None:
        icmp["original"] = quoted
    return {
        "event": {"kind": "event", "category": ["network"], "type": ["info"], "dataset": DATASET},
        "network": {"protocol": "icmp"},
        "icmp": icmp,
    }

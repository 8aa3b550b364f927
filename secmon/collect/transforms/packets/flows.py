"""A bidirectional 5-tuple flow table that emits ECS ``network.flow`` events.

A flow's initiator (``source``) is the sender of its first packet, except that a SYN-ACK seen
first makes its receiver the initiator. A flow is emitted when no packet has been seen for
``idle_timeout`` seconds, when it has lasted ``active_timeout`` seconds (it then goes on as a
new record with the same key), when ``max_flows`` are open and a new one begins (the oldest
begun is ended), and at :meth:`FlowTable.flush`. Time is the packets' time, so a
capture file replays the same way however fast it is read.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from struct import Struct
from typing import Any

from secmon.collect.transforms.packets.decode import (
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    TCP_ACK,
    TCP_SYN,
    TRANSPORTS,
    Packet,
    ip_text,
)
from secmon.events import Event
from secmon.timestamps import epoch_to_iso_micros

DATASET = "network.flow"

FlowKey = tuple[bytes, int, bytes, int, int]

_TCP_FLAG_NAMES = ((0x01, "FIN"), (0x02, "SYN"), (0x04, "RST"), (0x08, "PSH"), (0x10, "ACK"), (0x20, "URG"))
_COMMUNITY_PORTS = Struct("!BxHH")
# ICMP type → the type of the answer, for Community ID's pseudo ports (spec v1).
_ICMP4_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17, 9: 10, 10: 9}
_ICMP6_PAIRS = {
    128: 129,
    129: 128,
    133: 134,
    134: 133,
    135: 136,
    136: 135,
    130: 131,
    131: 130,
    139: 140,
    140: 139,
    144: 145,
    145: 144,
}


def community_id(src: bytes, sport: int, dst: bytes, dport: int, proto: int, *, seed: int = 0) -> str:
    """The Community ID v1 of a flow (https://github.com/corelight/community-id-spec)."""
    one_way = False
    if proto in (PROTO_ICMP, PROTO_ICMPV6):
        pairs = _ICMP4_PAIRS if proto == PROTO_ICMP else _ICMP6_PAIRS
        icmp_type, code = sport, dport
        if icmp_type in pairs:
            sport, dport = icmp_type, pairs[icmp_type]
        else:
            sport, dport, one_way = icmp_type, code, True
    if not one_way and (src, sport) > (dst, dport):
        src, sport, dst, dport = dst, dport, src, sport
    digest = hashlib.sha1(seed.to_bytes(2, "big") + src + dst + _COMMUNITY_PORTS.pack(proto, sport, dport)).digest()
    return "1:" + base64.b64encode(digest).decode()


@dataclass(slots=True)
class Flow:
    """One flow's counters; ``forward`` is the initiator's direction. ``app`` holds parser state."""

    src: bytes
    sport: int
    dst: bytes
    dport: int
    proto: int
    start: float
    end: float
    packets: list[int] = field(default_factory=lambda: [0, 0])  # [forward, reverse]
    bytes: list[int] = field(default_factory=lambda: [0, 0])
    flags: int = 0
    vlan: int | None = None
    app: Any = None  # set by the application layer (per-direction buffers, parser)
    # Computed once per flow, not per event: the addresses as text, and the (direction-free) Community ID.
    addresses: tuple[str, str] | None = None
    community: str | None = None

    def address_texts(self) -> tuple[str, str]:
        """The initiator's and the responder's address as text."""
        if self.addresses is None:
            self.addresses = (ip_text(self.src), ip_text(self.dst))
        return self.addresses

    def community_id(self) -> str:
        """The flow's Community ID v1 (the same both ways, so one per flow)."""
        if self.community is None:
            self.community = community_id(self.src, self.sport, self.dst, self.dport, self.proto)
        return self.community

    def direction(self, packet: Packet) -> int:
        """0 when ``packet`` goes initiator → responder, 1 the other way."""
        return 0 if packet.src == self.src and packet.sport == self.sport else 1


class FlowTable:
    """Bidirectional flows keyed by 5-tuple; :meth:`add` returns the flow a packet belongs to."""

    def __init__(
        self,
        idle_timeout: float = 60.0,
        active_timeout: float = 1800.0,
        sweep_interval: float = 5.0,
        max_flows: int = 500_000,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.active_timeout = active_timeout
        self.sweep_interval = sweep_interval
        # A SYN flood or a scan from random ports makes a flow per packet: past this many, the
        # oldest flow is ended early (reported as it stands) rather than memory growing unbounded.
        self.max_flows = max_flows
        self.evicted = 0  # flows ended early by max_flows
        self.flows: dict[FlowKey, Flow] = {}
        self.expired: list[Flow] = []  # ended flows not yet collected by the caller
        self._next_sweep: float | None = None

    def add(self, packet: Packet) -> Flow:
        """Count ``packet`` in its flow (created if new) and move timed-out flows to :attr:`expired`."""
        ts = packet.ts
        if self._next_sweep is None:
            self._next_sweep = ts + self.sweep_interval
        elif ts >= self._next_sweep:
            self.sweep(ts)
        src, dst, sport, dport = packet.src, packet.dst, packet.sport, packet.dport
        proto = packet.proto
        icmp = proto in (PROTO_ICMP, PROTO_ICMPV6)
        if icmp:
            sport = dport = 0  # one flow per host pair; type and code of its first packet are kept
        key: FlowKey = (
            (src, sport, dst, dport, proto) if (src, sport) <= (dst, dport) else (dst, dport, src, sport, proto)
        )
        flow = self.flows.get(key)
        if flow is not None and ts - flow.start >= self.active_timeout:
            self.expired.append(flow)
            flow = None
        if flow is None:
            if proto == PROTO_TCP and packet.flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK:
                flow = Flow(dst, dport, src, sport, proto, ts, ts)  # the SYN was missed: the receiver began
            else:
                flow = Flow(src, packet.sport, dst, packet.dport, proto, ts, ts)
            flow.vlan = packet.vlan
            if len(self.flows) >= self.max_flows:
                self.expired.append(self.flows.pop(next(iter(self.flows))))  # the oldest begun
                self.evicted += 1
            self.flows[key] = flow
        way = 0 if src == flow.src and (icmp or sport == flow.sport) else 1
        flow.packets[way] += 1
        flow.bytes[way] += packet.length
        flow.flags |= packet.flags
        flow.end = max(flow.end, ts)
        return flow

    def sweep(self, now: float) -> None:
        """Move the flows idle since before ``now - idle_timeout`` to :attr:`expired`."""
        self._next_sweep = now + self.sweep_interval
        limit = now - self.idle_timeout
        stale = [key for key, flow in self.flows.items() if flow.end < limit]
        for key in stale:
            self.expired.append(self.flows.pop(key))

    def take_expired(self) -> list[Flow]:
        """The flows ended since the last call, oldest first."""
        expired, self.expired = self.expired, []
        return expired

    def flush(self) -> list[Flow]:
        """End every flow (at the end of a capture): the expired ones, then all still open."""
        flows = self.take_expired()
        flows.extend(self.flows.values())
        self.flows.clear()
        return flows


def flow_event(flow: Flow) -> Event:
    """The ECS event of one flow."""
    src, dst = ip_text(flow.src), ip_text(flow.dst)
    packets, octets = flow.packets, flow.bytes
    network: dict[str, Any] = {
        "transport": TRANSPORTS.get(flow.proto, str(flow.proto)),
        "iana_number": str(flow.proto),
        "type": "ipv4" if len(flow.src) == 4 else "ipv6",
        "bytes": octets[0] + octets[1],
        "packets": packets[0] + packets[1],
        "community_id": flow.community_id(),
    }
    if flow.vlan is not None:
        network["vlan"] = {"id": str(flow.vlan)}
    source: dict[str, Any] = {"ip": src, "bytes": octets[0], "packets": packets[0]}
    destination: dict[str, Any] = {"ip": dst, "bytes": octets[1], "packets": packets[1]}
    if flow.proto in (PROTO_TCP, PROTO_UDP):
        source["port"] = flow.sport
        destination["port"] = flow.dport
    event: Event = {
        "@timestamp": epoch_to_iso_micros(flow.start),
        "event": {
            "kind": "event",
            "category": ["network"],
            "type": ["connection", "end"],
            "dataset": DATASET,
            "start": epoch_to_iso_micros(flow.start),
            "end": epoch_to_iso_micros(flow.end),
            "duration": round((flow.end - flow.start) * 1e9),
        },
        "network": network,
        "source": source,
        "destination": destination,
    }
    if flow.proto == PROTO_TCP:
        event["tcp"] = {"flags": [name for bit, name in _TCP_FLAG_NAMES if flow.flags & bit]}
    elif flow.proto in (PROTO_ICMP, PROTO_ICMPV6):
        # One flow per host pair: the type and code of its first packet (8 or 128 for a ping).
        event["icmp"] = {"type": flow.sport, "code": flow.dport}
    return event


def flow_events(flows: list[Flow]) -> Iterator[Event]:
    """:func:`flow_event` for each of ``flows``."""
    for flow in flows:
        yield flow_event(flow)

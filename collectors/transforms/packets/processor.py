"""The per-packet path: decode, count in a flow, hand payloads to the protocol parsers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from collectors.event import Event
from collectors.transforms.packets.arp import ArpPacket, ArpWatch
from collectors.transforms.packets.decode import (
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    TCP_SYN,
    TRANSPORTS,
    CaptureError,
    DecodeStats,
    Packet,
    decode_frame,
    ip_text,
)
from collectors.transforms.packets.dns import DnsTcpParser, dns_event, parse_dns
from collectors.transforms.packets.flows import Flow, FlowTable, community_id, flow_event, iso
from collectors.transforms.packets.http import HttpParser, looks_like_request
from collectors.transforms.packets.icmp import icmp_event, is_error
from collectors.transforms.packets.tls import TlsParser, looks_like_tls

_DNS_PORTS = frozenset((53, 5353, 5355))


class _StreamParser(Protocol):
    def feed(self, way: int, data: bytes) -> list[Event]: ...
    def finish(self) -> list[Event]: ...


class _Session:
    """Per-connection application state: the chosen parser and each direction's next sequence number."""

    __slots__ = ("gave_up", "next_seq", "parser")

    def __init__(self) -> None:
        self.parser: _StreamParser | None = None
        self.next_seq: list[int | None] = [None, None]
        self.gave_up = False


class PacketProcessor:
    """Frames in, events out; one instance per capture or interface (it holds the flow table)."""

    def __init__(self, idle_timeout: float = 60.0, active_timeout: float = 1800.0) -> None:
        self.flows = FlowTable(idle_timeout, active_timeout)
        self.stats = DecodeStats()
        self.arp = ArpWatch()

    def process(self, ts: float, data: bytes, linktype: int) -> list[Event]:
        """The events one frame completes (application events, and flows that timed out)."""
        packet = decode_frame(ts, data, linktype, self.stats)
        if packet is None:
            return []
        if isinstance(packet, ArpPacket):
            event = self.arp.event(packet)
            event["@timestamp"] = iso(ts)
            return [event]
        flow = self.flows.add(packet)
        events: list[Event] = []
        if packet.payload:
            if packet.proto == PROTO_UDP:
                if packet.sport in _DNS_PORTS or packet.dport in _DNS_PORTS:
                    message = parse_dns(packet.payload)
                    if message is None:
                        self.stats.dropped["dns_malformed"] += 1
                    else:
                        events.append(_address(dns_event(message), packet, flow))
            elif packet.proto in (PROTO_ICMP, PROTO_ICMPV6):
                if is_error(packet):
                    events.append(_address(icmp_event(packet), packet, flow))
            elif packet.proto == PROTO_TCP:
                stream_events = self._stream(flow, packet)
                if stream_events:
                    # A DNS message stands alone and is addressed as it went; an HTTP or TLS
                    # exchange is addressed from the connection's initiator.
                    alone = isinstance(flow.app.parser, DnsTcpParser)
                    for event in stream_events:
                        events.append(_address(event, packet if alone else None, flow))
        elif packet.proto == PROTO_TCP and packet.flags & TCP_SYN:
            self._stream(flow, packet)
        if self.flows.expired:
            events.extend(self._end(self.flows.take_expired()))
        return events

    def expire(self, now: float) -> list[Event]:
        """The flows idle for longer than the idle timeout at ``now`` (a live capture's wall clock)."""
        self.flows.sweep(now)
        return self._end(self.flows.take_expired())

    def flush(self) -> list[Event]:
        """End every open flow: the events still waiting and the flow events."""
        return self._end(self.flows.flush())

    def _end(self, flows: list[Flow]) -> list[Event]:
        events: list[Event] = []
        for flow in flows:
            session = flow.app
            if isinstance(session, _Session) and session.parser is not None:
                events.extend(_address(event, None, flow) for event in session.parser.finish())
                flow.app = None
            events.append(flow_event(flow))
        return events

    def _stream(self, flow: Flow, packet: Packet) -> list[Event]:
        session = flow.app
        if session is None:
            session = flow.app = _Session()
        elif not isinstance(session, _Session) or session.gave_up:
            return []
        way = flow.direction(packet)
        payload = packet.payload
        expected = session.next_seq[way]
        seq = packet.seq
        if packet.flags & TCP_SYN:
            seq = (seq + 1) & 0xFFFFFFFF
            if expected is None:
                session.next_seq[way] = expected = seq
        if expected is not None and payload:
            diff = (seq - expected) & 0xFFFFFFFF
            if diff >= 0x80000000:  # a retransmission, wholly or partly old
                behind = 0x100000000 - diff
                if behind >= len(payload):
                    return []
                payload = payload[behind:]
            elif diff:
                session.gave_up = True  # a gap: later bytes cannot be framed
                self.stats.dropped["tcp_gap"] += 1
                return []
            seq = expected
        if not payload:
            return []
        session.next_seq[way] = (seq + len(payload)) & 0xFFFFFFFF
        if session.parser is None:
            if flow.sport in _DNS_PORTS or flow.dport in _DNS_PORTS:
                session.parser = DnsTcpParser()
            elif way == 0 and looks_like_request(payload):
                session.parser = HttpParser()
            elif way == 0 and looks_like_tls(payload):
                session.parser = TlsParser()
            else:
                session.gave_up = True
                return []
        return session.parser.feed(way, payload)


def _address(event: Event, packet: Packet | None, flow: Flow) -> Event:
    """Add the addresses, transport, flow id and time to an application event.

    ``packet``: a message that stands alone (DNS over UDP) is addressed as its packet went;
    otherwise the flow's initiator is the source.
    """
    if packet is not None:
        src, sport, dst, dport, ts = packet.src, packet.sport, packet.dst, packet.dport, packet.ts
    else:
        src, sport, dst, dport, ts = flow.src, flow.sport, flow.dst, flow.dport, flow.end
    event["@timestamp"] = iso(ts)
    network = event.setdefault("network", {})
    network["transport"] = TRANSPORTS.get(flow.proto, str(flow.proto))
    if flow.proto in (PROTO_TCP, PROTO_UDP):
        initiator, responder = flow.address_texts()
        if src != flow.src or sport != flow.sport:
            initiator, responder = responder, initiator
        event["source"] = {"ip": initiator, "port": sport}
        event["destination"] = {"ip": responder, "port": dport}
        network["community_id"] = flow.community_id()  # direction-free: one per flow
    else:
        event["source"] = {"ip": ip_text(src)}
        event["destination"] = {"ip": ip_text(dst)}
        network["community_id"] = community_id(src, sport, dst, dport, flow.proto)
    return event


def packets_to_events(
    frames: Iterable[tuple[float, bytes, int]], processor: PacketProcessor | None = None
) -> Iterator[Event]:
    """ECS events for ``(timestamp, frame, linktype)`` frames, flows flushed at the end.

    If ``frames`` raises :class:`CaptureError` (a damaged capture), the events of the frames
    before are yielded, the open flows are flushed, and the error is raised again.
    """
    processor = processor or PacketProcessor()
    process = processor.process
    try:
        for ts, data, linktype in frames:
            events = process(ts, data, linktype)
            if events:
                yield from events
    except CaptureError:
        yield from processor.flush()
        raise
    yield from processor.flush()

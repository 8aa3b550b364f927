"""The per-packet path: decode, count in a flow, hand payloads to the protocol parsers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from secmon.collect.transforms.packets.arp import ArpPacket, ArpWatch
from secmon.collect.transforms.packets.decode import (
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
from secmon.collect.transforms.packets.dns import DnsTcpParser, dns_event, parse_dns
from secmon.collect.transforms.packets.flows import Flow, FlowTable, community_id, flow_event
from secmon.collect.transforms.packets.fragments import Defragmenter
from secmon.collect.transforms.packets.http import METHODS, HttpParser, looks_like_request
from secmon.collect.transforms.packets.icmp import icmp_event, is_error
from secmon.collect.transforms.packets.quic import QuicParser, is_quic_initial
from secmon.collect.transforms.packets.streams import SEQ_MASK, TcpStream
from secmon.collect.transforms.packets.tls import TlsParser, looks_like_tls
from secmon.events import Event
from secmon.timestamps import epoch_to_iso_micros

_DNS_PORTS = frozenset((53, 5353, 5355))
_OPENING_MAX = 16  # more than the longest method looked for ("PROPFIND ")
_TLS_OPENINGS = (b"\x16", b"\x16\x03")


class _StreamParser(Protocol):
    def feed(self, way: int, data: bytes) -> list[Event]: ...
    def finish(self) -> list[Event]: ...


class _Session:
    """Per-connection application state: the chosen parser and each direction's reassembly."""

    __slots__ = ("gave_up", "opening", "parser", "streams")

    def __init__(self) -> None:
        self.parser: _StreamParser | None = None
        self.streams = (TcpStream(), TcpStream())
        self.gave_up = False  # no parser for this connection
        self.opening = b""  # the client's first bytes, while too few to tell the protocol

    def open_holes(self) -> int:
        """The directions still waiting for missing bytes (counted as gaps when the connection ends)."""
        if self.gave_up:
            return 0
        client, server = self.streams
        return (1 if client.held else 0) + (1 if server.held else 0)

    def choose_parser(self, flow: Flow, way: int, data: bytes) -> tuple[_StreamParser | None, bytes]:
        """The parser the connection's first bytes call for, and the bytes to give it.

        ``None`` while the client's first bytes are too few to tell ("G", one byte of a TLS
        record: a sender may split them so to evade inspection); they are kept until more come.
        ``None`` with :attr:`gave_up` set when no parser fits.
        """
        if flow.sport in _DNS_PORTS or flow.dport in _DNS_PORTS:
            self.parser = DnsTcpParser()
            return self.parser, data
        if way == 0:
            data = self.opening + data
            if looks_like_request(data):
                self.parser = HttpParser()
            elif looks_like_tls(data):
                self.parser = TlsParser()
            elif len(data) < _OPENING_MAX and (data in _TLS_OPENINGS or any(m.startswith(data) for m in METHODS)):
                self.opening = data
                return None, b""
            self.opening = b""
        if self.parser is None:
            self.gave_up = True
        return self.parser, data


class PacketProcessor:
    """Frames in, events out; one instance per capture or interface (it holds the flow table)."""

    def __init__(self, idle_timeout: float = 60.0, active_timeout: float = 1800.0, max_flows: int = 500_000) -> None:
        self.flows = FlowTable(idle_timeout, active_timeout, max_flows=max_flows)
        self.stats = DecodeStats()
        self.arp = ArpWatch()
        self.fragments = Defragmenter()

    def process(self, ts: float, data: bytes, linktype: int) -> list[Event]:
        """The events one frame completes (application events, and flows that timed out)."""
        packet = decode_frame(ts, data, linktype, self.stats, self.fragments)
        if packet is None:
            return []
        if isinstance(packet, ArpPacket):
            event = self.arp.event(packet)
            event["@timestamp"] = epoch_to_iso_micros(ts)
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
                elif packet.payload[0] >= 0xC0 and flow.direction(packet) == 0:
                    # A long header (form and fixed bits) from the client: maybe a QUIC Initial. One
                    # comparison for other UDP; QUIC's short-header packets never get this far.
                    quic = flow.app
                    if quic is None and is_quic_initial(packet.payload):
                        quic = flow.app = QuicParser()
                    if isinstance(quic, QuicParser):
                        for event in quic.feed(packet.payload, self.stats.dropped):
                            events.append(_address(event, None, flow))
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
        self.fragments.expire(now, self.stats.dropped)
        return self._end(self.flows.take_expired())

    def flush(self) -> list[Event]:
        """End every open flow: the events still waiting and the flow events."""
        self.fragments.flush(self.stats.dropped)  # datagrams still missing pieces are counted, not kept
        return self._end(self.flows.flush())

    def _end(self, flows: list[Flow]) -> list[Event]:
        events: list[Event] = []
        for flow in flows:
            session = flow.app
            if isinstance(session, _Session) and (holes := session.open_holes()):
                self.stats.dropped["tcp_gap"] += holes  # bytes that never arrived before the end
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
        stream = session.streams[way]
        seq = packet.seq
        if packet.flags & TCP_SYN:
            seq = (seq + 1) & SEQ_MASK
            if stream.next_seq is None:  # the stream starts after the SYN's own number
                stream.next_seq = seq
        payload = packet.payload
        if not payload or stream.gave_up:
            return []
        parser = session.parser
        if seq == stream.next_seq and not stream.held:
            # The common case, the expected segment with nothing waiting: no reassembly needed.
            stream.next_seq = (seq + len(payload)) & SEQ_MASK
            if parser is None:
                parser, payload = session.choose_parser(flow, way, payload)
                if parser is None:
                    return []
            return parser.feed(way, payload)
        # An HTTP body of known length may be skipped over a hole rather than waited for.
        skippable = parser.skippable(way) if isinstance(parser, HttpParser) else 0
        pieces = stream.accept(seq, payload, skippable)
        if stream.gave_up:
            self.stats.dropped["tcp_gap"] += 1  # too much held behind a hole: later bytes cannot be framed
            return []
        events: list[Event] = []
        for piece in pieces:
            if isinstance(piece, int):
                if isinstance(parser, HttpParser):
                    parser.skip(way, piece)
                continue
            data = piece
            if parser is None:
                parser, data = session.choose_parser(flow, way, piece)
                if parser is None:
                    if session.gave_up:
                        break
                    continue
            events.extend(parser.feed(way, data))
        return events


def _address(event: Event, packet: Packet | None, flow: Flow) -> Event:
    """Add the addresses, transport, flow id and time to an application event.

    ``packet``: a message that stands alone (DNS over UDP) is addressed as its packet went;
    otherwise the flow's initiator is the source.
    """
    if packet is not None:
        src, sport, dst, dport, ts = packet.src, packet.sport, packet.dst, packet.dport, packet.ts
    else:
        src, sport, dst, dport, ts = flow.src, flow.sport, flow.dst, flow.dport, flow.end
    event["@timestamp"] = epoch_to_iso_micros(ts)
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

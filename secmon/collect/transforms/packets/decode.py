"""Link-layer frames to :class:`Packet`: Ethernet, 802.1Q/QinQ, Linux SLL/SLL2, raw IP, BSD loopback.

The per-packet hot path: headers are read with :mod:`struct` at fixed offsets, nothing is
dissected that flows and the application parsers do not use. A frame that cannot be read
(truncated, not IP) gives ``None`` and one count in :class:`DecodeStats` under its reason;
decoding never raises.

IP fragments (IPv4 More Fragments or an offset; IPv6 Fragment header with an offset or the M
flag) go to a :class:`~.fragments.Defragmenter` when one is given, and the datagram they complete
is decoded like an unfragmented packet; without one they are dropped as ``ip_fragment``. An
ordinary packet pays one integer test for this.

:func:`read_capture` reads pcap and pcapng files with scapy's raw readers (bytes, no
dissection) and raises :class:`CaptureError` where a file is damaged, after the frames before
the damage have been yielded.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from socket import AF_INET6, inet_ntoa, inet_ntop
from struct import Struct

from secmon.collect.transforms.packets.arp import ArpPacket, parse_arp
from secmon.collect.transforms.packets.fragments import Defragmenter
from secmon.errors import IngestError

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58

TRANSPORTS = {PROTO_ICMP: "icmp", PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_ICMPV6: "ipv6-icmp"}

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
_ETHERTYPE_ARP = 0x0806
_VLAN_TAGS = frozenset((0x8100, 0x88A8, 0x9100))
# IPv6 extension headers that are skipped to reach the transport header (fragment: 44, handled apart).
_IPV6_EXTENSIONS = frozenset((0, 43, 60, 51))

_U16 = Struct("!H")
_U32 = Struct("!I")
_IPV4 = Struct("!BBHHHBB")  # version/ihl, tos, total length, id, flags/fragment offset, ttl, protocol
_PORTS = Struct("!HH")
_TCP = Struct("!HHIIBB")  # ports, seq, ack, data offset, flags
_LOOP_FAMILIES = {
    2: _ETHERTYPE_IPV4,
    10: _ETHERTYPE_IPV6,
    24: _ETHERTYPE_IPV6,
    28: _ETHERTYPE_IPV6,
    30: _ETHERTYPE_IPV6,
}


@dataclass(slots=True)
class Packet:
    """What flows and the application parsers need of one IP packet.

    Addresses are the raw 4 or 16 bytes (cheap to hash and to order for Community ID);
    :func:`ip_text` formats them. ``sport``/``dport`` are the ICMP type and code for ICMP.
    """

    ts: float
    src: bytes
    dst: bytes
    proto: int
    sport: int
    dport: int
    length: int  # bytes of the frame as captured (reassembled: of all its fragments' frames)
    payload: bytes  # transport payload (TCP/UDP data, ICMP body after the 4-byte header)
    flags: int = 0  # TCP flags
    seq: int = 0  # TCP sequence number
    ttl: int = 0
    vlan: int | None = None


@dataclass(slots=True)
class DecodeStats:
    """Frames decoded, and what was not understood by reason: frames (``truncated_ipv4``,
    ``not_ip``...) and, counted by the application layer, messages (``dns_malformed``, ``tcp_gap``)."""

    decoded: int = 0
    dropped: Counter[str] = field(default_factory=Counter)


class CaptureError(IngestError):
    """A capture file that cannot be read to its end: which file, where, and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{reason} in {path}")
        self.path = path
        self.reason = reason


def ip_text(address: bytes) -> str:
    """Raw 4- or 16-byte address as text (``10.0.0.1``, ``2001:db8::1``)."""
    return inet_ntoa(address) if len(address) == 4 else inet_ntop(AF_INET6, address)


def decode_frame(  # noqa: PLR0911 - one exit per drop reason, kept inline for speed
    ts: float, data: bytes, linktype: int, stats: DecodeStats, fragments: Defragmenter | None = None
) -> Packet | ArpPacket | None:
    """One captured frame as a :class:`Packet` (or an ARP packet), or ``None`` with the reason counted in ``stats``.

    With ``fragments``, an IP fragment is held until its datagram is complete (``None`` until
    then); the fragment completing it gives the datagram's :class:`Packet`, with that fragment's
    time, TTL and VLAN, and ``length`` the sum of the frame lengths of all its fragments: a flow
    so counts every byte its fragments took on the wire, and one packet per datagram, not per
    fragment. Fragments that never make a datagram are counted in ``stats`` (see
    :mod:`~.fragments`) and reach no flow.
    """
    size = len(data)
    vlan: int | None = None
    if linktype == LINKTYPE_ETHERNET:
        if size < 14:
            stats.dropped["truncated_ethernet"] += 1
            return None
        ethertype = _U16.unpack_from(data, 12)[0]
        offset = 14
        while ethertype in _VLAN_TAGS:
            if size < offset + 4:
                stats.dropped["truncated_vlan"] += 1
                return None
            vlan = _U16.unpack_from(data, offset)[0] & 0x0FFF
            ethertype = _U16.unpack_from(data, offset + 2)[0]
            offset += 4
    elif linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if not size:
            stats.dropped["truncated_ip"] += 1
            return None
        ethertype = _ETHERTYPE_IPV6 if data[0] >> 4 == 6 else _ETHERTYPE_IPV4
        offset = 0
    elif linktype == LINKTYPE_LINUX_SLL:
        if size < 16:
            stats.dropped["truncated_sll"] += 1
            return None
        ethertype = _U16.unpack_from(data, 14)[0]
        offset = 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        if size < 20:
            stats.dropped["truncated_sll2"] += 1
            return None
        ethertype = _U16.unpack_from(data, 0)[0]
        offset = 20
    elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if size < 4:
            stats.dropped["truncated_loopback"] += 1
            return None
        family = int.from_bytes(data[:4], "big" if linktype == LINKTYPE_LOOP else "little")
        if family > 0xFFFF:  # written in the other byte order than the reader's
            family = int.from_bytes(data[:4], "little" if linktype == LINKTYPE_LOOP else "big")
        ethertype = _LOOP_FAMILIES.get(family, 0)
        offset = 4
    else:
        stats.dropped["unsupported_linktype"] += 1
        return None

    if ethertype == _ETHERTYPE_IPV4:
        if size < offset + 20:
            stats.dropped["truncated_ipv4"] += 1
            return None
        version_ihl, _tos, total, ident, fragment, ttl, proto = _IPV4.unpack_from(data, offset)
        header = (version_ihl & 0x0F) * 4
        if version_ihl >> 4 != 4 or header < 20:
            stats.dropped["bad_ipv4_header"] += 1
            return None
        src = data[offset + 12 : offset + 16]
        dst = data[offset + 16 : offset + 20]
        if fragment & 0x3FFF:  # More Fragments or an offset: a piece of a datagram, the first one too
            if fragments is None:
                stats.dropped["ip_fragment"] += 1
                return None
            if total < header:
                stats.dropped["bad_ipv4_header"] += 1
                return None
            end = offset + total
            if end > size:  # cut by the snap length: its datagram cannot be rebuilt
                stats.dropped["ip_fragment_truncated"] += 1
                return None
            datagram = fragments.add(
                ts,
                src,
                dst,
                ident,
                proto,
                offset=(fragment & 0x1FFF) * 8,
                more=bool(fragment & 0x2000),
                data=data[offset + header : end],
                frame_length=size,
                header_length=header,
                dropped=stats.dropped,
            )
            if datagram is None:
                return None
            data, proto, size = datagram.payload, datagram.proto, datagram.frame_bytes
            start, end = 0, len(data)
        else:
            start = offset + header
            end = offset + total if total >= header else size  # total 0: TSO, take the frame
            end = min(end, size)  # snap length cut the packet: parse what there is
            if start > end:
                stats.dropped["truncated_ipv4"] += 1
                return None
    elif ethertype == _ETHERTYPE_IPV6:
        if size < offset + 40:
            stats.dropped["truncated_ipv6"] += 1
            return None
        if data[offset] >> 4 != 6:
            stats.dropped["bad_ipv6_header"] += 1
            return None
        proto = data[offset + 6]
        ttl = data[offset + 7]
        end = min(size, offset + 40 + _U16.unpack_from(data, offset + 4)[0])
        src = data[offset + 8 : offset + 24]
        dst = data[offset + 24 : offset + 40]
        start = offset + 40
        while proto in _IPV6_EXTENSIONS or proto == 44:
            if start + 8 > end:
                stats.dropped["truncated_ipv6"] += 1
                return None
            if proto == 44:
                fragment = _U16.unpack_from(data, start + 2)[0]
                if fragment & 0xFFF9:  # an offset or M; without either it is a whole packet (RFC 6946)
                    if fragments is None:
                        stats.dropped["ip_fragment"] += 1
                        return None
                    if offset + 40 + _U16.unpack_from(data, offset + 4)[0] > size:
                        stats.dropped["ip_fragment_truncated"] += 1
                        return None
                    datagram = fragments.add(
                        ts,
                        src,
                        dst,
                        _U32.unpack_from(data, start + 4)[0],
                        data[start],
                        offset=fragment & 0xFFF8,
                        more=bool(fragment & 1),
                        data=data[start + 8 : end],
                        frame_length=size,
                        header_length=start - offset - 40,
                        dropped=stats.dropped,
                    )
                    if datagram is None:
                        return None
                    data, proto, size = datagram.payload, datagram.proto, datagram.frame_bytes
                    start, end = 0, len(data)
                    fragments = None  # one level: a Fragment header inside the reassembled bytes is not rebuilt
                    continue
                proto, start = data[start], start + 8
            elif proto == 51:  # AH counts its length in 4-byte words
                proto, start = data[start], start + (data[start + 1] + 2) * 4
            else:
                proto, start = data[start], start + (data[start + 1] + 1) * 8
    elif ethertype == _ETHERTYPE_ARP:
        arp = parse_arp(ts, data, offset, vlan)
        if arp is None:
            stats.dropped["truncated_arp"] += 1
        else:
            stats.decoded += 1
        return arp
    else:
        stats.dropped["not_ip"] += 1
        return None

    if proto == PROTO_TCP:
        if start + 20 > end:
            stats.dropped["truncated_tcp"] += 1
            return None
        sport, dport, seq, _ack, data_offset, flags = _TCP.unpack_from(data, start)
        payload_start = start + (data_offset >> 4) * 4
        if payload_start > end or data_offset >> 4 < 5:
            stats.dropped["bad_tcp_header"] += 1
            return None
        stats.decoded += 1
        return Packet(ts, src, dst, proto, sport, dport, size, data[payload_start:end], flags, seq, ttl, vlan)
    if proto == PROTO_UDP:
        if start + 8 > end:
            stats.dropped["truncated_udp"] += 1
            return None
        sport, dport = _PORTS.unpack_from(data, start)
        stats.decoded += 1
        return Packet(ts, src, dst, proto, sport, dport, size, data[start + 8 : end], 0, 0, ttl, vlan)
    if proto in (PROTO_ICMP, PROTO_ICMPV6):
        if start + 4 > end:
            stats.dropped["truncated_icmp"] += 1
            return None
        stats.decoded += 1
        return Packet(ts, src, dst, proto, data[start], data[start + 1], size, data[start + 4 : end], 0, 0, ttl, vlan)
    stats.decoded += 1
    return Packet(ts, src, dst, proto, 0, 0, size, data[start:end], 0, 0, ttl, vlan)


MAX_CAPLEN = 0x3FFFF  # no link layer captures more in one record: a larger length means corruption


def read_capture(path: str | os.PathLike[str]) -> Iterator[tuple[float, bytes, int]]:
    """``(timestamp, frame, linktype)`` for each packet of a pcap or pcapng file.

    Raises :class:`CaptureError` when the file is not a capture, or where it is truncated or
    corrupt, after yielding every frame before that point.
    """
    from scapy.error import Scapy_Exception
    from scapy.utils import RawPcapNgReader, RawPcapReader

    name = os.fspath(path)
    try:
        reader = RawPcapReader(name)
    except (Scapy_Exception, OSError, EOFError) as error:
        raise CaptureError(name, f"not a readable pcap or pcapng file ({error})") from None
    with reader:
        stream = reader.f
        position = stream.tell()
        end = stream.seek(0, os.SEEK_END)
        stream.seek(position)
        if isinstance(reader, RawPcapNgReader):
            yield from _read_pcapng(reader, name, end)
            return
        # Classic pcap records are read here with one struct per record: scapy's own reader costs
        # several times as much per packet, which shows on large captures.
        linktype = reader.linktype
        scale = 1e-9 if reader.nano else 1e-6
        record = Struct(reader.endian + "IIII")
        read = stream.read
        while True:
            head = read(16)
            if len(head) < 16:
                if head:
                    raise CaptureError(name, f"truncated packet record at byte {position}")
                break
            seconds, fraction, caplen, _ = record.unpack(head)
            if caplen > MAX_CAPLEN:
                raise CaptureError(name, f"corrupt packet record at byte {position} (length {caplen})")
            data = read(caplen)
            if len(data) < caplen:
                raise CaptureError(name, f"packet record at byte {position} cut short")
            yield seconds + fraction * scale, data, linktype
            position += 16 + caplen


def _read_pcapng(reader: object, name: str, end: int) -> Iterator[tuple[float, bytes, int]]:
    """The pcapng half of :func:`read_capture`: one block at a time, so a damaged one is located."""
    from scapy.error import Scapy_Exception

    stream = reader.f  # type: ignore[attr-defined]
    read_block = reader._read_block  # type: ignore[attr-defined]
    while True:
        position = stream.tell()
        if position >= end:
            return
        try:
            block = read_block(size=0x3FFFF)
        except (EOFError, Scapy_Exception):
            raise CaptureError(name, f"truncated or corrupt pcapng block at byte {position}") from None
        if block is None:
            continue
        data, meta = block
        ts = ((meta.tshigh << 32) | meta.tslow) / meta.tsresol if meta.tshigh is not None else 0.0
        yield ts, data, meta.linktype

"""IP fragment reassembly: real fragments cut by scapy, written to pcap, read back as a capture.

The policies tested (overlaps discard the datagram, exact duplicates are dropped, 30 s timeout,
bounded memory) are those :mod:`secmon.collect.transforms.packets.fragments` documents.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from scapy.all import (
    DNS,
    DNSQR,
    IP,
    TCP,
    UDP,
    Ether,
    IPv6,
    IPv6ExtHdrFragment,
    Packet,
    Raw,
    fragment,
    fragment6,
    raw,
    wrpcap,
)

from secmon.collect.transforms.packets import (
    DecodeStats,
    PacketProcessor,
    decode_frame,
    packets_to_events,
    read_capture,
)
from secmon.collect.transforms.packets.decode import LINKTYPE_ETHERNET
from secmon.collect.transforms.packets.fragments import Defragmenter
from secmon.events import Event

CLIENT, SERVER = "10.0.0.1", "10.0.0.2"
CLIENT6, SERVER6 = "2001:db8::1", "2001:db8::2"
LONG_NAME = ".".join(f"label{i:02d}" for i in range(20)) + ".example.com"  # 180 bytes: several fragments
REQUEST = b"GET /fragmented/path HTTP/1.1\r\nHost: frag.example\r\nUser-Agent: test\r\n\r\n"


def ether() -> Ether:
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def dns_query(ident: int = 7) -> Packet:
    return (
        ether()
        / IP(src=CLIENT, dst=SERVER, id=ident)
        / UDP(sport=40000, dport=53)
        / DNS(rd=1, qd=DNSQR(qname=LONG_NAME))
    )


def dns_query6() -> Packet:
    return (
        ether()
        / IPv6(src=CLIENT6, dst=SERVER6)
        / IPv6ExtHdrFragment(id=0x12345678)
        / UDP(sport=40000, dport=53)
        / DNS(rd=1, qd=DNSQR(qname=LONG_NAME))
    )


def ip_piece(ident: int, offset: int, more: bool, payload: bytes, proto: int = 17) -> Packet:
    """One hand-made IPv4 fragment: ``offset`` in bytes, ``payload`` the bytes after the IP header."""
    flags = "MF" if more else 0
    return ether() / IP(src=CLIENT, dst=SERVER, id=ident, proto=proto, flags=flags, frag=offset // 8) / Raw(payload)


def capture(tmp_path: Path, packets: Iterable[Packet], times: Iterable[float] | None = None) -> Path:
    """The packets written to a pcap, at ``times`` (seconds from the start) or 10 ms apart."""
    timed = list(packets)
    for packet, at in zip(timed, times or (index / 100 for index in range(len(timed))), strict=True):
        packet.time = 1_700_000_000.0 + at
    path = tmp_path / "fragments.pcap"
    wrpcap(str(path), timed)
    return path


def run(path: Path) -> tuple[list[Event], PacketProcessor]:
    processor = PacketProcessor()
    return list(packets_to_events(read_capture(path), processor)), processor


def of(events: list[Event], dataset: str) -> list[Event]:
    return [e for e in events if e["event"]["dataset"] == dataset]


def frames_of(packets: Sequence[Packet], start: float = 0.0) -> list[tuple[float, bytes, int]]:
    return [(start + index, raw(p), LINKTYPE_ETHERNET) for index, p in enumerate(packets)]


def test_dns_query_over_fragmented_udp(tmp_path: Path) -> None:
    pieces = fragment(dns_query(), fragsize=48)
    assert len(pieces) == 5
    events, processor = run(capture(tmp_path, pieces))
    (dns,) = of(events, "network.dns")
    assert dns["dns"]["question"] == {"name": LONG_NAME, "type": "A"}
    assert dns["source"] == {"ip": CLIENT, "port": 40000} and dns["destination"] == {"ip": SERVER, "port": 53}
    (flow,) = of(events, "network.flow")
    # One packet per datagram; its bytes are every fragment's frame.
    assert flow["network"]["packets"] == 1
    assert flow["network"]["bytes"] == sum(len(raw(p)) for p in pieces)
    assert processor.stats.decoded == 1 and not processor.stats.dropped
    assert processor.fragments.in_progress == 0 and processor.fragments.held_bytes == 0


def test_http_request_in_a_fragmented_tcp_segment(tmp_path: Path) -> None:
    ip = IP(src=CLIENT, dst=SERVER, id=300)
    syn = ether() / ip / TCP(sport=40001, dport=80, flags="S", seq=99)
    request = ether() / ip / TCP(sport=40001, dport=80, flags="PA", seq=100) / Raw(REQUEST)
    events, _ = run(capture(tmp_path, [syn, *fragment(request, fragsize=24)]))
    (http,) = of(events, "network.http")
    assert http["url"]["original"] == "/fragmented/path" and http["url"]["domain"] == "frag.example"
    assert http["source"] == {"ip": CLIENT, "port": 40001}


def test_tiny_fragments_splitting_the_tcp_header_are_reassembled(tmp_path: Path) -> None:
    request = ether() / IP(src=CLIENT, dst=SERVER, id=301) / TCP(sport=40002, dport=80, flags="PA") / Raw(REQUEST)
    pieces = fragment(request, fragsize=8)  # the TCP header itself is cut in three
    assert len(pieces) > 10
    events, _ = run(capture(tmp_path, pieces))
    (http,) = of(events, "network.http")
    assert http["url"]["original"] == "/fragmented/path"


def test_out_of_order_and_duplicated_fragments_give_one_event(tmp_path: Path) -> None:
    pieces = fragment(dns_query(), fragsize=48)
    shuffled = [pieces[3], pieces[4], pieces[1], pieces[3], pieces[0], pieces[1], pieces[2]]
    events, processor = run(capture(tmp_path, shuffled))
    (dns,) = of(events, "network.dns")
    assert dns["dns"]["question"]["name"] == LONG_NAME
    assert processor.stats.dropped == {"ip_fragment_duplicate": 2}
    (flow,) = of(events, "network.flow")
    assert flow["network"]["bytes"] == sum(len(raw(p)) for p in shuffled)  # the copies crossed the wire too


def test_ipv6_fragmented_dns_query(tmp_path: Path) -> None:
    pieces = fragment6(dns_query6(), 120)
    assert len(pieces) == 4
    events, processor = run(capture(tmp_path, reversed(pieces)))
    (dns,) = of(events, "network.dns")
    assert dns["dns"]["question"]["name"] == LONG_NAME
    assert dns["source"] == {"ip": CLIENT6, "port": 40000}
    assert processor.stats.decoded == 1 and not processor.stats.dropped


def test_a_missing_fragment_gives_no_event_and_is_counted_after_the_timeout(tmp_path: Path) -> None:
    pieces = fragment(dns_query(), fragsize=48)
    # Expiry goes by packet time and runs when fragments arrive: another datagram's, 40 s later.
    later = fragment(dns_query(ident=8), fragsize=48)
    times = [0.0, 10.0, 20.0, 30.0] + [40.0 + index / 100 for index in range(len(later))]
    path = capture(tmp_path, [pieces[0], pieces[1], pieces[3], pieces[4], *later], times)
    events, processor = run(path)
    assert len(of(events, "network.dns")) == 1  # the later datagram's only
    assert processor.stats.dropped == {"ip_fragment_timeout": 4}
    assert processor.fragments.in_progress == 0 and processor.fragments.held_bytes == 0


def test_a_capture_ending_before_a_datagram_is_complete_counts_its_fragments(tmp_path: Path) -> None:
    pieces = fragment(dns_query(), fragsize=48)
    events, processor = run(capture(tmp_path, pieces[:-1]))
    assert not of(events, "network.dns")
    assert processor.stats.dropped == {"ip_fragment_incomplete": len(pieces) - 1}


def test_expire_and_flush_count_what_never_completed() -> None:
    stats = DecodeStats()
    defragmenter = Defragmenter(timeout=30.0)
    pieces = fragment(dns_query(), fragsize=48)
    for ts, frame, linktype in frames_of(pieces[:2]):
        assert decode_frame(ts, frame, linktype, stats, defragmenter) is None
    defragmenter.expire(29.5, stats.dropped)  # started at 0 s: not yet 30 s old
    assert defragmenter.in_progress == 1
    defragmenter.flush(stats.dropped)
    assert stats.dropped == {"ip_fragment_incomplete": 2} and defragmenter.in_progress == 0
    decode_frame(0.0, raw(pieces[0]), LINKTYPE_ETHERNET, stats, defragmenter)
    defragmenter.expire(31.0, stats.dropped)
    assert stats.dropped["ip_fragment_timeout"] == 1 and defragmenter.held_bytes == 0


def test_overlapping_fragments_discard_the_datagram(tmp_path: Path) -> None:
    whole = raw(UDP(sport=40000, dport=53) / DNS(rd=1, qd=DNSQR(qname=LONG_NAME)))
    # The second fragment rewrites bytes 16..31 with other content (a Teardrop-style overlap).
    pieces = [
        ip_piece(9, 0, True, whole[:32]),
        ip_piece(9, 16, True, b"X" * 16 + whole[32:48]),
        ip_piece(9, 48, False, whole[48:]),  # arrives after the discard: counted, not a new datagram
    ]
    events, processor = run(capture(tmp_path, pieces))
    assert not of(events, "network.dns")
    assert processor.stats.dropped == {"ip_fragment_overlap": 3}


def test_a_repeat_across_two_held_pieces_is_a_duplicate_not_an_overlap() -> None:
    whole = raw(UDP(sport=40000, dport=53) / DNS(rd=1, qd=DNSQR(qname=LONG_NAME)))
    pieces = [ip_piece(10, 0, True, whole[:16]), ip_piece(10, 16, True, whole[16:32])]
    pieces += [ip_piece(10, 0, True, whole[:32]), ip_piece(10, 32, False, whole[32:])]  # refragmented copy
    processor = PacketProcessor()
    events = [e for f in frames_of(pieces) for e in processor.process(*f)]
    (dns,) = of(events, "network.dns")
    assert dns["dns"]["question"]["name"] == LONG_NAME
    assert processor.stats.dropped == {"ip_fragment_duplicate": 1}


def test_first_fragment_without_a_defragmenter_is_dropped_not_decoded_truncated() -> None:
    stats = DecodeStats()
    first4 = fragment(dns_query(), fragsize=48)[0]
    first6 = fragment6(dns_query6(), 120)[0]
    assert decode_frame(0.0, raw(first4), LINKTYPE_ETHERNET, stats) is None
    assert decode_frame(0.0, raw(first6), LINKTYPE_ETHERNET, stats) is None
    assert stats.dropped == {"ip_fragment": 2} and stats.decoded == 0


def test_an_atomic_ipv6_fragment_is_a_whole_packet() -> None:
    stats = DecodeStats()
    atomic = raw(dns_query6())  # a Fragment header with offset 0 and M clear (RFC 6946)
    packet = decode_frame(0.0, atomic, LINKTYPE_ETHERNET, stats)
    assert packet is not None and stats.decoded == 1


def test_a_datagram_beyond_65535_bytes_is_dropped_and_counted() -> None:
    # Ping of death: the last fragment at offset 65528 reaches past the largest IPv4 packet.
    pieces = [ip_piece(11, 0, True, bytes(64), proto=1), ip_piece(11, 65528, False, bytes(64), proto=1)]
    processor = PacketProcessor()
    for frame in frames_of(pieces):
        processor.process(*frame)
    assert processor.stats.dropped == {"ip_fragment_oversize": 2}
    assert processor.stats.decoded == 0 and processor.fragments.held_bytes == 0


def test_a_fragment_of_odd_length_before_the_last_is_invalid() -> None:
    processor = PacketProcessor()
    processor.process(0.0, raw(ip_piece(12, 0, True, bytes(13))), LINKTYPE_ETHERNET)
    assert processor.stats.dropped == {"ip_fragment_invalid": 1}


def test_data_past_the_last_fragment_is_invalid() -> None:
    processor = PacketProcessor()
    for frame in frames_of([ip_piece(13, 16, False, bytes(8)), ip_piece(13, 16, True, bytes(16))]):
        processor.process(*frame)
    assert processor.stats.dropped == {"ip_fragment_invalid": 2}


def test_a_duplicate_is_counted_once_when_its_datagram_times_out() -> None:
    pieces = fragment(dns_query(), fragsize=48)
    processor = PacketProcessor()
    later = fragment(dns_query(ident=8), fragsize=48)[0]
    for ts, piece in [(0.0, pieces[0]), (1.0, pieces[0]), (2.0, pieces[1]), (60.0, later)]:
        processor.process(ts, raw(piece), LINKTYPE_ETHERNET)
    assert processor.stats.dropped == {"ip_fragment_duplicate": 1, "ip_fragment_timeout": 2}


def test_a_flood_of_unfinished_datagrams_stays_bounded() -> None:
    defragmenter = Defragmenter(max_datagrams=100)
    processor = PacketProcessor()
    processor.fragments = defragmenter
    for ident in range(1000):
        processor.process(ident / 1000, raw(ip_piece(ident, 0, True, bytes(512))), LINKTYPE_ETHERNET)
    assert defragmenter.in_progress == 100
    assert processor.stats.dropped == {"ip_fragment_evicted": 900}


def test_memory_is_bounded_by_bytes_and_tiny_fragments_by_count() -> None:
    defragmenter = Defragmenter(max_bytes=64 * 1024, max_fragments=256)
    processor = PacketProcessor()
    processor.fragments = defragmenter
    for ident in range(100):  # 100 datagrams of 8 KB each: more than 64 KB
        processor.process(0.0, raw(ip_piece(ident, 0, True, bytes(8192))), LINKTYPE_ETHERNET)
    assert defragmenter.held_bytes <= 64 * 1024
    assert processor.stats.dropped["ip_fragment_evicted"] > 90
    for index in range(300):  # 8-byte pieces of one datagram, never finished
        processor.process(1.0, raw(ip_piece(5000, index * 8, True, bytes(8))), LINKTYPE_ETHERNET)
    assert processor.stats.dropped["ip_fragment_too_many"] == 300
    assert defragmenter.held_bytes <= 64 * 1024


def test_reassembly_agrees_with_tshark(tmp_path: Path) -> None:
    assert shutil.which("tshark"), "tshark is missing: ./run installs it (Debian package tshark)"
    path = capture(tmp_path, [*fragment(dns_query(), fragsize=48), *fragment6(dns_query6(), 120)])
    found = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-Y", "dns", "-T", "fields", "-e", "dns.qry.name"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.split()  # fmt: skip
    events, _ = run(path)
    assert sorted(e["dns"]["question"]["name"] for e in of(events, "network.dns")) == sorted(found)
    assert found == [LONG_NAME, LONG_NAME]


@pytest.mark.parametrize("cut", [20, 30])
def test_a_fragment_cut_by_the_snap_length_is_counted(cut: int) -> None:
    stats = DecodeStats()
    first = raw(fragment(dns_query(), fragsize=48)[0])
    assert decode_frame(0.0, first[: 14 + cut], LINKTYPE_ETHERNET, stats, Defragmenter()) is None
    assert stats.dropped == {"ip_fragment_truncated": 1}

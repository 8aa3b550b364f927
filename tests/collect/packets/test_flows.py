"""Flow records: timeouts, initiator, and flow counts compared with nDPI's on a real scan."""

from __future__ import annotations

import struct
from pathlib import Path

from secmon.collect.transforms.packets import PacketProcessor, packets_to_events, read_capture
from secmon.collect.transforms.packets.decode import LINKTYPE_ETHERNET
from secmon.events import Event

PCAP = Path(__file__).resolve().parents[4] / "shared" / "datasets" / "pcap"
A, B = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])


def frame(src: bytes, dst: bytes, proto: int, transport: bytes) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(transport), 0, 0, 64, proto, 0, src, dst)
    return bytes(12) + b"\x08\x00" + ip + transport


def udp(src: bytes, sport: int, dst: bytes, dport: int, payload: bytes = b"x") -> bytes:
    return frame(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)


def tcp(src: bytes, sport: int, dst: bytes, dport: int, flags: int, *, seq: int = 0, payload: bytes = b"") -> bytes:
    return frame(src, dst, 6, struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 0x50, flags, 1024, 0, 0) + payload)


def flows(events: list[Event]) -> list[Event]:
    return [e for e in events if e["event"]["dataset"] == "network.flow"]


def test_idle_timeout_ends_a_flow_and_a_later_packet_starts_another() -> None:
    processor = PacketProcessor(idle_timeout=30, active_timeout=1000)
    early = processor.process(0.0, udp(A, 1000, B, 53), LINKTYPE_ETHERNET)
    early += processor.process(1.0, udp(B, 53, A, 1000), LINKTYPE_ETHERNET)
    later = processor.process(100.0, udp(A, 1000, B, 53), LINKTYPE_ETHERNET)
    (ended,) = flows(later)
    assert ended["source"]["packets"] == 1 and ended["destination"]["packets"] == 1
    assert ended["event"]["end"] == "1970-01-01T00:00:01.000000Z"
    (rest,) = flows(processor.flush())
    assert rest["event"]["start"] == "1970-01-01T00:01:40.000000Z" and rest["network"]["packets"] == 1
    assert not flows(early)


def test_past_max_flows_the_oldest_flow_is_reported_early_and_none_is_lost() -> None:
    processor = PacketProcessor(max_flows=3)
    early: list[Event] = []
    for port in range(1000, 1005):  # five flows, one packet each, within a second
        early += processor.process(port / 10_000, udp(A, port, B, 53), LINKTYPE_ETHERNET)
    assert [f["source"]["port"] for f in flows(early)] == [1000, 1001]
    assert processor.flows.evicted == 2 and len(processor.flows.flows) == 3
    assert sorted(f["source"]["port"] for f in flows(processor.flush())) == [1002, 1003, 1004]


def test_active_timeout_splits_a_long_flow() -> None:
    processor = PacketProcessor(idle_timeout=60, active_timeout=100)
    events: list[Event] = []
    for second in range(0, 250, 10):
        events += processor.process(float(second), udp(A, 5000, B, 6000), LINKTYPE_ETHERNET)
    events += processor.flush()
    records = flows(events)
    assert [r["network"]["packets"] for r in records] == [10, 10, 5]
    assert sum(r["network"]["packets"] for r in records) == 25


def test_syn_ack_seen_first_makes_its_receiver_the_initiator() -> None:
    frames = [
        (0.0, tcp(B, 80, A, 40000, 0x12), LINKTYPE_ETHERNET),  # SYN-ACK from the server
        (0.1, tcp(A, 40000, B, 80, 0x10), LINKTYPE_ETHERNET),
    ]
    (record,) = flows(list(packets_to_events(frames)))
    assert record["source"]["ip"] == "10.0.0.1" and record["source"]["port"] == 40000
    assert record["destination"]["port"] == 80
    assert record["tcp"]["flags"] == ["SYN", "ACK"]


def test_http_retransmission_and_split_head_over_real_segments() -> None:
    request = b"GET /x HTTP/1.1\r\nHost: h.example\r\n\r\n"
    frames = [
        (0.0, tcp(A, 40000, B, 80, 0x02, seq=99), LINKTYPE_ETHERNET),
        (0.1, tcp(A, 40000, B, 80, 0x18, seq=100, payload=request[:10]), LINKTYPE_ETHERNET),
        (0.2, tcp(A, 40000, B, 80, 0x18, seq=100, payload=request[:10]), LINKTYPE_ETHERNET),  # retransmitted
        (0.3, tcp(A, 40000, B, 80, 0x18, seq=110, payload=request[10:]), LINKTYPE_ETHERNET),
    ]
    (event,) = [e for e in packets_to_events(frames) if e["event"]["dataset"] == "network.http"]
    assert event["url"]["original"] == "/x" and event["url"]["domain"] == "h.example"
    assert event["source"]["port"] == 40000 and "response" not in event["http"]


def test_syn_scan_flows_match_ndpi() -> None:
    expected = (PCAP / "ndpi" / "synscan.pcap.out").read_text().splitlines()
    ndpi_flows = [line for line in expected if line.startswith("\t") and "TCP " in line]
    one_way = [line for line in ndpi_flows if "Unidirectional Traffic" in line]
    records = flows(list(packets_to_events(read_capture(PCAP / "ndpi" / "synscan.pcap"))))
    assert len(records) == len(ndpi_flows)
    assert sum(r["destination"]["packets"] == 0 for r in records) == len(one_way)
    assert {r["source"]["ip"] for r in records} == {"172.16.0.8"}


def test_event_times_are_written_exactly_as_datetime_writes_them() -> None:
    import random
    from datetime import UTC, datetime

    from secmon.timestamps import epoch_to_iso_micros as iso

    rnd = random.Random(5)
    stamps = [rnd.uniform(0, 4_102_444_800) for _ in range(20_000)]  # 1970 to 2100
    stamps += [1_700_000_000 + n / 1_000_000 + 0.0000005 for n in range(2_000)]  # halfway microseconds
    stamps += [1_262_304_000.9999996, 1_262_303_999.9999999, 0.0, 946_684_800.5]  # rounding into the next second
    for ts in stamps:
        assert iso(ts) == datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

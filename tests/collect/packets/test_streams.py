"""TCP reassembly (reordered, overlapping and missing segments, sequence wrap) and chunked HTTP bodies.

Each test writes a real capture with scapy and decodes it as a capture file is decoded.
"""

from __future__ import annotations

import itertools
import random
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from secmon.collect.transforms.packets import PacketProcessor, packets_to_events, read_capture
from secmon.collect.transforms.packets.http import HttpParser
from secmon.collect.transforms.packets.streams import MAX_HELD_BYTES, MAX_HELD_SEGMENTS, TcpStream
from secmon.events import Event

PCAP = Path(__file__).resolve().parents[4] / "shared" / "datasets" / "pcap"
CLIENT, SERVER = "10.0.0.1", "10.0.0.2"


class Connection:
    """A TCP connection's segments, built in sequence order and written in whatever order a test sends them."""

    def __init__(self, client_isn: int = 1000, server_isn: int = 9000, sport: int = 40000, dport: int = 80) -> None:
        self.ports = (sport, dport)
        self.next_seq = [(client_isn + 1) & 0xFFFFFFFF, (server_isn + 1) & 0xFFFFFFFF]
        self.frames: list[Ether] = []
        self.send(self.packet(0, client_isn, b"", "S"))
        self.send(self.packet(1, server_isn, b"", "SA"))

    def packet(self, way: int, seq: int, data: bytes, flags: str = "PA") -> Ether:
        src, dst = (CLIENT, SERVER) if way == 0 else (SERVER, CLIENT)
        sport, dport = self.ports if way == 0 else self.ports[::-1]
        segment = IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, seq=seq, flags=flags)
        return Ether() / (segment / Raw(data) if data else segment)

    def segments(self, way: int, data: bytes, cuts: tuple[int, ...] = ()) -> list[Ether]:
        """``data`` from ``way`` (0: client) cut at the offsets ``cuts``, in sequence order, not yet sent."""
        bounds = [0, *cuts, len(data)]
        parts = [data[start:end] for start, end in itertools.pairwise(bounds)]
        packets = []
        for part in parts:
            packets.append(self.packet(way, self.next_seq[way], part))
            self.next_seq[way] = (self.next_seq[way] + len(part)) & 0xFFFFFFFF
        return packets

    def say(self, way: int, data: bytes, cuts: tuple[int, ...] = ()) -> None:
        """Send ``data`` in order."""
        for packet in self.segments(way, data, cuts):
            self.send(packet)

    def send(self, *packets: Ether) -> None:
        for packet in packets:
            packet.time = 1_700_000_000 + len(self.frames) / 1000
            self.frames.append(packet)

    def decode(self, tmp_path: Path) -> tuple[list[Event], PacketProcessor]:
        path = tmp_path / "capture.pcap"
        wrpcap(str(path), self.frames)
        processor = PacketProcessor()
        return list(packets_to_events(read_capture(path), processor)), processor


def http_events(events: list[Event]) -> list[Event]:
    return [e for e in events if e["event"]["dataset"] == "network.http"]


REQUEST = b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.org\r\nUser-Agent: test/1.0\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 999\r\n\r\n"
    b"1a;name=value\r\n" + b"a" * 26 + b"\r\n"
    b"5\r\nhello\r\n"
    b"0\r\nX-Trailer: yes\r\n\r\n"
)  # 31 body bytes; Content-Length is there to be ignored (chunked wins)
SECOND_REQUEST = b"GET /second HTTP/1.1\r\nHost: example.org\r\n\r\n"
SECOND_RESPONSE = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def test_request_split_in_three_and_delivered_2_3_1(tmp_path: Path) -> None:
    connection = Connection()
    first, second, third = connection.segments(0, REQUEST, (10, 40))
    connection.send(second, third, first)
    connection.say(1, RESPONSE)
    events, processor = connection.decode(tmp_path)
    (event,) = http_events(events)
    assert event["url"]["original"] == "/index.html?q=1" and event["url"]["domain"] == "example.org"
    assert event["user_agent"]["original"] == "test/1.0"
    assert event["http"]["response"]["status_code"] == 200
    assert event["source"] == {"ip": CLIENT, "port": 40000}
    assert "tcp_gap" not in processor.stats.dropped


def client_hello(server_name: str) -> bytes:
    """A TLS 1.2 ClientHello record with a server_name extension."""
    name = server_name.encode()
    sni = struct.pack("!HBH", len(name) + 3, 0, len(name)) + name
    extensions = struct.pack("!HH", 0, len(sni)) + sni + struct.pack("!HHH", 10, 4, 2) + b"\x00\x17"
    body = (
        b"\x03\x03" + bytes(range(32)) + b"\x00"  # version, random, no session id
        + struct.pack("!H", 4) + b"\x13\x01\xc0\x2f"  # cipher suites
        + b"\x01\x00"  # compression: null
        + struct.pack("!H", len(extensions)) + extensions
    )  # fmt: skip
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def test_tls_client_hello_split_and_reordered(tmp_path: Path) -> None:
    connection = Connection(dport=443)
    hello = client_hello("reordered.example.net")
    first, second, third, fourth = connection.segments(0, hello, (5, 30, 60))
    connection.send(third, fourth, second, first)
    events, _ = connection.decode(tmp_path)
    (event,) = [e for e in events if e["event"]["dataset"] == "network.tls"]
    assert event["tls"]["client"]["server_name"] == "reordered.example.net"


@pytest.mark.parametrize("split", [1, 2, 3], ids=lambda n: f"first segment {n} bytes")
def test_a_connection_opened_with_a_few_bytes_is_still_recognised(tmp_path: Path, split: int) -> None:
    # Splitting a request's or a handshake's first bytes into tiny segments must not hide it.
    web, tls = Connection(), Connection(sport=40001, dport=443)
    web.send(*web.segments(0, REQUEST, (split,)))
    tls.send(*tls.segments(0, client_hello("split.example"), (split,)))
    (tmp_path / "web").mkdir()
    (tmp_path / "tls").mkdir()
    events = web.decode(tmp_path / "web")[0] + tls.decode(tmp_path / "tls")[0]
    (request,) = http_events(events)
    assert request["url"]["original"] == "/index.html?q=1"
    (hello,) = [e for e in events if e["event"]["dataset"] == "network.tls"]
    assert hello["tls"]["client"]["server_name"] == "split.example"


def test_a_connection_whose_first_bytes_are_neither_http_nor_tls_is_left_alone(tmp_path: Path) -> None:
    connection = Connection()
    connection.send(*connection.segments(0, b"XGET " + REQUEST, (1,)))
    events, _ = connection.decode(tmp_path)
    assert not http_events(events)


def test_keep_alive_with_a_chunked_response_then_another_exchange(tmp_path: Path) -> None:
    connection = Connection()
    connection.say(0, REQUEST)
    connection.say(1, CHUNKED, (40,))
    connection.say(0, SECOND_REQUEST)
    connection.say(1, SECOND_RESPONSE)
    events, _ = connection.decode(tmp_path)
    first, second = http_events(events)
    assert first["url"]["path"] == "/index.html"
    assert first["http"]["response"] == {"status_code": 200, "body": {"bytes": 31}}
    assert second["url"]["path"] == "/second"
    assert second["http"]["response"]["status_code"] == 404


AWKWARD_CUTS = {
    "inside the size line": CHUNKED.index(b"1a;") + 1,
    "inside the extension": CHUNKED.index(b"=value") + 2,
    "inside the CRLF after the size": CHUNKED.index(b"\r\naaaa") + 1,
    "inside the CRLF after the data": CHUNKED.index(b"a\r\n5") + 2,
    "before the last chunk": CHUNKED.index(b"0\r\nX"),
    "inside the last chunk's CRLF": CHUNKED.index(b"0\r\nX") + 2,
    "inside the trailer": CHUNKED.index(b"Trailer"),
    "inside the final CRLF": len(CHUNKED) - 1,
}


@pytest.mark.parametrize("cut", AWKWARD_CUTS.values(), ids=AWKWARD_CUTS.keys())
def test_chunk_framing_split_at_awkward_bytes(tmp_path: Path, cut: int) -> None:
    connection = Connection()
    connection.say(0, REQUEST)
    connection.say(1, CHUNKED, (cut,))
    connection.say(0, SECOND_REQUEST)
    connection.say(1, SECOND_RESPONSE)
    events, _ = connection.decode(tmp_path)
    assert [e["http"]["response"] for e in http_events(events)] == [
        {"status_code": 200, "body": {"bytes": 31}},
        {"status_code": 404, "body": {"bytes": 0}},
    ]


def test_chunked_body_one_byte_a_segment() -> None:
    parser = HttpParser()
    parser.feed(0, REQUEST)
    done: list[Event] = []
    for byte in range(len(CHUNKED)):
        done += parser.feed(1, CHUNKED[byte : byte + 1])
    (event,) = done
    assert event["http"]["response"]["body"] == {"bytes": 31}


def test_malformed_chunk_size_keeps_the_earlier_exchange(tmp_path: Path) -> None:
    connection = Connection()
    connection.say(0, REQUEST)
    connection.say(1, RESPONSE)
    connection.say(0, SECOND_REQUEST)
    connection.say(1, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x1z\r\nabc\r\n0\r\n\r\n")
    connection.say(0, REQUEST)
    connection.say(1, RESPONSE)  # not parsed: the server's framing was lost
    events, _ = connection.decode(tmp_path)
    first, second, third = http_events(events)
    assert first["http"]["response"] == {"status_code": 200, "body": {"bytes": 5}, "mime_type": "text/plain"}
    assert second["url"]["path"] == "/second"
    assert second["http"]["response"] == {"status_code": 200}  # sent on as the framing broke, without a size
    assert third["url"]["path"] == "/index.html" and "response" not in third["http"]


def test_too_long_chunk_size_line_stops_the_direction() -> None:
    parser = HttpParser()
    parser.feed(0, REQUEST)
    assert parser.feed(1, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1" + b"0" * 2000) != []
    assert parser.feed(1, RESPONSE) == []


def test_chunked_request_body_size_and_a_transfer_coding_that_does_not_frame() -> None:
    parser = HttpParser()
    parser.feed(0, b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    parser.feed(0, b"POST /raw HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc")
    parser.feed(0, SECOND_REQUEST)  # not parsed: the body before it has no length
    first, second = parser.finish()
    assert first["http"]["request"] == {"method": "POST", "body": {"bytes": 3}}
    assert second["http"]["request"] == {"method": "POST"}


def test_an_interim_100_continue_does_not_take_the_final_response_s_place() -> None:
    parser = HttpParser()
    parser.feed(0, b"POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
    assert parser.feed(1, b"HTTP/1.1 100 Continue\r\n\r\n") == []
    parser.feed(0, b"abc" + SECOND_REQUEST)
    first, second = parser.feed(1, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n" + SECOND_RESPONSE)
    assert first["url"]["path"] == "/up" and first["http"]["response"]["status_code"] == 201
    assert second["url"]["path"] == "/second" and second["http"]["response"]["status_code"] == 404


def test_after_switching_protocols_neither_direction_is_read_as_http() -> None:
    parser = HttpParser()
    parser.feed(0, b"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    (upgrade,) = parser.feed(1, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
    assert upgrade["http"]["response"]["status_code"] == 101
    # Bytes of the new protocol that happen to look like an HTTP exchange are not one.
    parser.feed(0, SECOND_REQUEST)
    assert parser.feed(1, SECOND_RESPONSE) == [] and parser.finish() == []


def test_a_hole_never_filled_is_a_gap_and_the_events_before_it_stay(tmp_path: Path) -> None:
    connection = Connection()
    connection.say(0, REQUEST)
    connection.say(1, RESPONSE)
    connection.say(0, SECOND_REQUEST)
    _lost, *after = connection.segments(1, SECOND_RESPONSE + RESPONSE, (10, 30))
    connection.send(*after)
    events, processor = connection.decode(tmp_path)
    first, second = http_events(events)
    assert first["http"]["response"]["status_code"] == 200
    assert second["url"]["path"] == "/second" and "response" not in second["http"]
    assert processor.stats.dropped["tcp_gap"] == 1


def test_a_full_store_gives_up_the_direction_and_counts_once(tmp_path: Path) -> None:
    connection = Connection()
    connection.say(0, REQUEST)
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n" + b"x" * (MAX_HELD_BYTES + 2000)
    cuts = (20, *range(8000, len(response), 8000))  # fewer segments than the count bound: the byte bound
    lost, *after = connection.segments(1, response, cuts)
    connection.send(*after, lost)  # the missing bytes come too late: the direction was given up
    connection.say(0, SECOND_REQUEST)  # the client's direction goes on
    events, processor = connection.decode(tmp_path)
    assert [e["url"]["path"] for e in http_events(events)] == ["/index.html", "/second"]
    assert all("response" not in e["http"] for e in http_events(events))
    assert processor.stats.dropped["tcp_gap"] == 1


def test_the_segment_count_bound() -> None:
    stream = TcpStream()
    stream.next_seq = 100
    for index in range(MAX_HELD_SEGMENTS):
        assert stream.accept(200 + 2 * index, b"x") == []
    assert not stream.gave_up
    assert stream.accept(1000, b"x") == [] and stream.gave_up
    assert not stream.held and stream.accept(100, b"late") == []


def test_sequence_wrap_around_with_reordering(tmp_path: Path) -> None:
    connection = Connection(client_isn=0xFFFFFFFF - 30, server_isn=0xFFFFFFF0)
    first, second, third = connection.segments(0, REQUEST, (20, 45))  # the wrap falls inside the second
    connection.send(third, second, first)
    response = connection.segments(1, RESPONSE, (8, 30))
    connection.send(response[1], response[0], response[2])
    connection.say(0, SECOND_REQUEST)
    connection.say(1, SECOND_RESPONSE)
    events, processor = connection.decode(tmp_path)
    assert [(e["url"]["path"], e["http"]["response"]["status_code"]) for e in http_events(events)] == [
        ("/index.html", 200),
        ("/second", 404),
    ]
    assert "tcp_gap" not in processor.stats.dropped


def test_retransmissions_and_overlaps_are_cut_to_the_new_bytes() -> None:
    stream = TcpStream()
    stream.next_seq = 0xFFFFFFFE
    assert stream.accept(0xFFFFFFFE + 4 & 0xFFFFFFFF, b"efgh") == []  # ahead, across the wrap
    assert stream.accept(0xFFFFFFFE + 6 & 0xFFFFFFFF, b"ghij") == []  # overlaps the one held
    assert stream.accept(0xFFFFFFFE + 4 & 0xFFFFFFFF, b"ef") == []  # the same start, shorter: dropped
    assert stream.accept(0xFFFFFFFE, b"abcdef") == [b"abcdef", b"gh", b"ij"]
    assert stream.accept(0xFFFFFFFE, b"abcdefghijkl") == [b"kl"]  # a retransmission with new bytes at its end
    assert stream.accept(0xFFFFFFFE + 3 & 0xFFFFFFFF, b"def") == []  # wholly old
    assert stream.next_seq == 10 and not stream.held


def test_a_hole_inside_a_known_length_body_is_skipped(tmp_path: Path) -> None:
    connection = Connection()
    connection.say(0, REQUEST)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n"
    sent, lost, rest = connection.segments(1, head + b"z" * 3000, (len(head) + 100, len(head) + 1500))
    connection.send(sent, rest)  # the hole lies inside the body: nothing waits for it
    connection.say(0, SECOND_REQUEST)
    connection.say(1, SECOND_RESPONSE)
    connection.send(lost)  # a late copy is old data by now
    events, processor = connection.decode(tmp_path)
    assert [e["http"]["response"]["status_code"] for e in http_events(events)] == [200, 404]
    assert "tcp_gap" not in processor.stats.dropped


def test_a_hole_inside_a_chunk_is_skipped(tmp_path: Path) -> None:
    connection = Connection()
    connection.say(0, REQUEST)
    response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + b"c" * 0x800 + b"\r\n0\r\n\r\n"
    start = response.index(b"cccc")
    sent, _lost, rest = connection.segments(1, response, (start + 10, start + 1000))
    connection.send(sent, rest)
    connection.say(0, SECOND_REQUEST)
    connection.say(1, SECOND_RESPONSE)
    events, _ = connection.decode(tmp_path)
    assert [e["http"]["response"] for e in http_events(events)] == [
        {"status_code": 200, "body": {"bytes": 0x800}},
        {"status_code": 404, "body": {"bytes": 0}},
    ]


def test_data_on_a_syn_and_a_repeated_syn(tmp_path: Path) -> None:
    connection = Connection()
    connection.frames.clear()
    connection.send(connection.packet(0, 1000, REQUEST[:20], "S"))  # TCP Fast Open: data on the SYN
    connection.send(connection.packet(0, 1000, b"", "S"))  # the SYN again
    connection.send(connection.packet(1, 9000, b"", "SA"))
    connection.next_seq[0] = 1001 + 20
    connection.say(0, REQUEST[20:])
    connection.say(1, RESPONSE)
    events, _ = connection.decode(tmp_path)
    (event,) = http_events(events)
    assert event["url"]["domain"] == "example.org" and event["http"]["response"]["status_code"] == 200


def test_suricata_gap_beyond_body_capture() -> None:
    processor = PacketProcessor()
    path = PCAP / "http" / "http-gap-beyond-body" / "input.pcap"
    events = http_events(list(packets_to_events(read_capture(path), processor)))
    # As Suricata's test.yaml expects: /1 with its response, /2 and /3 without (the server's bytes after the hole).
    assert [(e["url"]["original"], e["http"].get("response", {}).get("status_code")) for e in events] == [
        ("/1", 200),
        ("/2", None),
        ("/3", None),
    ]
    assert processor.stats.dropped["tcp_gap"] == 1


def test_shuffled_duplicated_segments_come_out_as_sent() -> None:
    generator = random.Random(7)
    for _ in range(200):
        data = generator.randbytes(generator.randrange(1, 3000))
        start = generator.choice([0, 1000, 0xFFFFFFFF - generator.randrange(3000)])
        cuts = sorted(generator.sample(range(1, len(data)), min(len(data) - 1, generator.randrange(0, 20))))
        bounds = [0, *cuts, len(data)]
        segments = [(start + a & 0xFFFFFFFF, data[a:b]) for a, b in itertools.pairwise(bounds)]
        segments += generator.sample(segments, len(segments) // 3)  # retransmissions
        segments += [
            (start + a & 0xFFFFFFFF, data[a : a + 50]) for a in generator.choices(bounds[:-1], k=2)
        ]  # overlaps
        generator.shuffle(segments)
        stream = TcpStream()
        stream.next_seq = start
        out = b"".join(
            piece for seq, payload in segments for piece in stream.accept(seq, payload) if isinstance(piece, bytes)
        )
        assert not stream.gave_up and out == data and not stream.held


def test_chunked_body_split_at_every_byte() -> None:
    for cut in range(1, len(CHUNKED)):
        parser = HttpParser()
        parser.feed(0, REQUEST + SECOND_REQUEST)
        done = parser.feed(1, CHUNKED[:cut]) + parser.feed(1, CHUNKED[cut:] + SECOND_RESPONSE)
        assert [e["http"]["response"].get("body") for e in done] == [{"bytes": 31}, {"bytes": 0}], cut

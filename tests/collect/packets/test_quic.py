"""QUIC Initial packets to ClientHello events, against suricata-verify captures and RFC test vectors.

Suricata lists a hello's extensions in wire order with GREASE values; secmon's ``ja3_string``
keeps the order without GREASE, so "Suricata's extension i" is read from that list.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secmon.collect.transforms.packets import (
    DecodeStats,
    PacketProcessor,
    decode_frame,
    packets_to_events,
    read_capture,
)
from secmon.collect.transforms.packets.decode import Packet
from secmon.collect.transforms.packets.quic import MAX_CRYPTO, VERSIONS, InitialKeys, QuicParser, initial_keys
from secmon.events import Event

PCAP = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "pcap"
JA4_QUIC = "q13d0310h3_55b375c5d22e_cd85d2d88918"
SERVER_NAME, SUPPORTED_GROUPS = "0", "10"
V1, V2 = 0x00000001, 0x6B3343CF


def quic_events(folder: str, processor: PacketProcessor | None = None) -> list[Event]:
    events = packets_to_events(read_capture(PCAP / folder / "input.pcap"), processor)
    return [e for e in events if e["event"]["dataset"] == "network.quic"]


def extensions(event: Event) -> list[str]:
    """The ClientHello's extension codes in wire order, GREASE left out."""
    return str(event["tls"]["client"]["ja3_string"]).split(",")[2].split("-")


def quic_drops(processor: PacketProcessor) -> dict[str, int]:
    return {reason: n for reason, n in processor.stats.dropped.items() if reason.startswith("quic")}


def test_crypto_fragments_out_of_order_over_two_packets() -> None:
    processor = PacketProcessor()
    [event] = quic_events("quic/quic-frag-unordered", processor)
    assert event["event"] == {
        "kind": "event", "category": ["network"], "type": ["protocol"], "dataset": "network.quic",
    }  # fmt: skip
    assert event["network"]["protocol"] == "quic"
    assert event["network"]["transport"] == "udp"
    assert event["network"]["community_id"].startswith("1:")
    assert event["source"] == {"ip": "192.168.0.5", "port": 52755}
    assert event["destination"] == {"ip": "151.101.129.91", "port": 443}
    assert event["quic"] == {"version": "1"}
    client = event["tls"]["client"]
    assert client["server_name"] == "mastodon.social"
    assert client["alpn"] == ["h3"]
    assert client["ja4"].startswith("q13d")
    assert event["tls"]["version"] == "1.3"
    ext = extensions(event)
    assert ext[0] == SUPPORTED_GROUPS
    assert ext[7] == SERVER_NAME
    assert quic_drops(processor) == {}


def test_a_packet_without_new_crypto_data_in_between() -> None:
    processor = PacketProcessor()
    [event] = quic_events("quic/quic-frag-wait", processor)
    assert event["tls"]["client"]["server_name"] == "www.google.com"
    assert quic_drops(processor) == {}  # Suricata: no anomaly


def test_retransmitted_initials_give_one_event() -> None:
    processor = PacketProcessor()
    [event] = quic_events("quic/quic-initial-not-first", processor)
    assert event["tls"]["client"]["server_name"] == "scontent-ams4-1.xx.fbcdn.net"
    assert extensions(event)[0] == SERVER_NAME  # Suricata's [1], after a GREASE extension
    assert quic_drops(processor) == {}


def test_retry_starts_a_new_client_hello_with_new_keys() -> None:
    processor = PacketProcessor()
    first, second = quic_events("quic/quic-retry", processor)  # Suricata: frames 2 and 6
    for event in (first, second):
        assert event["tls"]["client"]["server_name"] == "www.gravatar.com"
        assert extensions(event)[0] == SUPPORTED_GROUPS
    assert first["@timestamp"] < second["@timestamp"]
    assert quic_drops(processor) == {}


def test_ja4_of_every_quic_connection() -> None:
    events = quic_events("ja4/ja4-quic")
    assert len(events) == 11
    assert {e["tls"]["client"]["ja4"] for e in events} == {JA4_QUIC}
    names = Counter(e["tls"]["client"]["server_name"] for e in events)
    assert names == Counter(
        ["www.blogger.com", "socpuppet.blogspot.com", "apis.google.com", "www.blogger.com", "apis.google.com",
         "www.google.com", "www.gstatic.com", "fonts.gstatic.com", "4.bp.blogspot.com", "1.bp.blogspot.com",
         "2.bp.blogspot.com"]
    )  # fmt: skip
    assert all(e["source"]["ip"] == "192.168.178.25" and e["destination"]["port"] == 443 for e in events)


def test_quic_and_tcp_tls_in_one_capture() -> None:
    events = list(packets_to_events(read_capture(PCAP / "ja4/ja4-rules/input.pcap")))
    ja4 = {(e["event"]["dataset"], e["tls"]["client"]["ja4"]) for e in events if "tls" in e}
    assert ja4 == {("network.tls", "t13d1516h2_8daaf6152771_e5627efa2ab1"), ("network.quic", JA4_QUIC)}


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        # RFC 9001 Appendix A.1 and RFC 9369 Appendix A.1, both for the client's DCID 0x8394c8f03e515708.
        (V1, ("1f369613dd76d5467730efcbe3b1a22d", "fa044b2f42a3fd3b46fb255c", "9f50449e04a0e810283a1e9933adedd2")),
        (V2, ("8b1a0bc121284290a29e0971b5cd045d", "91f73e2351d8fa91660e909f", "45b95e15235d6f45a6b19cbcb0294ba9")),
    ],
)
def test_initial_keys_match_the_rfc_vectors(version: int, expected: tuple[str, str, str]) -> None:
    keys = initial_keys(VERSIONS[version], bytes.fromhex("8394c8f03e515708"))
    assert (keys.key.hex(), keys.iv.hex(), keys.hp.hex()) == expected


# Synthetic Initials, sealed here with the cryptography package as a client would (RFC 9001 §5.3-5.4).


def varint(value: int) -> bytes:
    return (0x4000 | value).to_bytes(2, "big") if value >= 64 else bytes((value,))


def crypto_frame(offset: int, data: bytes) -> bytes:
    return b"\x06" + (0x80000000 | offset).to_bytes(4, "big") + varint(len(data)) + data


def seal(version: int, keys: InitialKeys, dcid: bytes, number: int, frames: bytes) -> bytes:
    """A client Initial of ``version`` carrying ``frames``, padded, with a 2-byte packet number."""
    frames = frames.ljust(1100, b"\x00")
    initial_type = VERSIONS[version].initial_type
    length = (2 + len(frames) + 16) | 0x4000
    header = (
        bytes((0xC0 | initial_type << 4 | 0x01,)) + version.to_bytes(4, "big") + bytes((len(dcid),)) + dcid
        + b"\x00" + b"\x00" + length.to_bytes(2, "big") + number.to_bytes(2, "big")
    )  # fmt: skip
    nonce = (int.from_bytes(keys.iv, "big") ^ number).to_bytes(12, "big")
    sealed = AESGCM(keys.key).encrypt(nonce, frames, header)
    pn_offset = len(header) - 2
    sample = sealed[2:18]  # the 16 bytes 4 after the packet number's start
    mask = Cipher(algorithms.AES(keys.hp), modes.ECB()).encryptor().update(sample)
    protected = bytearray(header + sealed)
    protected[0] ^= mask[0] & 0x0F
    protected[pn_offset] ^= mask[1]
    protected[pn_offset + 1] ^= mask[2]
    return bytes(protected)


def client_hello(server_name: str) -> bytes:
    """A minimal TLS 1.3 ClientHello handshake message with SNI and ALPN h3."""
    name = server_name.encode()
    sni = (len(name) + 3).to_bytes(2, "big") + b"\x00" + len(name).to_bytes(2, "big") + name
    alpn = b"\x00\x03\x02h3"
    versions = b"\x02\x03\x04"
    exts = (
        b"\x00\x00" + len(sni).to_bytes(2, "big") + sni
        + b"\x00\x10" + len(alpn).to_bytes(2, "big") + alpn
        + b"\x00\x2b" + len(versions).to_bytes(2, "big") + versions
    )  # fmt: skip
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + len(exts).to_bytes(2, "big") + exts
    return b"\x01" + len(body).to_bytes(3, "big") + body


DCID = bytes.fromhex("8394c8f03e515708")


@pytest.mark.parametrize("version", [V1, V2])
def test_a_hello_split_over_coalesced_packets_in_reverse_order(version: int) -> None:
    keys = initial_keys(VERSIONS[version], DCID)
    hello = client_hello("quic.example")
    half = len(hello) // 2
    second = seal(version, keys, DCID, 1, crypto_frame(half, hello[half:]))
    first = seal(version, keys, DCID, 0, b"\x01" + crypto_frame(0, hello[:half]))
    dropped: Counter[str] = Counter()
    parser = QuicParser()
    assert parser.feed(second, dropped) == []
    [event] = parser.feed(first, dropped)
    assert event["quic"] == {"version": "1" if version == V1 else "2"}
    assert event["tls"]["client"]["server_name"] == "quic.example"
    assert event["tls"]["client"]["ja4"].startswith("q13d0103h3_")
    assert not dropped
    # Both packets in one datagram, then again: a retransmission gives no second event.
    parser = QuicParser()
    assert len(parser.feed(second + first, dropped)) == 1
    assert parser.feed(second + first, dropped) == []
    assert not dropped


# Malformed input: counted, never raised.


def first_client_datagram(folder: str) -> bytes:
    ts, frame, linktype = next(iter(read_capture(PCAP / folder / "input.pcap")))
    packet = decode_frame(ts, frame, linktype, DecodeStats())
    assert isinstance(packet, Packet)
    return packet.payload


@pytest.mark.parametrize("cut", [1, 6, 7, 20, 30, 60, 600, 1200, 1249])
def test_a_truncated_initial_is_counted(cut: int) -> None:
    datagram = first_client_datagram("ja4/ja4-quic")
    dropped: Counter[str] = Counter()
    assert QuicParser().feed(datagram[:cut], dropped) == []
    assert dropped["quic_malformed"] == 1


def test_damaged_initials_never_raise() -> None:
    datagram = first_client_datagram("ja4/ja4-quic")
    chance = random.Random(9001)
    dropped: Counter[str] = Counter()
    for _ in range(300):
        damaged = bytearray(datagram)
        for _ in range(chance.randint(1, 4)):
            damaged[chance.randrange(len(damaged))] = chance.randrange(256)
        cut = chance.choice([len(damaged), chance.randrange(len(damaged))])
        QuicParser().feed(bytes(damaged[:cut]), dropped)
    assert dropped["quic_malformed"] + dropped["quic_undecryptable"] >= 290


def test_a_damaged_packet_is_counted_through_the_processor() -> None:
    frames = list(read_capture(PCAP / "ja4/ja4-quic/input.pcap"))
    ts, frame, linktype = frames[0]
    frames[0] = (ts, frame[:-1] + bytes((frame[-1] ^ 0xFF,)), linktype)  # the last byte of the AEAD tag
    processor = PacketProcessor()
    events = [e for e in packets_to_events(frames, processor) if e["event"]["dataset"] == "network.quic"]
    assert len(events) == 10
    assert quic_drops(processor) == {"quic_undecryptable": 1}


@pytest.mark.parametrize(
    "frames",
    [
        pytest.param(b"\x08\x00\x00", id="a STREAM frame, not allowed in an Initial"),
        pytest.param(b"\x06\x00\x7f\xff" + b"x" * 10, id="a CRYPTO frame longer than the packet"),
        pytest.param(crypto_frame(MAX_CRYPTO, b"x"), id="CRYPTO data beyond the bound"),
        pytest.param(crypto_frame(0, b"\x02\x00\x00\x04abcd"), id="a ServerHello from the client"),
        pytest.param(crypto_frame(0, b"\x01\x00\x00\x04\x03\x03\x00\x00"), id="a ClientHello too short to parse"),
        pytest.param(b"\x02\x00\x00\x80\x10\x00\x00", id="an ACK frame with more ranges than bytes"),
    ],
)
def test_malformed_frames_are_counted(frames: bytes) -> None:
    keys = initial_keys(VERSIONS[V1], DCID)
    dropped: Counter[str] = Counter()
    parser = QuicParser()
    assert parser.feed(seal(V1, keys, DCID, 0, frames), dropped) == []
    assert dropped == {"quic_malformed": 1}


def test_pending_crypto_fragments_are_bounded() -> None:
    keys = initial_keys(VERSIONS[V1], DCID)
    dropped: Counter[str] = Counter()
    parser = QuicParser()
    chunk = b"x" * 1000
    for number in range(80):  # fragments after a gap that never fills, overlapping at many offsets
        parser.feed(seal(V1, keys, DCID, number, crypto_frame(1 + number * 500, chunk)), dropped)
    assert dropped == {"quic_malformed": 1}
    assert parser.feed(seal(V1, keys, DCID, 81, crypto_frame(0, client_hello("late.example"))), dropped) == []


def test_undecryptable_initials_make_the_flow_give_up() -> None:
    dropped: Counter[str] = Counter()
    parser = QuicParser()
    wrong = initial_keys(VERSIONS[V1], b"not the dcid")
    for number in range(40):
        parser.feed(seal(V1, wrong, DCID, number, crypto_frame(0, b"x")), dropped)
    assert parser.gave_up
    assert dropped == {"quic_undecryptable": 16}

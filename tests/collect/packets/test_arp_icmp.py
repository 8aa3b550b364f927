"""ARP and ICMP events against Zeek's expected output for the same traces."""

from __future__ import annotations

import struct
from pathlib import Path

from secmon.collect.transforms.packets import packets_to_events, read_capture
from secmon.collect.transforms.packets.arp import BINDING_CHANGED_TAG, CORRUPT_TAG
from secmon.collect.transforms.packets.decode import LINKTYPE_ETHERNET
from secmon.events import Event

PCAP = Path(__file__).resolve().parents[4] / "shared" / "datasets" / "pcap"


def events_of(relative: str, dataset: str) -> list[Event]:
    return [e for e in packets_to_events(read_capture(PCAP / relative)) if e["event"]["dataset"] == dataset]


def zeek_mac(text: str) -> str:
    return text.strip().upper().replace(":", "-")


def test_arp_who_has_as_zeek_prints_it() -> None:
    lines = (PCAP / "zeek" / "arp-who-has.expected.stdout.txt").read_text().splitlines()[1:]
    events = events_of("zeek/arp-who-has.pcap", "network.arp")
    assert [e["arp"]["operation"] for e in events] == ["request", "reply"]
    for line, event in zip(lines, events, strict=True):
        _src_mac, _dst_mac, sender_ip, sender_mac, target_ip, _target_mac = (f.strip() for f in line.split(","))
        assert event["source"] == {"ip": sender_ip, "mac": zeek_mac(sender_mac)}
        assert event["destination"]["ip"] == target_ip


def test_corrupt_arp_headers_are_flagged_like_zeek() -> None:
    bad = [
        line
        for line in (PCAP / "zeek" / "arp-leak.expected.stdout.txt").read_text().splitlines()
        if line.startswith("BAD")
    ]
    events = events_of("zeek/arp-leak.pcap", "network.arp")
    assert len(events) == len(bad) == 6
    assert all(CORRUPT_TAG in e["tags"] and "ln=255" in e["error"]["message"] for e in events)
    assert all("source" not in e for e in events)  # addresses of unknown length are not read


def arp_reply(sender_mac: bytes, sender_ip: bytes) -> bytes:
    ethernet = b"\xff" * 6 + sender_mac + b"\x08\x06"
    return ethernet + struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, sender_mac, sender_ip, bytes(6), bytes(4))


def test_an_ip_moving_to_another_mac_is_a_change() -> None:
    gateway = bytes([192, 168, 0, 1])
    frames = [
        (0.0, arp_reply(b"\x00\x11\x22\x33\x44\x55", gateway), LINKTYPE_ETHERNET),
        (1.0, arp_reply(b"\x00\x11\x22\x33\x44\x55", gateway), LINKTYPE_ETHERNET),
        (2.0, arp_reply(b"\x66\x77\x88\x99\xaa\xbb", gateway), LINKTYPE_ETHERNET),
    ]
    events = list(packets_to_events(frames))
    assert [BINDING_CHANGED_TAG in e.get("tags", []) for e in events] == [False, False, True]
    assert events[2]["arp"]["previous_mac"] == "00-11-22-33-44-55"
    assert events[2]["source"]["mac"] == "66-77-88-99-AA-BB" and events[2]["event"]["type"] == ["change"]


def test_icmp_time_exceeded_names_the_packet_it_quotes() -> None:
    (event,) = events_of("zeek/icmp__icmp-timeexceeded.pcap", "network.icmp")
    assert event["icmp"]["type_name"] == "time_exceeded"
    assert event["icmp"]["original"] == {
        "source": {"ip": "10.0.0.2", "port": 30000},
        "destination": {"ip": "10.0.0.1", "port": 13000},
        "transport": "udp",
    }
    assert event["source"] == {"ip": "10.0.0.1"}


def test_pings_are_one_flow_each_way_counted() -> None:
    flows = events_of("zeek/icmp__5-pings.pcap", "network.flow")
    (flow,) = flows
    assert flow["source"]["packets"] == 5 and flow["destination"]["packets"] == 5
    assert flow["network"]["transport"] == "icmp"
    assert flow["icmp"] == {"type": 8, "code": 0}  # echo request: the first packet's, what a ping sweep rule needs
    assert not events_of("zeek/icmp__5-pings.pcap", "network.icmp")

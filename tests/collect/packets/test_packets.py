"""Packets to events, against suricata-verify captures and the values their test.yaml expects."""

from __future__ import annotations

import struct
from collections.abc import Generator
from pathlib import Path
from urllib.parse import unquote

import pytest

from secmon.collect.transforms import packets
from secmon.collect.transforms.packets import CaptureError, DecodeStats, decode_frame, packets_to_events, read_capture
from secmon.collect.transforms.packets.decode import LINKTYPE_ETHERNET
from secmon.collect.transforms.packets.dns import parse_dns
from secmon.collect.transforms.packets.flows import community_id
from secmon.collect.transforms.packets.http import HttpParser
from secmon.events import Event

PCAP = Path(__file__).resolve().parents[4] / "shared" / "datasets" / "pcap"


def events_of(relative: str, dataset: str | None = None) -> list[Event]:
    events = list(packets_to_events(read_capture(PCAP / relative)))
    return [e for e in events if dataset is None or e["event"]["dataset"] == dataset]


def test_public_surface() -> None:
    assert sorted(packets.__all__) == sorted(name for name in packets.__all__ if hasattr(packets, name))


def test_dns_queries_and_answers_as_suricata_expects() -> None:
    events = events_of("dns/dns__dns-udp-eve-txt/input.pcap", "network.dns")
    by = {(e["dns"]["id"], e["dns"]["type"]): e for e in events}
    query = by[("39372", "query")]
    assert query["dns"]["question"] == {"name": "textsecure-service-ca.whispersystems.org", "type": "A"}
    assert query["source"] == {"ip": "10.16.1.11", "port": 60922}
    assert query["destination"] == {"ip": "10.16.1.1", "port": 53}
    answer = by[("39372", "answer")]
    assert answer["dns"]["response_code"] == "NOERROR"
    assert answer["dns"]["answers"][0] == {
        "name": "textsecure-service-ca.whispersystems.org", "type": "A", "ttl": 5, "data": "34.197.178.240"
    }  # fmt: skip
    txt = by[("28243", "answer")]["dns"]
    assert txt["question"]["type"] == "TXT"
    assert txt["answers"][0]["data"] == "v=spf1 include:_spf.google.com ~all"
    assert txt["answers"][0]["ttl"] == 3217


def test_dns_counts_from_suricata_v2() -> None:
    events = events_of("dns/dns__v2__dns-eve/input.pcap", "network.dns")
    assert sum(e["dns"]["type"] == "query" for e in events) == 4
    assert sum(e["dns"]["type"] == "answer" for e in events) == 4


def test_flows_count_each_direction_like_suricata() -> None:
    flows = events_of("dns/dns__dns-udp-eve-txt/input.pcap", "network.flow")
    flow = next(f for f in flows if f["source"]["port"] == 60922)
    assert flow["source"] == {"ip": "10.16.1.11", "port": 60922, "bytes": 100, "packets": 1}
    assert flow["destination"] == {"ip": "10.16.1.1", "port": 53, "bytes": 116, "packets": 1}
    assert flow["event"]["start"] == "2017-06-08T15:45:58.520996Z"
    assert flow["event"]["end"] == "2017-06-08T15:45:58.525601Z"
    assert flow["network"]["transport"] == "udp"
    assert flow["network"]["bytes"] == 216 and flow["network"]["packets"] == 2
    assert flow["event"]["kind"] == "event" and flow["event"]["category"] == ["network"]


def test_community_id_matches_the_spec_example() -> None:
    # From corelight/community-id-spec baseline: tcp 128.232.110.120:34855 -> 66.35.250.204:80
    src, dst = bytes([128, 232, 110, 120]), bytes([66, 35, 250, 204])
    assert community_id(src, 34855, dst, 80, 6) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    assert community_id(dst, 80, src, 34855, 6) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="


def test_tls_sni_ja3_ja4() -> None:
    (event,) = events_of("ja4/ja4-rules/input.pcap", "network.tls")
    assert event["tls"]["client"]["ja4"] == "t13d1516h2_8daaf6152771_e5627efa2ab1"
    assert event["tls"]["client"]["server_name"] == "cloudflare-quic.com"
    (draft,) = events_of("tls/tls__tls13-draft22/tls13_draft22.pcap", "network.tls")
    assert draft["tls"]["client"]["server_name"] == "localhost"
    assert draft["tls"]["client"]["ja3_string"] == "771,4865-4867,0-43-13-10-40,23,"
    assert draft["tls"]["client"]["ja3"] == "786468211b4d23f9b725987b0de9d090"


def test_tls_client_hello_split_over_segments() -> None:
    (event,) = events_of("tls/tls__tls-client-hello-frag-01/dump_mtu300.pcap", "network.tls")
    assert event["tls"]["client"]["server_name"] == "www.google.com"


def test_http_request_and_response() -> None:
    (event,) = events_of("http/http-evader__http-evader-012/input.pcap", "network.http")
    assert event["http"]["request"]["method"] == "GET"
    assert event["url"]["domain"] == "evader.example.com"
    assert event["url"]["path"] == "/chunked/eicar.txt/size-%5C013"
    assert event["http"]["response"]["status_code"] == 200


def test_http_head_split_across_segments() -> None:
    parser = HttpParser()
    assert parser.feed(0, b"GET /a?b=1 HTTP/1.1\r\nHo") == []
    assert parser.feed(0, b"st: example.org\r\nUser-Agent: curl/8\r\n\r\n") == []
    (event,) = parser.feed(1, b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc")
    assert event["url"] == {"original": "/a?b=1", "path": "/a", "query": "b=1", "domain": "example.org"}
    assert event["user_agent"]["original"] == "curl/8"
    assert event["http"]["response"] == {"status_code": 404, "body": {"bytes": 3}}


def test_dns_compression_loop_is_rejected_not_followed() -> None:
    header = struct.pack("!HHHHHH", 1, 0x8180, 1, 1, 0, 0)
    question = b"\x01a\x00\x00\x01\x00\x01"
    looping_answer = b"\xc0\x13" + struct.pack("!HHIH", 1, 1, 60, 4) + b"\x01\x02\x03\x04"  # at byte 19: itself
    message = parse_dns(header + question + looping_answer)
    assert message is not None and message.question_name == "a" and message.answers == []
    two_step = b"\x01b\xc0\x13" + struct.pack("!HHIH", 1, 1, 60, 4) + b"\x01\x02\x03\x04"  # b.(b.(b...
    message = parse_dns(header + question + two_step)
    assert message is not None and message.answers == []
    assert parse_dns(header + b"\xc0\x0c") is None  # a question that points at itself


@pytest.mark.parametrize("cut", [0, 13, 20, 33, 40, 53])
def test_truncated_frames_are_counted_not_raised(cut: int) -> None:
    frame = bytes(12) + b"\x08\x00" + bytes.fromhex("450000280001000040060000") + bytes(8) + bytes(20)
    stats = DecodeStats()
    packet = decode_frame(0.0, frame[:cut], LINKTYPE_ETHERNET, stats)
    assert packet is None
    assert sum(stats.dropped.values()) == 1


@pytest.mark.parametrize("capture", ["ja4/ja4-rules/input.pcap", "ndpi/tcp_scan.pcapng"])
def test_truncated_capture_gives_events_then_error(tmp_path: Path, capture: str) -> None:
    whole = (PCAP / capture).read_bytes()
    cut = tmp_path / Path(capture).name
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    complete = list(read_capture(PCAP / capture))
    events: list[Event] = []
    with pytest.raises(CaptureError) as error:
        for event in packets_to_events(read_capture(cut)):
            events.append(event)
    assert str(cut) in str(error.value) and "byte" in error.value.reason
    frames_before = sum(e["network"]["packets"] for e in events if e["event"]["dataset"] == "network.flow")
    assert 0 < frames_before < len(complete)


def test_not_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(b"hello world, not a pcap")
    with pytest.raises(CaptureError):
        list(read_capture(path))


def test_every_dataset_capture_reads_without_error() -> None:
    for path in sorted(PCAP.rglob("*.pcap*")):
        if path.suffix == ".out":
            continue
        events = list(packets_to_events(read_capture(path)))
        assert all(e["event"]["dataset"].startswith("network.") for e in events), path


def test_http_requests_match_zeek_http_log() -> None:
    lines = (PCAP / "zeek" / "http__cooper-grill-dvwa.expected.http.log.cut").read_text().splitlines()
    expected = [line.split("\t")[1:4] for line in lines[2:] if line.strip()]
    events = events_of("zeek/http__cooper-grill-dvwa.pcapng", "network.http")
    # Zeek logs the URI %-decoded; url.original keeps it as sent.
    seen = [[e["http"]["request"]["method"], e["url"]["domain"], unquote(e["url"]["original"])] for e in events]
    assert seen == expected


def test_more_tls_expectations() -> None:
    (event,) = events_of("tls/tls__tls-fin-close-data-01/debug-s13.pcap", "network.tls")
    assert event["tls"]["client"]["server_name"] == "rr4---sn-5hne6nzy.googlevideo.com"
    (event,) = events_of("tls/tls-duplicate-hello/input.pcap", "network.tls")
    assert event["tls"]["client"]["ja3_string"] == (
        "771,4866-4867-4865-4868-49196-52393-49325-49162-49195-49324-49161-49200-52392-49172-49199-49171-157-49309-53-"
        "156-49308-47-159-52394-49311-57-158-49310-51,5-10-11-13-22-23-35-51-43-65281-0-45,23,0"
    )


def test_more_dns_expectations() -> None:
    (answer,) = [
        e for e in events_of("dns/dns__dns-udp-eve-log-srv/input.pcap", "network.dns") if e["dns"]["type"] == "answer"
    ]
    assert [a["data"] for a in answer["dns"]["answers"]] == [
        "20 1 5060 sip-anycast-2.voice.google.com",
        "10 1 5060 sip-anycast-1.voice.google.com",
    ]
    (query,) = [
        e for e in events_of("dns/dns__dns-forward-pointer/input.pcap", "network.dns") if e["dns"]["type"] == "query"
    ]
    assert query["dns"]["question"] == {"name": "codemonkey.net", "type": "A"}  # a forward pointer, accepted
    tcp = events_of("dns/dns__dns-tcp-www-google-com/dns.pcap", "network.dns")
    assert [(e["dns"]["type"], e["source"]["ip"]) for e in tcp] == [("query", "10.16.1.11"), ("answer", "8.8.4.4")]
    (reversed_answer,) = events_of("dns/dns-reversed-tcp-1/dns.pcap", "network.dns")
    assert reversed_answer["dns"]["type"] == "answer"


def test_stopping_early_is_clean() -> None:
    events = packets_to_events(read_capture(PCAP / "ndpi" / "synscan.pcap"))
    next(events)
    assert isinstance(events, Generator)
    events.close()

"""``secmon bench pcap``: the generated capture and both decoders' counts; no wall-clock thresholds."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from secmon.bench.pcap import (
    bench_secmon,
    build_bench_capture,
    readdress,
    source_captures,
)
from secmon.collect.transforms.packets import read_capture

PACKETS = 3_000


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bench_capture(tmp_path_factory.mktemp("pcap") / "bench.pcap", PACKETS).path


def test_capture_has_exactly_the_packets_asked_for_on_distinct_addresses(capture: Path) -> None:
    frames = list(read_capture(capture))
    assert len(frames) == PACKETS
    assert {linktype for _, _, linktype in frames} == {1}
    stamps = [ts for ts, _, _ in frames]
    assert stamps == sorted(stamps)
    sources = {Ether(data)[IP].src for _, data, _ in frames if IP in Ether(data)}
    assert len(sources) > len(source_captures())  # replays were re-addressed, not copied


def _valid_checksums(frame: bytes) -> list[bool]:
    packet = Ether(frame)
    results = []
    for layer in (IP, TCP, UDP):
        if layer in packet and (layer is IP or packet[IP].frag == 0) and len(bytes(packet[IP])) == packet[IP].len:
            rebuilt = Ether(frame)
            del rebuilt[layer].chksum
            results.append(Ether(bytes(rebuilt))[layer].chksum == packet[layer].chksum)
    return results


def test_readdressing_keeps_valid_checksums_valid() -> None:
    checked = 0
    for path in source_captures()[:20]:
        for _, frame, linktype in read_capture(path):
            if linktype != 1 or IP not in Ether(frame):
                continue
            new = readdress(frame, 0x1234)
            assert Ether(new)[IP].src != Ether(frame)[IP].src
            assert _valid_checksums(new) == _valid_checksums(frame)
            checked += 1
    assert checked > 50


def test_secmon_counts_every_packet_and_names_each_event(capture: Path) -> None:
    result = bench_secmon(capture, repeat=1)
    assert result.packets == PACKETS
    assert result.events["network.flow"] > 0 and result.events["network.dns"] > 0
    assert set(result.events) <= {f"network.{k}" for k in ("flow", "dns", "http", "tls", "icmp", "arp")}

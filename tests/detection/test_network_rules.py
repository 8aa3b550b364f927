"""secmon's network detections over real captures: a port scan, DNS tunnels, and quiet traffic that must stay quiet."""

from __future__ import annotations

import collections
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from secmon.collect.transforms.packets import packets_to_events, read_capture
from secmon.config import SHIPPED_RULES_DIR
from secmon.detection.correlation import CorrelationEngine
from secmon.detection.detector import Detector, load_detector

if TYPE_CHECKING:
    from scapy.packet import Packet

PCAP = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "pcap"


NETWORK_ALERTS = collections.Counter(
    {"TCP Port Scan": 1, "TCP Host Sweep": 1, "ICMP Ping Sweep": 1, "Possible DNS Tunnelling": 1}
)


@pytest.fixture(scope="module")
def detector() -> Detector:
    return load_detector([SHIPPED_RULES_DIR])


def alerts_of(detector: Detector, capture: Path) -> collections.Counter[str]:
    detector.correlation = CorrelationEngine(detector.ruleset.correlations)  # fresh windows for each capture
    found: collections.Counter[str] = collections.Counter()
    for number, event in enumerate(packets_to_events(read_capture(capture))):
        detection = detector.detect(event, str(number))
        found.update(rule.title for rule in detection.rules)
        found.update(hit.rule.title for hit in detection.correlations)
    return found


def test_a_syn_scan_is_one_port_scan_alert(detector: Detector) -> None:
    # nDPI's synscan: one host probes ~1,000 ports of another.
    found = alerts_of(detector, PCAP / "ndpi" / "synscan.pcap")
    assert found == {"TCP Port Scan": 1}  # the flows themselves are evidence, not alerts


@pytest.mark.parametrize("capture", ["ndpi/dns-tunnel-iodine.pcap", "dns/dns__bug-1158/input.pcap"])
def test_dns_tunnels_raise_the_tunnelling_alert(detector: Detector, capture: str) -> None:
    found = alerts_of(detector, PCAP / capture)
    assert found["Possible DNS Tunnelling"] == 1


@pytest.mark.parametrize(
    "capture", ["zeek/http__cooper-grill-dvwa.pcapng", "dns/dns__dns-tcp-www-google-com/dns.pcap", "ndpi/xss.pcap"]
)
def test_ordinary_traffic_raises_no_network_alert(detector: Detector, capture: str) -> None:
    found = alerts_of(detector, PCAP / capture)
    assert not found & NETWORK_ALERTS


def test_an_address_moving_to_another_mac_raises_the_arp_spoofing_alert(detector: Detector, tmp_path: Path) -> None:
    from scapy.all import ARP, Ether, wrpcap

    def reply(mac: str, at: int) -> Ether:
        frame = Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
            op=2, hwsrc=mac, psrc="192.168.7.1", hwdst="ff:ff:ff:ff:ff:ff", pdst="192.168.7.255"
        )
        frame.time = 1_700_000_000 + at
        return frame

    capture = tmp_path / "arp.pcap"
    wrpcap(str(capture), [reply("02:00:00:00:00:01", 0), reply("02:00:00:00:00:01", 1), reply("02:00:00:00:00:66", 2)])
    assert alerts_of(detector, capture) == {"ARP Binding Changed - Possible ARP Spoofing": 1}


def sweep_capture(path: Path, hosts: int, probe: Callable[[str], Packet]) -> Path:
    """A scanner at 10.9.0.5 probing ``hosts`` addresses of 10.9.1.0/24, one every 100 ms, some answering."""
    from scapy.all import wrpcap

    frames = []
    for n in range(hosts):
        frame = probe(f"10.9.1.{n + 1}")
        frame.time = 1_700_000_000 + n / 10
        frames.append(frame)
    wrpcap(str(path), frames)
    return path


def test_pinging_a_subnet_is_one_ping_sweep_alert(detector: Detector, tmp_path: Path) -> None:
    from scapy.all import ICMP, IP, Ether

    capture = sweep_capture(tmp_path / "ping.pcap", 40, lambda host: Ether() / IP(src="10.9.0.5", dst=host) / ICMP())
    assert alerts_of(detector, capture) == {"ICMP Ping Sweep": 1}


def test_probing_one_port_across_a_subnet_is_one_host_sweep_alert(detector: Detector, tmp_path: Path) -> None:
    from scapy.all import IP, TCP, Ether

    def syn(host: str) -> Packet:
        return Ether() / IP(src="10.9.0.5", dst=host) / TCP(sport=40000, dport=445, flags="S")

    assert alerts_of(detector, sweep_capture(tmp_path / "smb.pcap", 40, syn)) == {"TCP Host Sweep": 1}


def test_a_few_pings_and_connections_stay_below_the_sweep_thresholds(detector: Detector, tmp_path: Path) -> None:
    from scapy.all import ICMP, IP, TCP, Ether

    pings = sweep_capture(tmp_path / "ping.pcap", 19, lambda host: Ether() / IP(src="10.9.0.5", dst=host) / ICMP())
    syns = sweep_capture(
        tmp_path / "syn.pcap", 24, lambda host: Ether() / IP(src="10.9.0.5", dst=host) / TCP(dport=445, flags="S")
    )
    assert not alerts_of(detector, pings) and not alerts_of(detector, syns)

"""The kernel's packet log as iptables, nftables and ufw rules write it."""

from __future__ import annotations

import pytest

from tests.collect.programs.support import summary, syslog


def test_ufw_block() -> None:
    event = syslog(
        "Jan  2 03:04:05 h kernel: [ 5523.123456] [UFW BLOCK] IN=eth0 OUT= "
        "MAC=52:54:00:12:34:56:52:54:00:ab:cd:ef:08:00 "
        "SRC=203.0.113.9 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=49 ID=54321 DF PROTO=TCP SPT=51515 DPT=22 "
        "WINDOW=29200 RES=0x00 SYN URGP=0"
    )
    assert summary(event) == ("iptables", "block", None)
    assert event["event"]["category"] == ["network"]
    assert event["event"]["type"] == ["connection", "denied"]
    assert event["rule"] == {"name": "UFW BLOCK"}
    assert event["observer"] == {"ingress": {"interface": {"name": "eth0"}}}
    assert event["source"] == {"address": "203.0.113.9", "ip": "203.0.113.9", "port": 51515, "mac": "52-54-00-AB-CD-EF"}
    assert event["destination"] == {"address": "192.0.2.10", "ip": "192.0.2.10", "port": 22, "mac": "52-54-00-12-34-56"}
    assert event["network"] == {"transport": "tcp", "type": "ipv4"}
    assert event["iptables"]["ttl"] == "49"
    assert event["iptables"]["flags"] == ["DF", "SYN"]


@pytest.mark.parametrize(
    ("prefix", "action", "types"),
    [
        ("[UFW ALLOW] ", "allow", ["connection", "allowed"]),
        ("[UFW AUDIT] ", "audit", ["connection"]),
        ("IPTABLES-DROPPED: ", "block", ["connection", "denied"]),
        ("nft accept in: ", "allow", ["connection", "allowed"]),
        ("FW-LOG ", None, ["connection"]),  # a prefix that does not say: no action
        ("", None, ["connection"]),
    ],
)
def test_firewall_action_comes_from_the_log_prefix(prefix: str, action: str | None, types: list[str]) -> None:
    event = syslog(
        f"Jan  2 03:04:05 h kernel: {prefix}IN=eth0 OUT=eth1 SRC=10.0.0.1 DST=10.0.0.2 LEN=52 PROTO=UDP SPT=5 DPT=53"
    )
    assert event["event"].get("action") == action
    assert event["event"]["type"] == types
    assert event["observer"]["egress"] == {"interface": {"name": "eth1"}}
    assert event["network"]["transport"] == "udp"


def test_icmp_error_quoting_another_packet_keeps_the_outer_addresses() -> None:
    event = syslog(
        "Jan  2 03:04:05 h kernel: DROP IN=eth0 OUT= SRC=198.51.100.1 DST=192.0.2.10 LEN=88 PROTO=ICMP TYPE=3 CODE=3 "
        "[SRC=192.0.2.10 DST=198.51.100.1 LEN=60 PROTO=UDP SPT=53 DPT=33434 ]"
    )
    assert event["source"]["ip"] == "198.51.100.1"
    assert event["destination"]["ip"] == "192.0.2.10"
    assert "port" not in event["source"]
    assert event["icmp"] == {"type": 3, "code": 3}
    assert event["network"]["transport"] == "icmp"


def test_a_firewall_address_that_is_no_ip_is_not_claimed_as_one() -> None:
    event = syslog("Jan  2 03:04:05 h kernel: DROP IN=eth0 OUT= SRC=999.1.1.1 DST=10.0.0.2 PROTO=TCP SPT=1 DPT=2")
    assert event["source"] == {"address": "999.1.1.1"}
    assert event["destination"] == {"address": "10.0.0.2", "ip": "10.0.0.2", "port": 2}


def test_ipv6_firewall_line() -> None:
    event = syslog(
        "Jan  2 03:04:05 h kernel: [UFW BLOCK] IN=eth0 OUT= SRC=2001:db8::5 DST=2001:db8::1 LEN=80 PROTO=TCP "
        "SPT=1 DPT=443"
    )
    assert event["network"] == {"transport": "tcp", "type": "ipv6"}
    assert event["destination"]["port"] == 443

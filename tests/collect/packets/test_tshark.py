"""The packet decoder beside tshark (Debian's, Wireshark 4) on the same captures: DNS, HTTP, TLS (TCP and QUIC).

For every capture of the dataset's dns/, http/, tls/, ja4/ and quic/ folders, the set of values secmon
reports must equal the set tshark reports, except for the captures listed in ``KNOWN``, each with
the reason; those must still differ (a listed difference that went away is a stale entry).
Sets, not counts: tshark decodes a retransmitted message again, secmon's reassembly does not.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from secmon.collect.transforms.packets import CaptureError, packets_to_events, read_capture
from secmon.events import Event

PCAP = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "pcap"

KNOWN = {
    # DNS
    "dns-over-http2": "DNS inside HTTP/2 (DoH): secmon does not decode HTTP/2",
    "dns__dns-tcp-multirequest-buffer": "several DNS messages in one TCP segment: tshark decodes the first only",
    # HTTP
    "http-not09-spaces": "a request line with odd spacing: secmon reads it as a request, tshark does not",
    # TLS
    "tls-duplicate-hello": "a second, different ClientHello on one connection: secmon reports the first only",
}


def tshark(capture: Path, display_filter: str, *fields: str) -> set[tuple[str, ...]]:
    options = [item for field in fields for item in ("-e", field)]
    done = subprocess.run(
        ["tshark", "-n", "-r", str(capture), "-Y", display_filter, "-T", "fields", *options,
         "-E", "separator=|", "-E", "occurrence=f"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return {tuple(line.split("|")) for line in done.stdout.splitlines()}


def ours(capture: Path) -> list[Event]:
    events: list[Event] = []
    with contextlib.suppress(CaptureError):  # the events before the damage are kept; tshark reads the same part
        events.extend(packets_to_events(read_capture(capture)))
    return events


def printable(name: str) -> bool:
    """A name both tools write the same way: tshark and secmon escape raw bytes differently."""
    return bool(name) and name.isascii() and name.isprintable() and "\\" not in name


def dns_secmon(capture: Path) -> set[tuple[str, ...]]:
    return {
        (e["dns"]["question"]["name"].lower(), "1" if e["dns"]["type"] == "answer" else "0")
        for e in ours(capture)
        if e["event"]["dataset"] == "network.dns" and printable(e["dns"].get("question", {}).get("name", ""))
    }


def dns_tshark(capture: Path) -> set[tuple[str, ...]]:
    found = tshark(capture, "dns", "dns.qry.name", "dns.flags.response")
    return {(name.lower(), response) for name, response in found if printable(name)}


def http_secmon(capture: Path) -> set[tuple[str, ...]]:
    return {
        (e["http"]["request"]["method"], e.get("url", {}).get("domain", ""), e["url"]["original"])
        for e in ours(capture)
        if e["event"]["dataset"] == "network.http" and "method" in e["http"].get("request", {})
    }


def http_tshark(capture: Path) -> set[tuple[str, ...]]:
    return tshark(capture, "http.request", "http.request.method", "http.host", "http.request.uri")


def tls_secmon(capture: Path) -> set[tuple[str, ...]]:
    hellos = (e["tls"]["client"] for e in ours(capture) if e["event"]["dataset"] in ("network.tls", "network.quic"))
    return {(c.get("server_name", ""), c["ja3"]) for c in hellos if c.get("ja3")}


def tls_tshark(capture: Path) -> set[tuple[str, ...]]:
    found = tshark(capture, "tls.handshake.type == 1", "tls.handshake.extensions_server_name", "tls.handshake.ja3")
    return {hello for hello in found if hello[1]}


Reader = Callable[[Path], set[tuple[str, ...]]]
CASES: list[tuple[str, Reader, Reader]] = [
    ("dns", dns_secmon, dns_tshark),
    ("http", http_secmon, http_tshark),
    ("tls", tls_secmon, tls_tshark),
    ("ja4", tls_secmon, tls_tshark),
    ("quic", tls_secmon, tls_tshark),
]
CAPTURES = [
    pytest.param(folder, capture, mine, theirs, id=capture.parent.name)
    for folder, mine, theirs in CASES
    for capture in sorted((PCAP / folder).glob("*/*.pcap*"))
]


@pytest.mark.parametrize(("folder", "capture", "mine", "theirs"), CAPTURES)
def test_secmon_reads_what_tshark_reads(folder: str, capture: Path, mine: Reader, theirs: Reader) -> None:
    assert shutil.which("tshark"), "tshark is missing: ./run installs it (Debian package tshark)"
    ours_found, tshark_found = mine(capture), theirs(capture)
    known = KNOWN.get(capture.parent.name)
    if known is None:
        assert ours_found == tshark_found, (
            f"secmon only: {ours_found - tshark_found}; tshark only: {tshark_found - ours_found}"
        )
    else:
        assert ours_found != tshark_found, f"no longer differs ({known}): remove it from KNOWN"


def test_the_comparison_covers_every_protocol_folder() -> None:
    assert {folder for folder, *_ in CASES} <= {p.name for p in PCAP.iterdir()}
    assert len(CAPTURES) >= 80

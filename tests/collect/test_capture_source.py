"""Live capture across a veth pair: DNS, HTTP and a port scan from another network namespace.

The test builds its own private link (10.231.<n>.0/24) between the root namespace, where secmon
captures, and a namespace of its own, where the traffic comes from; nothing leaves the machine.
It needs root (namespaces and packet sockets), as CI has.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import AsyncElasticsearch

from secmon.collect.sources.capture import CaptureSource
from secmon.collect.sources.settings import CaptureSourceSettings
from secmon.config import SHIPPED_RULES_DIR, DetectionSettings
from secmon.detection.stage import DetectionStage
from secmon.store import IndexNames
from tests.support.pipeline import running_pipeline, search_all

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and packet capture need root")

SUBNET = 200 + os.getpid() % 50  # a /24 of its own per test process
HOST, PEER = f"10.231.{SUBNET}.1", f"10.231.{SUBNET}.2"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def veth_peer() -> Iterator[tuple[str, str]]:
    """(the root side's interface, the peer namespace's name), linked and addressed; removed after."""
    suffix = f"{os.getpid() % 100000}"
    namespace, outside, inside = f"smt{suffix}", f"smo{suffix}", f"smi{suffix}"
    ip("netns", "add", namespace)
    try:
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", namespace)
        ip("addr", "add", f"{HOST}/24", "dev", outside)
        ip("link", "set", outside, "up")
        ip("netns", "exec", namespace, "ip", "addr", "add", f"{PEER}/24", "dev", inside)
        ip("netns", "exec", namespace, "ip", "link", "set", inside, "up")
        ip("netns", "exec", namespace, "ip", "link", "set", "lo", "up")
        yield outside, namespace
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("link", "del", outside)
        ip("netns", "del", namespace)


@contextlib.contextmanager
def web_server() -> Iterator[int]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((HOST, 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def in_namespace(namespace: str, script: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", textwrap.dedent(script)],
        check=True,
        capture_output=True,
        timeout=60,
    )


TRAFFIC = """
import socket, struct, urllib.error, urllib.request
# A DNS query for secmon-probe.example.org (nobody answers: the capture sees the query).
name = b"".join(bytes([len(p)]) + p for p in b"secmon-probe.example.org".split(b".")) + b"\\0"
query = struct.pack("!HHHHHH", 0x5ec, 0x0100, 1, 0, 0, 0) + name + struct.pack("!HH", 1, 1)
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
    udp.sendto(query, ("{host}", 53))
    udp.sendto(b"\\x05\\xec not a DNS message", ("{host}", 53))  # counted as undecodable, never raised
try:
    urllib.request.urlopen("http://{host}:{port}/secmon-capture-test?x=1", timeout=10).read()
except urllib.error.HTTPError:
    pass  # 404: the server has no such file, which is fine
# A connect scan of 40 closed ports.
for port in range(20000, 20040):
    with socket.socket() as probe:
        probe.settimeout(1)
        try:
            probe.connect(("{host}", port))
        except OSError:
            pass
"""


async def test_live_capture_sees_dns_http_and_raises_the_port_scan_alert(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path, veth_peer: tuple[str, str]
) -> None:
    interface, namespace = veth_peer
    settings = CaptureSourceSettings(  # type: ignore[call-arg]
        interface=interface, idle_timeout=1.0, flush_interval=0.2, agency="telecom"
    )
    detection = DetectionStage.load(
        DetectionSettings(rules=[SHIPPED_RULES_DIR], group_window="0s"),  # type: ignore[call-arg]
        names.alerts,
        cache_dir=None,
        telemetry=None,
    )
    async with running_pipeline(es, names, tmp_path / "buffer", stages=[detection]) as pipeline:
        source = CaptureSource("uplink", settings, pipeline)
        await source.start()
        try:
            with web_server() as port:
                in_namespace(namespace, TRAFFIC.format(host=HOST, port=port))
        finally:
            await source.stop()  # flushes the open flows
    assert source.packets > 80
    discarded = pipeline.telemetry.value(
        "secmon_component_discarded_events_total", component="uplink", reason="dns_malformed"
    )
    assert discarded == 1
    dns = await search_all(es, names.events("network.dns"), {"term": {"source.ip": PEER}})
    assert [e["dns"]["question"]["name"] for e in dns] == ["secmon-probe.example.org"]  # type: ignore[index]
    web = await search_all(es, names.events("network.http"), {"term": {"source.ip": PEER}})
    assert [e["url"]["path"] for e in web] == ["/secmon-capture-test"]  # type: ignore[index]
    assert web[0]["http"]["response"]["status_code"] == 404  # type: ignore[index]
    flows = await search_all(es, names.events("network.flow"), {"term": {"source.ip": PEER}})
    assert len({f["destination"]["port"] for f in flows}) >= 41  # type: ignore[index]
    assert all(f["organization"]["id"] == "telecom" for f in flows)  # type: ignore[index]
    alerts = await search_all(es, names.alerts, {"term": {"source.ip": PEER}})
    assert [a["rule"]["title"] for a in alerts] == ["TCP Port Scan"]  # type: ignore[index]

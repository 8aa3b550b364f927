"""The syslog source on real sockets, into the real node through the pipeline."""

from __future__ import annotations

import asyncio
import secrets
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from elasticsearch import AsyncElasticsearch

from secmon.collect.sources.settings import SyslogSourceSettings
from secmon.collect.sources.syslog import TRUNCATED_TAG, SyslogSource
from secmon.store import IndexNames
from tests.support.pipeline import running_pipeline, search_all

RFC5424 = (
    "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
    '[exampleSDID@32473 iut="3" eventSource="Application"] An application event {n}'
)
RFC3164 = "<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8 {n}"


def syslog_settings(mode: str, dataset: str, **extra: object) -> SyslogSourceSettings:
    return SyslogSourceSettings(  # type: ignore[call-arg]
        mode=mode, address="127.0.0.1:0", agency="agency-a", dataset=dataset, **extra
    )


async def test_udp_datagrams_are_stored_with_the_sender_and_agency(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    dataset = f"test.syslog_udp_{secrets.token_hex(3)}"
    async with running_pipeline(es, names, tmp_path) as pipeline:
        source = SyslogSource("udp-in", syslog_settings("udp", dataset), pipeline)
        await source.start()
        assert source.address is not None
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for n in range(200):
            sender.sendto((RFC5424 if n % 2 else RFC3164).format(n=n).encode(), source.address)
            if n % 50 == 0:
                await asyncio.sleep(0.01)  # let the loop read: a real sender is not this bursty
        await asyncio.sleep(0.3)
        await source.stop()
        sender_port = sender.getsockname()[1]
        sender.close()
    events = await search_all(es, names.events(dataset))
    assert len(events) == 200
    assert {e["organization"]["id"] for e in events} == {"agency-a"}  # type: ignore[index]
    assert {e["log"]["source"]["address"] for e in events} == {f"127.0.0.1:{sender_port}"}  # type: ignore[index]
    originals = {e["event"]["original"] for e in events}  # type: ignore[index]
    assert RFC5424.format(n=1) in originals and RFC3164.format(n=0) in originals


@pytest.mark.parametrize("framing", ["newline", "octet-counting"])
async def test_tcp_streams_are_split_into_messages_and_stored_once(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path, framing: str
) -> None:
    dataset = f"test.syslog_tcp_{secrets.token_hex(3)}"
    messages = [(RFC5424 if n % 2 else RFC3164).format(n=n) for n in range(3000)]
    async with running_pipeline(es, names, tmp_path) as pipeline:
        source = SyslogSource("tcp-in", syslog_settings("tcp", dataset), pipeline)
        await source.start()
        assert source.address is not None
        _, writer = await asyncio.open_connection(*source.address)
        for message in messages:
            data = message.encode()
            writer.write(data + b"\n" if framing == "newline" else b"%d %b" % (len(data), data))
        await writer.drain()
        writer.close()
        await asyncio.sleep(0.3)
        await source.stop()
    events = await search_all(es, names.events(dataset))
    assert sorted(e["event"]["original"] for e in events) == sorted(messages)  # type: ignore[index]


async def test_malformed_input_is_stored_as_well_as_it_can_be_and_the_source_keeps_running(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    dataset = f"test.syslog_bad_{secrets.token_hex(3)}"
    settings = syslog_settings("tcp", dataset, max_message_bytes=64 * 1024)
    async with running_pipeline(es, names, tmp_path) as pipeline:
        source = SyslogSource("tcp-bad", settings, pipeline)
        await source.start()
        assert source.address is not None
        _, writer = await asyncio.open_connection(*source.address)
        writer.write(b"<13>invalid utf-8: \xff\xfe here\n")
        writer.write(b"<13>" + b"A" * 200_000 + b"\n")  # over max_message_bytes
        writer.write(bytes(range(1, 256)).replace(b"\n", b"") + b"\n")  # binary garbage
        writer.write(b"99999 <13>a truncated octet-counted frame, then the connection closes")
        await writer.drain()
        writer.close()
        # The source still serves a well-behaved sender afterwards.
        _, second = await asyncio.open_connection(*source.address)
        second.write(b"<13>Oct 11 22:14:15 host app: still listening\n")
        await second.drain()
        second.close()
        await asyncio.sleep(0.3)
        await source.stop()
    events = await search_all(es, names.events(dataset))
    originals = {e["event"]["original"]: e for e in events}  # type: ignore[index]
    assert "<13>invalid utf-8: \\xff\\xfe here" in originals
    cut = sorted(
        (e["event"]["original"] for e in events if TRUNCATED_TAG in e.get("tags", [])),  # type: ignore[index,operator]
        key=len,
    )
    assert len(cut) == 2
    assert cut[0].startswith("<13>a truncated octet-counted frame")
    assert len(cut[1]) == 64 * 1024
    assert any("still listening" in original for original in originals)
    assert len(events) == 5


async def test_tls_syslog_is_received(es: AsyncElasticsearch, names: IndexNames, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(  # noqa: ASYNC221  (a one-off certificate before the test starts)
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    dataset = f"test.syslog_tls_{secrets.token_hex(3)}"
    settings = syslog_settings("tls", dataset, tls_cert=cert, tls_key=key)
    async with running_pipeline(es, names, tmp_path / "buffer") as pipeline:
        source = SyslogSource("tls-in", settings, pipeline)
        await source.start()
        assert source.address is not None
        client_context = ssl.create_default_context(cafile=str(cert))
        _, writer = await asyncio.open_connection(*source.address, ssl=client_context, server_hostname="localhost")
        for n in range(50):
            writer.write(RFC3164.format(n=n).encode() + b"\n")
        await writer.drain()
        writer.close()
        await asyncio.sleep(0.3)
        await source.stop()
    assert len(await search_all(es, names.events(dataset))) == 50

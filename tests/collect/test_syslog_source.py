"""The syslog source on real sockets, into the real node through the pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from elasticsearch import AsyncElasticsearch

from secmon.collect.buffer import DiskBuffer
from secmon.collect.sources.settings import SyslogSourceSettings
from secmon.collect.sources.syslog import TRUNCATED_TAG, SyslogSource
from secmon.collect.telemetry import Telemetry
from secmon.collect.topology import Pipeline
from secmon.store import IndexNames
from tests.support.pipeline import running_pipeline, search_all
from tests.support.wait import until_at_least

RFC5424 = (
    "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
    '[exampleSDID@32473 iut="3" eventSource="Application"] An application event {n}'
)
RFC3164 = "<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8 {n}"


def syslog_settings(mode: str, dataset: str, **extra: object) -> SyslogSourceSettings:
    return SyslogSourceSettings(  # type: ignore[call-arg]
        mode=mode, address="127.0.0.1:0", agency="agency-a", dataset=dataset, **extra
    )


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def connect(
    source: SyslogSource, certificate: tuple[Path, Path]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A sender's connection to ``source``: TLS when the source is in mode tls."""
    assert source.address is not None
    if source.settings.mode != "tls":
        return await asyncio.open_connection(*source.address)
    context = ssl.create_default_context(cafile=str(certificate[0]))
    return await asyncio.open_connection(*source.address, ssl=context, server_hostname="localhost")


async def received(pipeline: Pipeline, component: str, count: int) -> None:
    """Wait until ``component`` has handed ``count`` records to the pipeline."""
    counted = lambda: pipeline.telemetry.value("secmon_component_received_events_total", component=component)  # noqa: E731
    await until_at_least(counted, count, f"{component}'s records")


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
        await received(pipeline, "udp-in", 200)
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
        await received(pipeline, "tcp-in", len(messages))
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
        await received(pipeline, "tcp-bad", 5)
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


async def test_tls_syslog_is_received(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
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
        await received(pipeline, "tls-in", 50)
        await source.stop()
    assert len(await search_all(es, names.events(dataset))) == 50


# -- stopping ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["tcp", "tls"])
async def test_a_stop_reads_each_connection_until_its_sender_closes_it(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path, certificate: tuple[Path, Path], mode: str
) -> None:
    dataset = f"test.syslog_stop_{mode}_{secrets.token_hex(3)}"
    cert, key = certificate
    tls = {"tls_cert": cert, "tls_key": key} if mode == "tls" else {}
    # A grace no test waits out: only the sender closing its connection ends this stop.
    settings = syslog_settings(mode, dataset, stop_grace=3600, **tls)
    before = [RFC3164.format(n=n) for n in range(2000)]
    during = [RFC5424.format(n=n) for n in range(2000, 2100)]
    async with running_pipeline(es, names, tmp_path / "buffer") as pipeline:
        source = SyslogSource("stop-in", settings, pipeline)
        await source.start()
        _, writer = await connect(source, certificate)
        writer.write("".join(message + "\n" for message in before).encode())
        await writer.drain()
        await received(pipeline, "stop-in", 1)  # the source serves the connection (its TLS handshake is done)
        stopping = asyncio.create_task(source.stop())
        await asyncio.sleep(0)  # the stop closes the listening socket first
        with pytest.raises(ConnectionRefusedError):
            await connect(source, certificate)
        assert not stopping.done()
        writer.write("".join(message + "\n" for message in during).encode())  # still read: within the grace
        await writer.drain()
        writer.close()
        await asyncio.wait_for(stopping, 60)
    stored = [e["event"]["original"] for e in await search_all(es, names.events(dataset))]  # type: ignore[index]
    assert sorted(stored) == sorted(before + during)


@pytest.mark.parametrize("mode", ["tcp", "tls"])
async def test_connections_still_open_after_the_grace_are_closed_and_what_they_sent_is_kept(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path, certificate: tuple[Path, Path], mode: str
) -> None:
    dataset = f"test.syslog_grace_{mode}_{secrets.token_hex(3)}"
    cert, key = certificate
    tls = {"tls_cert": cert, "tls_key": key} if mode == "tls" else {}
    messages = [RFC3164.format(n=n) for n in range(50)]
    async with running_pipeline(es, names, tmp_path / "buffer") as pipeline:
        source = SyslogSource("grace-in", syslog_settings(mode, dataset, stop_grace=0.2, **tls), pipeline)
        await source.start()
        reader, writer = await connect(source, certificate)
        # One write: the message left without its end arrives with the others, and waits for its newline.
        writer.write(("".join(message + "\n" for message in messages) + "<13>Oct 11 22:14:15 host app: cut").encode())
        await writer.drain()
        await received(pipeline, "grace-in", len(messages))
        await source.stop()  # the sender keeps its connection open
        with contextlib.suppress(ConnectionError):
            assert await reader.read() == b"", "the stop closes the connection on the sender"
        writer.close()
    events = await search_all(es, names.events(dataset))
    whole = [e["event"]["original"] for e in events if TRUNCATED_TAG not in e.get("tags", [])]  # type: ignore[index,operator]
    cut = [e["event"]["original"] for e in events if TRUNCATED_TAG in e.get("tags", [])]  # type: ignore[index,operator]
    assert sorted(whole) == sorted(messages)
    assert cut == ["<13>Oct 11 22:14:15 host app: cut"]


async def test_a_stop_with_the_buffer_full_ends_after_the_grace_and_counts_what_it_dropped(tmp_path: Path) -> None:
    # Elasticsearch is away and the buffer full: the sender is pushed back, and the stop must not wait for room.
    pipeline = Pipeline(IndexNames("unused"), DiskBuffer(tmp_path, max_bytes=64 * 1024), Telemetry())
    source = SyslogSource("full", syslog_settings("tcp", "test.unused", stop_grace=0.2), pipeline)
    await source.start()
    _, writer = await connect(source, ("", ""))  # type: ignore[arg-type]
    line = RFC3164.format(n=0).encode() + b"\n"
    writer.write(line * 20_000)  # 1.6 MB: more than the buffer takes
    while pipeline.buffer.pending_bytes < 64 * 1024:
        await asyncio.sleep(0.01)
    await asyncio.wait_for(source.stop(), 60)
    writer.close()
    telemetry = pipeline.telemetry
    received = telemetry.value("secmon_component_received_events_total", component="full")
    sent = telemetry.value("secmon_component_sent_events_total", component="full")
    dropped = telemetry.value("secmon_component_discarded_events_total", component="full", reason="buffer_full")
    assert dropped > 0
    assert sent + dropped == received
    pipeline.buffer.close()


async def test_a_stop_submits_the_datagrams_already_queued_on_the_socket(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    dataset = f"test.syslog_udp_stop_{secrets.token_hex(3)}"
    messages = [RFC3164.format(n=n) for n in range(50)]
    async with running_pipeline(es, names, tmp_path) as pipeline:
        source = SyslogSource("udp-stop", syslog_settings("udp", dataset), pipeline)
        await source.start()
        assert source.address is not None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for message in messages:  # no await: the event loop reads none of them before the stop
                sender.sendto(message.encode(), source.address)
        await source.stop()
    assert sorted(e["event"]["original"] for e in await search_all(es, names.events(dataset))) == sorted(messages)  # type: ignore[index]

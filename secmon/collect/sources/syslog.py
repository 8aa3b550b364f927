"""The syslog source: UDP datagrams, TCP streams (RFC 6587) and TLS streams.

TCP and TLS frames are either octet-counted (``<length> <message>``) or newline-terminated;
each frame is detected on its own, so a sender may mix them. A TCP sender is backpressured:
while the pipeline cannot take more, the source stops reading its socket. UDP cannot push back,
so datagrams that do not fit in the buffer are dropped and counted.

A stop loses nothing that reached secmon in time: it stops accepting, reads the datagrams already
queued on the UDP socket, and reads each open connection until its sender closes it, for up to
``stop_grace`` seconds. The connections still open then are closed; what was read from them is
submitted if the buffer has room (the rest is dropped and counted), and a message the close cut
short is kept, tagged ``_secmon_truncated``. A TLS connection still in its handshake when the stop
begins is seen only once the handshake is done, so it is waited for only if others still are.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from secmon.collect.sources import SourceEnvironment
from secmon.collect.sources.settings import SyslogSourceSettings
from secmon.collect.topology import Agency, Pipeline, SourceContext
from secmon.events import Event, Record
from secmon.log import get_logger

log = get_logger(__name__)

# An octet-counted frame carries a whole syslog message, which starts with its <PRI>.
_OCTET_COUNT = re.compile(rb"([1-9][0-9]{0,9}) (?=<)")
_PARTIAL_COUNT = re.compile(rb"[1-9][0-9]{0,9} ?\Z")
TRUNCATED_TAG = "_secmon_truncated"
_MAX_DATAGRAM = 1 << 16
_DATAGRAM_BATCH = 1000  # datagrams read on stop are submitted this many at a time


def _text(data: bytes) -> str:
    # Invalid UTF-8 stays visible as \xNN escapes rather than being lost or replaced by U+FFFD.
    return data.decode("utf-8", "backslashreplace").rstrip("\r\x00")


class SyslogSource:
    """Listens on ``settings.address`` and submits each message to ``pipeline``."""

    def __init__(self, component: str, settings: SyslogSourceSettings, pipeline: Pipeline) -> None:
        self.component = component
        self.settings = settings
        self.pipeline = pipeline
        agency = Agency(settings.agency, settings.agency_name) if settings.agency else None
        self.context = SourceContext(component, settings.format, agency, settings.dataset)
        self._server: asyncio.AbstractServer | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._datagrams: _Datagrams | None = None
        self._connections: set[_Connection] = set()
        self._grace_over = False  # stop's grace has run out: no more waiting for buffer room
        self.address: tuple[str, int] | None = None

    async def start(self) -> None:
        """Bind and start receiving; ``self.address`` is then the bound (host, port)."""
        host, _, port = self.settings.address.rpartition(":")
        loop = asyncio.get_running_loop()
        self._grace_over = False
        if self.settings.mode == "udp":
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self._on_datagrams), local_addr=(host, int(port))
            )
            self._transport, self._datagrams = transport, protocol
            self.address = transport.get_extra_info("sockname")[:2]
        else:
            tls = self._tls_context() if self.settings.mode == "tls" else None
            self._server = await asyncio.start_server(self._serve, host, int(port), ssl=tls, limit=1 << 16)
            self.address = self._server.sockets[0].getsockname()[:2]
        log.info("Listening.", component=self.component, mode=self.settings.mode, address=self.address)

    async def stop(self) -> None:
        """Stop accepting, deliver what already reached the source (see the module docstring), then close."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.stop_grace
        if self._transport is not None and self._datagrams is not None:
            self._datagrams.flush()
            self._read_queued_datagrams(deadline)
            self._transport.close()
            self._transport = self._datagrams = None
        if self._server is not None:
            self._server.close()
            await self._wait_for_connections(deadline)
            self._grace_over = True
            if self._connections:
                log.info(
                    "Closing the syslog connections still open after the stop's grace.",
                    component=self.component,
                    connections=len(self._connections),
                    grace=self.settings.stop_grace,
                )
            for connection in self._connections:
                connection.close_now()
            # Closed, they end at once: what they still hold no longer waits for buffer room.
            await self._wait_for_connections(None)
            await self._server.wait_closed()
            self._server = None

    async def _wait_for_connections(self, deadline: float | None) -> None:
        """Until every connection has ended (including any accepted meanwhile), or ``deadline`` (loop time)."""
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0)  # a connection accepted on this turn of the loop starts serving first
        while pending := [connection.task for connection in self._connections if not connection.task.done()]:
            timeout = None if deadline is None else deadline - loop.time()
            if timeout is not None and timeout <= 0:
                return
            await asyncio.wait(pending, timeout=timeout)

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if self.settings.tls_cert is None:
            raise ValueError(f"source {self.component}: mode tls needs tls_cert (and tls_key)")
        context.load_cert_chain(self.settings.tls_cert, self.settings.tls_key)
        if self.settings.tls_client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.settings.tls_client_ca)
        return context

    # -- UDP -------------------------------------------------------------------------------

    def _on_datagrams(self, datagrams: list[tuple[bytes, tuple[str, int]]]) -> None:
        now = time.time()
        records = [Record(_text(data), _origin(peer, "udp"), now) for data, peer in datagrams]
        self.pipeline.submit_nowait(records, self.context)

    def _read_queued_datagrams(self, deadline: float) -> None:
        """Submit the datagrams the socket received but the event loop has not read yet (until ``deadline``)."""
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        # A duplicate reads the same queue: the transport's own socket offers no recvfrom. It is
        # non-blocking like the original, and nothing else reads meanwhile (no await).
        queued: socket.socket = self._transport.get_extra_info("socket").dup()
        batch: list[tuple[bytes, tuple[str, int]]] = []
        with queued:
            while loop.time() < deadline:
                try:
                    data, peer = queued.recvfrom(_MAX_DATAGRAM)
                except (BlockingIOError, InterruptedError):
                    break
                batch.append((data, peer))
                if len(batch) >= _DATAGRAM_BATCH:
                    self._on_datagrams(batch)
                    batch = []
        if batch:
            self._on_datagrams(batch)

    # -- TCP and TLS -----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connection = _Connection(task, writer)
        if self._grace_over:  # accepted just as the stop closed the others
            connection.close_now()
            return
        self._connections.add(connection)
        peer = writer.get_extra_info("peername")[:2]
        # One origin per connection, shared by its records (normalization copies what it takes).
        whole, cut_short = _origin(peer, self.settings.mode), _origin(peer, self.settings.mode, cut=True)
        framing = Framing(self.settings.max_message_bytes)
        try:
            while chunk := await reader.read(1 << 16):
                frames = framing.feed(chunk)
                if frames:
                    now = time.time()
                    records = [Record(_text(frame), cut_short if cut else whole, now) for frame, cut in frames]
                    await self._submit(connection, records)
            if last := framing.finish():
                message, cut = last
                # A message whose end the stop's close kept from arriving is kept as far as it came.
                cut = cut or connection.closed_by_stop
                record = Record(_text(message), cut_short if cut else whole, time.time())
                await self._submit(connection, [record])
        except (ConnectionError, ssl.SSLError) as exc:
            log.info("A syslog connection broke.", component=self.component, peer=peer, error=exc)
        finally:
            self._connections.discard(connection)
            writer.close()

    async def _submit(self, connection: _Connection, records: list[Record]) -> None:
        """Submit, waiting for buffer room (the backpressure: nothing more is read until it fits).

        Once the stop's grace is over, nothing waits: what does not fit is dropped and counted.
        """
        if self._grace_over:
            self.pipeline.submit_nowait(records, self.context)
            return
        waiting = connection.waiting = asyncio.timeout(None)  # stop() may end it: see _Connection.close_now
        try:
            async with waiting:
                await self.pipeline.submit(records, self.context)
        except TimeoutError:
            if not waiting.expired():
                raise
            self.pipeline.telemetry.discarded.labels(self.component, "buffer_full").inc(len(records))
        finally:
            connection.waiting = None


@dataclass(slots=True, eq=False)  # each one is itself: a set holds the open ones
class _Connection:
    """An open TCP or TLS connection: the task reading it, its stream, and what it may be waiting for."""

    task: asyncio.Task[None]
    writer: asyncio.StreamWriter
    waiting: asyncio.Timeout | None = None  # while it waits for buffer room
    closed_by_stop: bool = False

    def close_now(self) -> None:
        """Close the socket (the reader then gets what was received, then the end) and stop waiting for room."""
        self.closed_by_stop = True
        self.writer.transport.abort()
        if self.waiting is not None:
            self.waiting.reschedule(asyncio.get_running_loop().time())  # expires at the next turn of the loop


def _origin(peer: tuple[str, int], transport: str, *, cut: bool = False) -> Event:
    """Where a record came from: the sender's address and the transport (and whether it was cut)."""
    origin: Event = {
        "log": {"source": {"address": f"{peer[0]}:{peer[1]}"}},
        "observer": {"type": f"syslog-{transport}"},
    }
    if cut:
        origin["tags"] = [TRUNCATED_TAG]
    return origin


class Framing:
    """Splits a TCP byte stream into syslog messages (RFC 6587), frame by frame.

    Messages longer than ``limit`` are cut to ``limit`` bytes (``feed`` returns them with
    ``cut=True``) and the rest of them is skipped.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._pending = bytearray()
        self._skip_bytes = 0  # rest of an over-long octet-counted frame, to discard
        self._skip_line = False  # rest of an over-long line, to discard

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        """Add ``data``; return the messages it completes, each with whether it was cut."""
        buf = self._pending
        buf += data
        frames: list[tuple[bytes, bool]] = []
        pos = 0
        while pos < len(buf):
            if self._skip_bytes:
                skipped = min(self._skip_bytes, len(buf) - pos)
                pos += skipped
                self._skip_bytes -= skipped
                continue
            if self._skip_line:
                newline = buf.find(b"\n", pos)
                if newline < 0:
                    pos = len(buf)
                    break
                pos, self._skip_line = newline + 1, False
                continue
            counted = _OCTET_COUNT.match(buf, pos)
            if counted is not None:
                length, start = int(counted[1]), counted.end()
                if length > self.limit:
                    if len(buf) - start < self.limit:
                        break
                    frames.append((bytes(buf[start : start + self.limit]), True))
                    pos, self._skip_bytes = start + self.limit, length - self.limit
                    continue
                if len(buf) - start < length:
                    break
                frames.append((bytes(buf[start : start + length]), False))
                pos = start + length
                continue
            if _PARTIAL_COUNT.match(buf, pos):
                break  # maybe the start of an octet count: wait for the next byte
            newline = buf.find(b"\n", pos)
            if newline < 0:
                if len(buf) - pos > self.limit:
                    frames.append((bytes(buf[pos : pos + self.limit]), True))
                    pos, self._skip_line = len(buf), True
                break
            line = buf[pos:newline]
            if len(line) > self.limit:
                frames.append((bytes(line[: self.limit]), True))
            elif line.strip(b"\r\x00 "):
                frames.append((bytes(line), False))
            pos = newline + 1
        del buf[:pos]
        return frames

    def finish(self) -> tuple[bytes, bool] | None:
        """What is left when the stream ends, if anything: (message, was it cut).

        A last message without its newline is whole; an octet-counted frame the sender did not
        finish is kept as far as it came, and marked as cut.
        """
        rest = bytes(self._pending)
        self._pending.clear()
        if self._skip_bytes or self._skip_line:
            return None
        counted = _OCTET_COUNT.match(rest)
        if counted is not None:
            return rest[counted.end() :], True
        rest = rest.strip(b"\r\x00 ")
        return (rest, False) if rest else None


class _Datagrams(asyncio.DatagramProtocol):
    """Collects the datagrams of one event-loop turn and hands them over as one batch."""

    def __init__(self, deliver: Callable[[list[tuple[bytes, tuple[str, int]]]], None]) -> None:
        self._deliver = deliver
        self._batch: list[tuple[bytes, tuple[str, int]]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self._batch:
            asyncio.get_running_loop().call_soon(self.flush)
        self._batch.append((data, addr))

    def flush(self) -> None:
        """Hand over the datagrams gathered so far (at the end of the loop turn, or on stop)."""
        batch, self._batch = self._batch, []
        if batch:
            self._deliver(batch)


def build(component: str, settings: SyslogSourceSettings, environment: SourceEnvironment) -> SyslogSource:
    """The :data:`~secmon.collect.sources.SOURCES` entry of ``type: syslog``."""
    return SyslogSource(component, settings, environment.pipeline)

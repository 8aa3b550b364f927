"""Live packet capture: frames from one interface become flow, DNS, HTTP, TLS, ICMP and ARP events.

A thread reads the AF_PACKET socket (scapy's ``L2ListenSocket``, which attaches the BPF filter)
into a bounded queue; every ``flush_interval`` the event loop decodes what is queued with
:class:`~secmon.collect.transforms.packets.PacketProcessor`, reports flows idle past their timeout,
and submits the events. Capture cannot push back on the wire: packets the queue has no room
for, and those the kernel dropped, are counted (``secmon_component_discarded_events`` with
reasons ``queue_full`` and ``kernel_drop``), as is what the decoder could not read, under its
reasons (``tcp_gap``, ``ip_fragment_timeout``, ``dns_malformed`` ...: see
:class:`~secmon.collect.transforms.packets.DecodeStats`).

A stop ends the capture, then decodes what is queued and reports every open flow, for up to
``stop_grace`` seconds (a hand-over under way is finished, not cut short).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import queue
import select
import struct
import threading
import time
from typing import Any

from secmon.collect.sources import SourceEnvironment
from secmon.collect.sources.settings import CaptureSourceSettings
from secmon.collect.topology import Agency, Pipeline, SourceContext
from secmon.collect.transforms.packets import PacketProcessor
from secmon.errors import IngestError
from secmon.log import get_logger

log = get_logger(__name__)

LINKTYPE_ETHERNET = 1
_SOL_PACKET = 263
_PACKET_STATISTICS = 6
_STATS = struct.Struct("II")  # struct tpacket_stats: packets, drops (reset by each read)


class CaptureSource:
    """The ``capture`` source: see the module docstring."""

    def __init__(self, component: str, settings: CaptureSourceSettings, pipeline: Pipeline) -> None:
        self.component = component
        self.settings = settings
        self.pipeline = pipeline
        agency = Agency(settings.agency, settings.agency_name) if settings.agency else None
        self.context = SourceContext(component, "raw", agency, settings.dataset)
        self.processor = PacketProcessor(settings.idle_timeout, settings.active_timeout, settings.max_flows)
        self.packets = 0
        self.kernel_drops = 0
        self.queue_drops = 0
        self._counted_queue_drops = 0
        self._counted_undecoded: collections.Counter[str] = collections.Counter()
        self._frames: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()
        self._socket: Any = None
        self._stopping = threading.Event()
        self._pump_stopping = asyncio.Event()
        self._reader: threading.Thread | None = None
        self._pump: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return self.settings.interface

    async def start(self) -> None:
        self._socket = await asyncio.to_thread(self._open)
        self._reader = threading.Thread(target=self._read, name=f"capture-{self.component}", daemon=True)
        self._reader.start()
        self._pump = asyncio.create_task(self._pump_loop(), name=f"capture-{self.component}")
        log.info("Capturing.", component=self.component, interface=self.settings.interface)

    async def stop(self) -> None:
        """Stop capturing; hand over what is queued and the open flows (see the module docstring)."""
        deadline = asyncio.get_running_loop().time() + self.settings.stop_grace
        self._stopping.set()
        if self._reader is not None:
            await asyncio.to_thread(self._reader.join)
        try:
            async with asyncio.timeout_at(deadline):
                if self._pump is not None:
                    self._pump_stopping.set()  # it ends after the hand-over under way, if any
                    await self._pump
                await self._hand_over(final=True)
        except TimeoutError:
            # The buffer had no room for that long (Elasticsearch away): capture cannot be replayed.
            log.warning(
                "Stopping before the captured packets were all handed over; the rest is lost.",
                component=self.component,
                grace=self.settings.stop_grace,
            )
        if self._socket is not None:
            self._socket.close()
        log.info(
            "Capture stopped.",
            component=self.component,
            packets=self.packets,
            kernel_drops=self.kernel_drops,
            queue_drops=self.queue_drops,
        )

    def _open(self) -> Any:
        from scapy.all import conf
        from scapy.error import Scapy_Exception

        try:
            return conf.L2listen(
                iface=self.settings.interface, filter=self.settings.bpf_filter, promisc=self.settings.promiscuous
            )
        except (OSError, Scapy_Exception) as exc:
            raise IngestError(f"source {self.component}: cannot capture on {self.settings.interface!r}: {exc}") from exc

    def _read(self) -> None:
        """The reader thread: frames into the queue until stopped."""
        sock, snaplen, limit = self._socket, self.settings.snaplen, self.settings.max_queue_packets
        while not self._stopping.is_set():
            readable, _, _ = select.select([sock], [], [], 0.2)
            if not readable:
                continue
            try:
                _, data, ts = sock.recv_raw(snaplen)
            except OSError as exc:
                log.error("Capture read failed; stopping this source.", component=self.component, error=repr(exc))
                return
            if data is None:
                continue
            if self._frames.qsize() >= limit:
                self.queue_drops += 1
                continue
            self._frames.put((ts or time.time(), data))

    async def _pump_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pump_stopping.wait(), self.settings.flush_interval)
                return  # stopping: stop() hands over what is left
            try:
                await self._hand_over(final=False)
            except Exception as exc:  # a decoder bug must not end the capture
                log.error("Packet processing failed.", component=self.component, error=repr(exc))
                self.pipeline.telemetry.errors.labels(self.component, "decode").inc()

    async def _hand_over(self, *, final: bool) -> None:
        """Decode the queued frames and submit their events (and, when ``final``, every open flow's)."""
        events = []
        process = self.processor.process
        while True:
            try:
                ts, data = self._frames.get_nowait()
            except queue.Empty:
                break
            self.packets += 1
            events.extend(process(ts, data, LINKTYPE_ETHERNET))
        events.extend(self.processor.flush() if final else self.processor.expire(time.time()))
        self._count_drops()
        if events:
            await self.pipeline.submit_events(events, [None] * len(events), self.context)

    def _count_drops(self) -> None:
        discarded = self.pipeline.telemetry.discarded
        if self.queue_drops:
            discarded.labels(self.component, "queue_full").inc(self.queue_drops - self._counted_queue_drops)
            self._counted_queue_drops = self.queue_drops
        undecoded = self.processor.stats.dropped
        if undecoded != self._counted_undecoded:
            for reason, count in (undecoded - self._counted_undecoded).items():
                discarded.labels(self.component, reason).inc(count)
            self._counted_undecoded = undecoded.copy()
        try:
            raw = self._socket.ins.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, _STATS.size)
        except (AttributeError, OSError):
            return
        _, drops = _STATS.unpack(raw)
        if drops:
            self.kernel_drops += drops
            discarded.labels(self.component, "kernel_drop").inc(drops)


def build(component: str, settings: CaptureSourceSettings, environment: SourceEnvironment) -> CaptureSource:
    """The :data:`~secmon.collect.sources.SOURCES` entry of ``type: capture``."""
    return CaptureSource(component, settings, environment.pipeline)

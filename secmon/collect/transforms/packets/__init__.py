"""Packets to ECS events: flows, DNS, HTTP/1.x, TLS handshakes (over TCP and QUIC), ICMP errors and ARP.

The path of one frame: :func:`~.decode.decode_frame` reads its headers into a
:class:`~.decode.Packet`, handing IP fragments to :class:`~.fragments.Defragmenter` until their
datagram is whole; :class:`~.flows.FlowTable` counts it in its flow; UDP port 53 goes to
:func:`~.dns.parse_dns`, a client's QUIC Initials to :class:`~.quic.QuicParser`; a TCP
connection's payload is put in order by :class:`~.streams.TcpStream` and goes to the parser its
first client bytes call for (HTTP method, TLS handshake record, or port 53); ICMP error messages
and ARP packets are events of their own. Scapy only reads capture files (:func:`read_capture`);
nothing on the per-packet path dissects with it.

Errors: :class:`CaptureError` for a file that cannot be read to its end. A frame or message that
cannot be read is counted (:attr:`PacketProcessor.stats`), never raised.
"""

from secmon.collect.transforms.packets.decode import CaptureError, DecodeStats, Packet, decode_frame, read_capture
from secmon.collect.transforms.packets.flows import FlowTable
from secmon.collect.transforms.packets.processor import PacketProcessor, packets_to_events

__all__ = [
    "CaptureError",
    "DecodeStats",
    "FlowTable",
    "Packet",
    "PacketProcessor",
    "decode_frame",
    "packets_to_events",
    "read_capture",
]

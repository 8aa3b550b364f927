"""TLS ClientHello and ServerHello from the two byte streams of a TCP connection: SNI, versions,
cipher, JA3 and JA4 (FoxIO's spec, https://github.com/FoxIO-LLC/ja4). Records and handshake
messages are reassembled per direction, bounded; parsing stops at the first encrypted record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from secmon.events import Event

DATASET = "network.tls"
MAX_HANDSHAKE = 64 * 1024

VERSIONS = {0x0300: "3.0", 0x0301: "1.0", 0x0302: "1.1", 0x0303: "1.2", 0x0304: "1.3"}
_JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0002: "s2",
                 0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}  # fmt: skip


def is_grease(value: int) -> bool:
    """The reserved GREASE values 0x0a0a, 0x1a1a, ... 0xfafa (RFC 8701)."""
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


def looks_like_tls(payload: bytes) -> bool:
    """Whether a client's first bytes begin a TLS handshake record."""
    return len(payload) >= 3 and payload[0] == 0x16 and payload[1] == 3


@dataclass(slots=True)
class ClientHello:
    version: int
    ciphers: list[int]
    extensions: list[int]
    server_name: str | None = None
    groups: list[int] = field(default_factory=list)
    point_formats: list[int] = field(default_factory=list)
    signature_algorithms: list[int] = field(default_factory=list)
    alpn: list[str] = field(default_factory=list)
    supported_versions: list[int] = field(default_factory=list)

    def ja3_string(self) -> str:
        """``version,ciphers,extensions,groups,point formats`` without GREASE values."""

        def join(values: list[int]) -> str:
            return "-".join(str(v) for v in values if not is_grease(v))

        return ",".join(
            (str(self.version), join(self.ciphers), join(self.extensions), join(self.groups), join(self.point_formats))
        )

    def ja4(self, transport: str = "t") -> str:
        """The JA4 fingerprint (``t13d1516h2_8daaf6152771_e5627efa2ab1``)."""
        versions = [v for v in self.supported_versions if not is_grease(v)]
        version = _JA4_VERSIONS.get(max(versions) if versions else self.version, "00")
        ciphers = [c for c in self.ciphers if not is_grease(c)]
        extensions = [e for e in self.extensions if not is_grease(e)]
        alpn = "00"
        if self.alpn and self.alpn[0]:
            first = self.alpn[0]
            alpn = first[0] + first[-1]
            if not (first[0].isascii() and first[0].isalnum() and first[-1].isascii() and first[-1].isalnum()):
                raw = first.encode("latin-1")
                alpn = f"{raw[0]:02x}"[0] + f"{raw[-1]:02x}"[-1]
        part_a = (
            f"{transport}{version}{'d' if self.server_name is not None else 'i'}"
            f"{min(len(ciphers), 99):02d}{min(len(extensions), 99):02d}{alpn}"
        )
        part_b = _hash12(",".join(f"{c:04x}" for c in sorted(ciphers))) if ciphers else "000000000000"
        kept = ",".join(f"{e:04x}" for e in sorted(e for e in extensions if e not in (0, 16)))
        algorithms = ",".join(f"{s:04x}" for s in self.signature_algorithms if not is_grease(s))
        if not kept and not algorithms:
            part_c = "000000000000"
        else:
            part_c = _hash12(f"{kept}_{algorithms}" if algorithms else kept)
        return f"{part_a}_{part_b}_{part_c}"


@dataclass(slots=True)
class ServerHello:
    version: int
    cipher: int
    selected_version: int | None = None


def _hash12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _u16s(data: bytes, start: int, end: int) -> list[int]:
    return [int.from_bytes(data[i : i + 2], "big") for i in range(start, end - 1, 2)]


def parse_client_hello(body: bytes) -> ClientHello | None:
    """A ClientHello handshake body (after the 4-byte handshake header), or ``None``."""
    try:
        version = int.from_bytes(body[0:2], "big")
        offset = 34
        offset += 1 + body[offset]  # session id
        cipher_length = int.from_bytes(body[offset : offset + 2], "big")
        ciphers = _u16s(body, offset + 2, offset + 2 + cipher_length)
        offset += 2 + cipher_length
        offset += 1 + body[offset]  # compression methods
        hello = ClientHello(version, ciphers, [])
        if offset + 2 > len(body):
            return hello
        end = min(len(body), offset + 2 + int.from_bytes(body[offset : offset + 2], "big"))
        offset += 2
        while offset + 4 <= end:
            kind = int.from_bytes(body[offset : offset + 2], "big")
            length = int.from_bytes(body[offset + 2 : offset + 4], "big")
            data = body[offset + 4 : offset + 4 + length]
            offset += 4 + length
            hello.extensions.append(kind)
            if kind == 0 and len(data) >= 5 and data[2] == 0:
                name_length = int.from_bytes(data[3:5], "big")
                hello.server_name = data[5 : 5 + name_length].decode("ascii", "backslashreplace")
            elif kind == 10:
                hello.groups = _u16s(data, 2, 2 + int.from_bytes(data[0:2], "big"))
            elif kind == 11 and data:
                hello.point_formats = list(data[1 : 1 + data[0]])
            elif kind == 13:
                hello.signature_algorithms = _u16s(data, 2, 2 + int.from_bytes(data[0:2], "big"))
            elif kind == 16:
                i = 2
                while i < len(data):
                    hello.alpn.append(data[i + 1 : i + 1 + data[i]].decode("latin-1"))
                    i += 1 + data[i]
            elif kind == 43 and data:
                hello.supported_versions = _u16s(data, 1, 1 + data[0])
        return hello
    except IndexError:
        return None


def parse_server_hello(body: bytes) -> ServerHello | None:
    """A ServerHello handshake body, or ``None``."""
    if len(body) < 38:
        return None
    offset = 35 + body[34]
    if offset + 3 > len(body):
        return None
    hello = ServerHello(int.from_bytes(body[0:2], "big"), int.from_bytes(body[offset : offset + 2], "big"))
    offset += 3
    end = min(len(body), offset + 2 + int.from_bytes(body[offset : offset + 2], "big"))
    offset += 2
    while offset + 4 <= end:
        kind = int.from_bytes(body[offset : offset + 2], "big")
        length = int.from_bytes(body[offset + 2 : offset + 4], "big")
        if kind == 43 and length == 2:
            hello.selected_version = int.from_bytes(body[offset + 4 : offset + 6], "big")
        offset += 4 + length
    return hello


class TlsParser:
    """The TLS handshake state of one connection: feed it each direction's in-order bytes."""

    __slots__ = ("_done", "_handshakes", "_records", "client", "emitted", "server")

    def __init__(self) -> None:
        self._records = (bytearray(), bytearray())
        self._handshakes = (bytearray(), bytearray())
        self._done = [False, False]
        self.client: ClientHello | None = None
        self.server: ServerHello | None = None
        self.emitted = False

    def feed(self, way: int, data: bytes) -> list[Event]:
        """Bytes from the client (``way`` 0) or server (1); returns the event once both hellos are read."""
        if self._done[way] or self.emitted:
            return []
        records = self._records[way]
        records += data
        while len(records) >= 5:
            kind, length = records[0], int.from_bytes(records[3:5], "big")
            if kind != 22 or records[1] != 3:
                self._done[way] = True  # ChangeCipherSpec, alert, application data, or not TLS
                break
            if len(records) < 5 + length:
                break
            handshake = self._handshakes[way]
            handshake += records[5 : 5 + length]
            del records[: 5 + length]
            while len(handshake) >= 4:
                size = int.from_bytes(handshake[1:4], "big")
                if len(handshake) < 4 + size:
                    break
                body = bytes(handshake[4 : 4 + size])
                if handshake[0] == 1 and way == 0 and self.client is None:
                    self.client = parse_client_hello(body)
                elif handshake[0] == 2 and way == 1 and self.server is None:
                    self.server = parse_server_hello(body)
                del handshake[: 4 + size]
            if len(handshake) > MAX_HANDSHAKE:
                self._done[way] = True
        if len(records) > MAX_HANDSHAKE:
            self._done[way] = True
        if self.client is not None and self.server is not None:
            return self.finish()
        return []

    def finish(self) -> list[Event]:
        """The event for this connection, if a hello was read and it was not yet emitted."""
        if self.emitted or (self.client is None and self.server is None):
            return []
        self.emitted = True
        return [tls_event(self.client, self.server)]


def tls_event(client: ClientHello | None, server: ServerHello | None, transport: str = "t") -> Event:
    """The ``tls.*`` fields of one handshake; ``transport`` is JA4's first letter (``q`` for QUIC)."""
    tls: dict[str, Any] = {}
    if client is not None:
        ja3 = client.ja3_string()
        tls_client: dict[str, Any] = {
            "ja3": hashlib.md5(ja3.encode(), usedforsecurity=False).hexdigest(),
            "ja3_string": ja3,
            "ja4": client.ja4(transport),
            "supported_ciphers": [f"0x{c:04x}" for c in client.ciphers if not is_grease(c)],
        }
        if client.server_name is not None:
            tls_client["server_name"] = client.server_name
        if client.alpn:
            tls_client["alpn"] = client.alpn
        tls["client"] = tls_client
        offered = [v for v in client.supported_versions if not is_grease(v)]
        tls["version"] = VERSIONS.get(max(offered) if offered else client.version, "unknown")
    if server is not None:
        chosen = server.selected_version or server.version
        tls["version"] = VERSIONS.get(chosen, "unknown")
        tls["cipher"] = f"0x{server.cipher:04x}"
        tls["established"] = True
    tls["version_protocol"] = "tls"
    return {
        "event": {"kind": "event", "category": ["network"], "type": ["protocol"], "dataset": DATASET},
        "network": {"protocol": "tls"},
        "tls": tls,
    }

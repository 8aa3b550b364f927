"""DNS messages (RFC 1035) to ECS ``network.dns`` events, parsed by hand from UDP or TCP payloads.

Names follow compression pointers (forwards too, as resolvers accept them) at most
:data:`_MAX_POINTERS` times per name, so a looping message ends the parse instead of the process. A message that
cannot be read gives ``None``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from socket import AF_INET6, inet_ntoa, inet_ntop
from struct import Struct
from typing import Any

from secmon.events import Event

DATASET = "network.dns"

TYPES = {
    1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT", 28: "AAAA",
    33: "SRV", 35: "NAPTR", 39: "DNAME", 41: "OPT", 43: "DS", 44: "SSHFP", 46: "RRSIG", 47: "NSEC",
    48: "DNSKEY", 52: "TLSA", 64: "SVCB", 65: "HTTPS", 99: "SPF", 252: "AXFR", 255: "ANY", 257: "CAA",
    10: "NULL",
}  # fmt: skip
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
          6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE"}  # fmt: skip
_FLAG_NAMES = ((0x0400, "AA"), (0x0200, "TC"), (0x0100, "RD"), (0x0080, "RA"), (0x0020, "AD"), (0x0010, "CD"))

_HEADER = Struct("!HHHHHH")
_RR = Struct("!HHIH")
_QUESTION = Struct("!HH")
_MAX_POINTERS = 32
_MAX_RECORDS = 256


class _Malformed(Exception):
    """Internal: the message ends or points where it must not."""


@dataclass(slots=True)
class Answer:
    """One resource record of the answer section."""

    name: str
    type: str
    ttl: int
    data: str


@dataclass(slots=True)
class DnsMessage:
    """The parts of a DNS message that become ECS fields."""

    id: int
    response: bool
    opcode: int
    rcode: int
    flags: list[str]
    question_name: str | None = None
    question_type: str | None = None
    answers: list[Answer] = field(default_factory=list)


def type_name(code: int) -> str:
    """``A`` for 1; ``TYPE1234`` (RFC 3597) for codes without a name."""
    return TYPES.get(code) or f"TYPE{code}"


def read_name(message: bytes, offset: int) -> tuple[str, int]:
    """The (decompressed) name at ``offset`` and the offset just after it in the message."""
    labels: list[str] = []
    end = -1
    jumps = 0
    size = len(message)
    while True:
        if offset >= size:
            raise _Malformed
        length = message[offset]
        if length == 0:
            offset += 1
            break
        if length & 0xC0 == 0xC0:
            if offset + 1 >= size:
                raise _Malformed
            target = ((length & 0x3F) << 8) | message[offset + 1]
            jumps += 1
            if jumps > _MAX_POINTERS or target == offset or target >= size:
                raise _Malformed  # a pointer loop ends at the jump limit
            if end < 0:
                end = offset + 2
            offset = target
            continue
        if length & 0xC0:
            raise _Malformed  # 0x40/0x80: extended label types, not in use
        offset += 1
        if offset + length > size:
            raise _Malformed
        labels.append(message[offset : offset + length].decode("ascii", "backslashreplace"))
        offset += length
    return ".".join(labels), end if end >= 0 else offset


def _rdata(message: bytes, rtype: int, start: int, length: int) -> str:  # noqa: PLR0911 - one return per record type
    data = message[start : start + length]
    if rtype == 1 and length == 4:
        return inet_ntoa(data)
    if rtype == 28 and length == 16:
        return inet_ntop(AF_INET6, data)
    if rtype in (2, 5, 12, 39):
        return read_name(message, start)[0]
    if rtype == 15 and length >= 3:
        return f"{int.from_bytes(data[:2], 'big')} {read_name(message, start + 2)[0]}"
    if rtype in {16, 99}:
        parts, i = [], 0
        while i < length:
            n = data[i]
            parts.append(data[i + 1 : i + 1 + n].decode("utf-8", "backslashreplace"))
            i += 1 + n
        return "".join(parts)
    if rtype == 33 and length >= 7:
        priority, weight, port = Struct("!HHH").unpack_from(data)
        return f"{priority} {weight} {port} {read_name(message, start + 6)[0]}"
    if rtype == 6:
        mname, after = read_name(message, start)
        rname, after = read_name(message, after)
        return f"{mname} {rname}"
    return base64.b64encode(data).decode()


def parse_dns(message: bytes) -> DnsMessage | None:
    """A DNS message from a UDP payload (or a TCP one without its 2-byte length), or ``None``."""
    if len(message) < 12:
        return None
    ident, flags, qdcount, ancount, _nscount, _arcount = _HEADER.unpack_from(message)
    result = DnsMessage(
        ident, bool(flags & 0x8000), (flags >> 11) & 0x0F, flags & 0x0F, [n for bit, n in _FLAG_NAMES if flags & bit]
    )
    try:
        offset = 12
        for index in range(min(qdcount, _MAX_RECORDS)):
            name, offset = read_name(message, offset)
            if offset + 4 > len(message):
                raise _Malformed
            qtype, _qclass = _QUESTION.unpack_from(message, offset)
            offset += 4
            if index == 0:
                result.question_name, result.question_type = name, type_name(qtype)
        for _ in range(min(ancount, _MAX_RECORDS)):
            name, offset = read_name(message, offset)
            if offset + 10 > len(message):
                raise _Malformed
            rtype, _rclass, ttl, rdlength = _RR.unpack_from(message, offset)
            offset += 10
            if offset + rdlength > len(message):
                raise _Malformed
            result.answers.append(Answer(name, type_name(rtype), ttl, _rdata(message, rtype, offset, rdlength)))
            offset += rdlength
    except (_Malformed, IndexError):
        if result.question_name is None:
            return None
        # keep what was read before the damage: the question and the whole answers
    return result


def dns_event(message: DnsMessage) -> Event:
    """The ``dns.*`` and ``event.*`` fields of one message (addresses are added by the caller)."""
    dns: dict[str, Any] = {
        "id": str(message.id),
        "type": "answer" if message.response else "query",
        "op_code": {0: "QUERY", 1: "IQUERY", 2: "STATUS", 4: "NOTIFY", 5: "UPDATE"}.get(
            message.opcode, str(message.opcode)
        ),
        "header_flags": message.flags,
    }
    if message.question_name is not None:
        dns["question"] = {"name": message.question_name, "type": message.question_type}
    if message.response:
        dns["response_code"] = RCODES.get(message.rcode, str(message.rcode))
        dns["answers"] = [{"name": a.name, "type": a.type, "ttl": a.ttl, "data": a.data} for a in message.answers]
        resolved = [a.data for a in message.answers if a.type in {"A", "AAAA"}]
        if resolved:
            dns["resolved_ip"] = resolved
    return {
        "event": {"kind": "event", "category": ["network"], "type": ["protocol"], "dataset": DATASET},
        "network": {"protocol": "dns"},
        "dns": dns,
    }


class DnsTcpParser:
    """DNS over TCP: each direction's in-order bytes are 2-byte-length-framed messages."""

    __slots__ = ("_buffers",)

    def __init__(self) -> None:
        self._buffers = (bytearray(), bytearray())

    def feed(self, way: int, data: bytes) -> list[Event]:
        """Bytes from the client (``way`` 0) or server (1); returns an event per whole message."""
        buffer = self._buffers[way]
        buffer += data
        events: list[Event] = []
        while len(buffer) >= 2:
            length = int.from_bytes(buffer[:2], "big")
            if len(buffer) < 2 + length:
                break
            message = parse_dns(bytes(buffer[2 : 2 + length]))
            del buffer[: 2 + length]
            if message is not None:
                events.append(dns_event(message))
        return events

    def finish(self) -> list[Event]:
        """Nothing waits for the end of a DNS connection."""
        return []

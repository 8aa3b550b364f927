"""The TLS ClientHello inside a QUIC client's Initial packets: SNI, ALPN, JA3 and JA4 (``q`` prefix).

QUIC v1 (RFC 9000/9001) and v2 (RFC 9369) encrypt even the first flight, but with keys anyone
can derive from the Destination Connection ID the client chose (RFC 9001 §5.2), so a passive
observer can read the ClientHello: remove the header protection, open the AES-128-GCM payload,
walk the frames and put the CRYPTO frames back in order — the ClientHello often spans several
Initial packets, which may arrive out of order or be coalesced with others in one datagram.

Connection ids change during a handshake: after a Retry the client starts again with keys from
the Retry's Source Connection ID (a new ClientHello, a second event), and once the server has
answered the client addresses it by the server's id while keeping the first keys. So an Initial
with an unknown id is tried with the keys already known before keys are derived from its id;
the AEAD tag tells which is right. Everything is bounded (connection attempts, ids, CRYPTO bytes,
undecryptable packets) and malformed input is counted in ``dropped``, never raised.
"""

from __future__ import annotations

import hmac
import re
from collections import Counter
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secmon.collect.transforms.packets.tls import parse_client_hello, tls_event
from secmon.events import Event

DATASET = "network.quic"
MAX_CRYPTO = 64 * 1024  # a ClientHello beyond this is not one worth reading (post-quantum ones are ~2 KiB)
MAX_ATTEMPTS = 4  # key sets per flow: the first Initial, after a Retry, after version negotiation
MAX_CONNECTION_IDS = 8  # Destination Connection IDs remembered per flow
MAX_UNDECRYPTABLE = 16  # Initials no known or derivable key opens before the flow is given up

_LONG_HEADER = 0xC0  # header form and fixed bit
_MAX_CID = 20  # RFC 9000 §17.2: v1 and v2 connection ids are at most 20 bytes
_SAMPLE = 16
_NOT_PADDING = re.compile(rb"[^\x00]")


@dataclass(frozen=True, slots=True)
class QuicVersion:
    """What differs between QUIC versions for reading Initials: the salt, labels and type codes."""

    name: str
    salt: bytes
    label_prefix: bytes  # "quic " in v1, "quicv2 " in v2
    initial_type: int
    retry_type: int


VERSIONS = {
    0x00000001: QuicVersion("1", bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"), b"quic ", 0, 3),
    0x6B3343CF: QuicVersion("2", bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"), b"quicv2 ", 1, 0),
}


class _Malformed(Exception):
    """A packet or frame that does not parse (internal: :meth:`QuicParser.feed` counts it)."""


def _expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """TLS 1.3 HKDF-Expand-Label with an empty context, for outputs of at most one SHA-256 block."""
    full_label = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes((len(full_label),)) + full_label + b"\x00"
    return hmac.digest(secret, info + b"\x01", "sha256")[:length]


@dataclass(frozen=True, slots=True)
class InitialKeys:
    """The AEAD key, IV and header-protection key of one side's Initial packets."""

    key: bytes
    iv: bytes
    hp: bytes


def initial_keys(version: QuicVersion, dcid: bytes, side: bytes = b"client in") -> InitialKeys:
    """The Initial keys of ``side`` (``client in`` or ``server in``) for the client's first ``dcid``."""
    initial_secret = hmac.digest(version.salt, dcid, "sha256")  # HKDF-Extract
    secret = _expand_label(initial_secret, side, 32)
    prefix = version.label_prefix
    return InitialKeys(
        _expand_label(secret, prefix + b"key", 16),
        _expand_label(secret, prefix + b"iv", 12),
        _expand_label(secret, prefix + b"hp", 16),
    )


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    """A variable-length integer (RFC 9000 §16) at ``offset``, and the offset after it."""
    if offset >= len(data):
        raise _Malformed
    size = 1 << (data[offset] >> 6)
    end = offset + size
    if end > len(data):
        raise _Malformed
    return int.from_bytes(data[offset:end], "big") & ((1 << (8 * size - 2)) - 1), end


def _packet_number(largest: int, truncated: int, bits: int) -> int:
    """The full packet number from its truncated encoding (RFC 9000 Appendix A.3)."""
    expected = largest + 1
    window = 1 << bits
    half = window // 2
    candidate = (expected & ~(window - 1)) | truncated
    if candidate <= expected - half and candidate < (1 << 62) - window:
        return candidate + window
    if candidate > expected + half and candidate >= window:
        return candidate - window
    return candidate


def is_quic_initial(datagram: bytes) -> bool:
    """Whether a datagram begins with a long-header Initial of a version this module reads."""
    if len(datagram) < 7 or datagram[0] & _LONG_HEADER != _LONG_HEADER:
        return False
    version = VERSIONS.get(int.from_bytes(datagram[1:5], "big"))
    return version is not None and (datagram[0] >> 4) & 0x03 == version.initial_type


class _CryptoStream:
    """The CRYPTO bytes of one connection attempt, put back in order; bounded by :data:`MAX_CRYPTO`."""

    __slots__ = ("data", "pending", "pending_bytes")

    def __init__(self) -> None:
        self.data = bytearray()  # the in-order prefix
        self.pending: dict[int, bytes] = {}  # fragments beyond a gap, by offset
        self.pending_bytes = 0

    def add(self, offset: int, chunk: bytes) -> None:
        end = offset + len(chunk)
        if end > MAX_CRYPTO:
            raise _Malformed
        have = len(self.data)
        if end <= have:
            return  # a retransmission
        if offset > have:
            previous = self.pending.get(offset, b"")
            if len(chunk) > len(previous):
                self.pending[offset] = chunk
                self.pending_bytes += len(chunk) - len(previous)
                if self.pending_bytes > MAX_CRYPTO:  # overlapping fragments at many offsets
                    raise _Malformed
            return
        self.data += chunk[have - offset :]
        # The prefix only grows, so one pass in offset order takes every fragment that now fits.
        for start in sorted(self.pending):
            if start > len(self.data):
                break
            fragment = self.pending.pop(start)
            self.pending_bytes -= len(fragment)
            if start + len(fragment) > len(self.data):
                self.data += fragment[len(self.data) - start :]

    def client_hello(self) -> bytes | None:
        """The ClientHello body once all of it is here (``_Malformed`` if the stream holds something else)."""
        data = self.data
        if len(data) < 4:
            return None
        if data[0] != 1:  # the client's first handshake message must be a ClientHello
            raise _Malformed
        size = int.from_bytes(data[1:4], "big")
        if 4 + size > MAX_CRYPTO:
            raise _Malformed
        return bytes(data[4 : 4 + size]) if len(data) >= 4 + size else None


class _Attempt:
    """One connection attempt's client Initial keys, packet numbers and CRYPTO stream."""

    __slots__ = ("aead", "crypto", "done", "header_mask", "iv", "largest", "version")

    def __init__(self, version: QuicVersion, keys: InitialKeys) -> None:
        self.version = version
        self.aead = AESGCM(keys.key)
        self.iv = int.from_bytes(keys.iv, "big")
        # ECB has no chaining: one encryptor serves every 16-byte sample.
        self.header_mask: CipherContext = Cipher(algorithms.AES(keys.hp), modes.ECB()).encryptor()
        self.largest = -1
        self.crypto: _CryptoStream | None = _CryptoStream()
        self.done = False  # the ClientHello was read (or could not be): later Initials are skipped

    def open(self, packet: bytes, pn_offset: int) -> bytes | None:
        """The plaintext of an Initial packet, or ``None`` if these keys do not open it."""
        sample_at = pn_offset + 4
        if sample_at + _SAMPLE > len(packet):
            raise _Malformed
        mask = self.header_mask.update(packet[sample_at : sample_at + _SAMPLE])
        first = packet[0] ^ (mask[0] & 0x0F)
        pn_length = (first & 0x03) + 1
        pn_bytes = bytes(b ^ m for b, m in zip(packet[pn_offset : pn_offset + pn_length], mask[1:], strict=False))
        number = _packet_number(self.largest, int.from_bytes(pn_bytes, "big"), 8 * pn_length)
        header = bytes((first,)) + packet[1:pn_offset] + pn_bytes
        nonce = (self.iv ^ number).to_bytes(12, "big")
        try:
            plaintext = self.aead.decrypt(nonce, packet[pn_offset + pn_length :], header)
        except InvalidTag:
            return None
        self.largest = max(self.largest, number)
        return plaintext


def _crypto_frames(plaintext: bytes) -> list[tuple[int, bytes]]:
    """The ``(offset, data)`` of each CRYPTO frame of an Initial packet's payload."""
    found: list[tuple[int, bytes]] = []
    pos, size = 0, len(plaintext)
    while pos < size:
        kind = plaintext[pos]
        if kind == 0x00:  # PADDING: usually hundreds of bytes, skipped in one search
            match = _NOT_PADDING.search(plaintext, pos)
            pos = match.start() if match else size
        elif kind == 0x01:  # PING
            pos += 1
        elif kind == 0x06:  # CRYPTO
            offset, pos = _varint(plaintext, pos + 1)
            length, pos = _varint(plaintext, pos)
            if pos + length > size:
                raise _Malformed
            found.append((offset, plaintext[pos : pos + length]))
            pos += length
        elif kind in (0x02, 0x03):  # ACK, and ACK with ECN counts
            _, pos = _varint(plaintext, pos + 1)  # largest acknowledged
            _, pos = _varint(plaintext, pos)  # delay
            ranges, pos = _varint(plaintext, pos)
            _, pos = _varint(plaintext, pos)  # first range
            for _ in range(2 * ranges + (3 if kind == 0x03 else 0)):  # gap and length pairs, ECN counts
                _, pos = _varint(plaintext, pos)
        elif kind == 0x1C:  # CONNECTION_CLOSE: nothing more will come
            break
        else:
            raise _Malformed  # no other frame is allowed in an Initial (RFC 9000 §12.4)
    return found


class QuicParser:
    """The QUIC Initial state of one UDP flow: feed it the client's datagrams, get one event per ClientHello."""

    __slots__ = ("_attempts", "_by_cid", "_undecryptable", "gave_up")

    def __init__(self) -> None:
        self._attempts: list[_Attempt] = []
        self._by_cid: dict[tuple[int, bytes], _Attempt] = {}  # (version, Destination Connection ID) → keys
        self._undecryptable = 0
        self.gave_up = False

    def feed(self, datagram: bytes, dropped: Counter[str]) -> list[Event]:
        """A datagram from the client; counts what cannot be read in ``dropped`` (``quic_malformed``...)."""
        if self.gave_up:
            return []
        events: list[Event] = []
        try:
            self._datagram(datagram, dropped, events)
        except (_Malformed, IndexError):
            dropped["quic_malformed"] += 1
        return events

    def _datagram(self, datagram: bytes, dropped: Counter[str], events: list[Event]) -> None:
        start, size = 0, len(datagram)
        while start < size and datagram[start] & _LONG_HEADER == _LONG_HEADER:
            # Coalesced packets are all long-header ones but the last; a short header or padding ends the walk.
            if start + 7 > size:
                raise _Malformed
            version_number = int.from_bytes(datagram[start + 1 : start + 5], "big")
            version = VERSIONS.get(version_number)
            if version is None:
                return  # version negotiation, or a version this module does not read
            kind = (datagram[start] >> 4) & 0x03
            dcid_length = datagram[start + 5]
            if dcid_length > _MAX_CID:
                raise _Malformed
            dcid = datagram[start + 6 : start + 6 + dcid_length]
            pos = start + 6 + dcid_length
            scid_length = datagram[pos]
            if scid_length > _MAX_CID:
                raise _Malformed
            pos += 1 + scid_length
            if kind == version.retry_type:
                return  # a Retry has no length: it takes the rest of the datagram
            if kind == version.initial_type:
                token_length, pos = _varint(datagram, pos)
                pos += token_length
            length, pos = _varint(datagram, pos)
            end = pos + length
            if end > size:
                raise _Malformed  # cut short (a capture's snap length, or damage)
            if kind == version.initial_type:
                event = self._initial(version_number, dcid, datagram[start:end], pos - start, dropped)
                if event is not None:
                    events.append(event)
                if self.gave_up:
                    return
            start = end

    def _initial(
        self, version_number: int, dcid: bytes, packet: bytes, pn_offset: int, dropped: Counter[str]
    ) -> Event | None:
        version = VERSIONS[version_number]
        cid_key = (version_number, dcid)
        attempt = self._by_cid.get(cid_key)
        plaintext: bytes | None = None
        if attempt is not None:
            if attempt.done:
                return None
            plaintext = attempt.open(packet, pn_offset)
        else:
            # An id not seen yet: the server's (same keys as before) or a new attempt (keys from this id).
            for known in reversed(self._attempts):
                if known.version is version:
                    plaintext = known.open(packet, pn_offset)
                    if plaintext is not None:
                        attempt = known
                        break
            if attempt is None and len(self._attempts) < MAX_ATTEMPTS:
                fresh = _Attempt(version, initial_keys(version, dcid))
                plaintext = fresh.open(packet, pn_offset)
                if plaintext is not None:
                    attempt = fresh
                    self._attempts.append(fresh)
            if attempt is not None:
                if len(self._by_cid) >= MAX_CONNECTION_IDS:
                    self.gave_up = True
                    return None
                self._by_cid[cid_key] = attempt
                if attempt.done:
                    return None
        if attempt is None or plaintext is None:
            dropped["quic_undecryptable"] += 1
            self._undecryptable += 1
            if self._undecryptable >= MAX_UNDECRYPTABLE:
                self.gave_up = True
            return None
        return self._read_crypto(attempt, version, plaintext)

    def _read_crypto(self, attempt: _Attempt, version: QuicVersion, plaintext: bytes) -> Event | None:
        stream = attempt.crypto
        if stream is None:
            return None
        try:
            for offset, chunk in _crypto_frames(plaintext):
                stream.add(offset, chunk)
            body = stream.client_hello()
        except (_Malformed, IndexError):
            attempt.done, attempt.crypto = True, None
            raise
        if body is None:
            return None
        attempt.done, attempt.crypto = True, None  # the buffers are no longer needed
        hello = parse_client_hello(body)
        if hello is None:
            raise _Malformed
        event = tls_event(hello, None, transport="q")
        event["event"]["dataset"] = DATASET
        event["network"]["protocol"] = "quic"
        event["quic"] = {"version": version.name}
        return event

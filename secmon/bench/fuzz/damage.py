"""Damage done to valid inputs: bit flips, cuts, insertions, repeats and splices.

Random bytes rarely get past a parser's first check; a valid input with a few bytes wrong reaches
every branch behind it. Each function takes the valid input (and others to splice from) and a
:class:`~.draw.Draw`, and applies one to eight of the damages, as a corrupt disk, a cut
connection or a hostile sender would.
"""

from __future__ import annotations

from collections.abc import Sequence

from secmon.bench.fuzz.draw import Draw

# What parsers split on and what breaks them: quotes, brackets, escapes, separators, long
# numbers, control characters, a byte order mark, non-characters and UTF-8 of every length.
_TEXT_PIECES = (
    '"', "'", "\\", "[", "]", "{", "}", "(", ")", "<", ">", ":", "=", ";", ",", " ", "  ", "\t", "\r", "\n",
    "\x00", "\x1b", "\x7f", "\ufeff", "\ufffd", "\u2028", "é", "中", "😀", "-", "*", "?", "|", "%", "#", "@",
    "0", "9" * 30, "-1", "4294967295", "18446744073709551616", "1e999", "NaN", "null", "true", "[]", "{}",
    "2024-02-30", "Feb 30 25:61:61", "::", "0x", "%n%s", "${jndi:", "<165>1 ", "type=", "msg=audit(", "IN= OUT= ",
)  # fmt: skip
_INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0x20, 0x0A, 0x0D, 0x22, 0x5C)


def damage_text(d: Draw, valid: str, others: Sequence[str] = ()) -> str:
    """``valid`` with one to eight characters-level damages done to it."""
    chars = list(valid)
    for _ in range(d.integer(1, 8)):
        at = d.integer(0, len(chars))
        kind = d.integer(0, 7)
        if kind == 0 and chars and at < len(chars):  # a character replaced by another one near it
            chars[at] = chr(max(1, (ord(chars[at]) + d.integer(-3, 3)) % 0x110000))
            if 0xD800 <= ord(chars[at]) < 0xE000:  # no source hands a parser a lone surrogate
                chars[at] = "\ufffd"
        elif kind == 1:  # cut short
            del chars[at:]
        elif kind == 2:  # a piece deleted
            del chars[at : at + d.integer(1, 16)]
        elif kind in (3, 4):  # something that means something to a parser, inserted
            chars[at:at] = d.choice(_TEXT_PIECES) * d.choice((1, 1, 1, 2, 64))
        elif kind == 5 and chars:  # a piece repeated
            start = d.integer(0, len(chars) - 1)
            chars[at:at] = chars[start : start + d.integer(1, 32)] * d.integer(1, 16)
        elif kind == 6 and others:  # spliced with another valid input
            other = d.choice(others)
            cut = d.integer(0, len(other))
            chars[at:] = list(other[cut:])
        else:  # a piece swapped with the next one
            end = min(len(chars), at + d.integer(1, 8))
            chars[at:end] = chars[at:end][::-1]
    return "".join(chars)


def damage_bytes(d: Draw, valid: bytes, others: Sequence[bytes] = (), *, keep: int = 0) -> bytes:
    """``valid`` with one to eight byte-level damages, mostly past its first ``keep`` bytes (headers worth keeping)."""
    data = bytearray(valid)
    for _ in range(d.integer(1, 8)):
        if not data:
            data += d.binary(1, 64)
            continue
        low = keep if len(data) > keep and d.chance(0.8) else 0
        at = d.integer(low, len(data) - 1)
        kind = d.integer(0, 7)
        if kind in (0, 1):  # a bit flipped
            data[at] ^= 1 << d.integer(0, 7)
        elif kind == 2:  # a byte set to one that means something
            data[at] = d.choice(_INTERESTING_BYTES)
        elif kind == 3:  # a 16 or 32-bit field set to an edge value
            width = d.choice((2, 4))
            data[at : at + width] = d.choice((b"\x00", b"\xff", b"\x7f", b"\x80")) * width
        elif kind == 4:  # cut short
            del data[at:]
        elif kind == 5:  # bytes inserted
            data[at:at] = d.binary(1, 64)
        elif kind == 6 and others:  # spliced with another valid input
            other = d.choice(others)
            data[at:] = other[d.integer(0, len(other)) :]
        else:  # a piece deleted
            del data[at : at + d.integer(1, 64)]
    return bytes(data)

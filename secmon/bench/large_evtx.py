"""One large EVTX file made of the chunks of small ones: the benchmark of a file no per-file cost hides.

An EVTX chunk carries its own string and template tables, so chunks copied from real files stay
readable in another file. Their records are numbered again (chunk headers and record headers,
with both checksums of each chunk made anew) so the file reads as one log of consecutive records;
the events inside keep their own System/EventRecordID.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from secmon.collect.sources.evtx import CHUNK_MAGIC, CHUNK_SIZE, FILE_HEADER_SIZE, FILE_MAGIC

_RECORD_MAGIC = b"\x2a\x2a\x00\x00"
_CHUNK_HEADER = 512  # records start here
_MAX_CHUNKS = 0xFFFF  # the file header counts chunks in 16 bits


def write_large_evtx(sources: Sequence[Path], out: Path, size: int) -> int:
    """Write ``out`` with about ``size`` bytes of the chunks of ``sources``, repeated; the records written."""
    chunks = [chunk for source in sources for chunk in _chunks(source)]
    if not chunks:
        raise ValueError("no EVTX chunk with records among the sources")
    wanted = min(max(1, (size - FILE_HEADER_SIZE) // CHUNK_SIZE), _MAX_CHUNKS)
    header = bytearray((sources[0]).read_bytes()[:FILE_HEADER_SIZE])
    next_id = 1
    with out.open("wb") as file:
        file.write(bytes(FILE_HEADER_SIZE))  # the header goes last, when the counts are known
        for chunk in itertools.islice(itertools.cycle(chunks), wanted):
            renumbered, next_id = _renumbered(chunk, next_id)
            file.write(renumbered)
        struct.pack_into("<QQQ", header, 8, 0, wanted - 1, next_id)  # first and last chunk, next record id
        struct.pack_into("<H", header, 42, wanted)
        struct.pack_into("<I", header, 120, 0)  # flags: clean, not full
        struct.pack_into("<I", header, 124, zlib.crc32(header[:120]))
        file.seek(0)
        file.write(header)
    return next_id - 1


def _chunks(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    if not data.startswith(FILE_MAGIC):
        return
    for offset in range(FILE_HEADER_SIZE, len(data) - CHUNK_SIZE + 1, CHUNK_SIZE):
        chunk = data[offset : offset + CHUNK_SIZE]
        if chunk.startswith(CHUNK_MAGIC) and chunk[_CHUNK_HEADER : _CHUNK_HEADER + 4] == _RECORD_MAGIC:
            yield chunk


def _renumbered(chunk: bytes, first_id: int) -> tuple[bytes, int]:
    data = bytearray(chunk)
    free = struct.unpack_from("<I", data, 48)[0]
    offset, record_id = _CHUNK_HEADER, first_id
    while offset < free and data[offset : offset + 4] == _RECORD_MAGIC:
        struct.pack_into("<Q", data, offset + 8, record_id)
        offset += struct.unpack_from("<I", data, offset + 4)[0]
        record_id += 1
    last_id = record_id - 1
    struct.pack_into("<QQQQ", data, 8, first_id, last_id, first_id, last_id)  # record numbers and ids
    struct.pack_into("<I", data, 52, zlib.crc32(data[_CHUNK_HEADER:free]))
    struct.pack_into("<I", data, 124, zlib.crc32(data[:120] + data[128:_CHUNK_HEADER]))
    return bytes(data), record_id

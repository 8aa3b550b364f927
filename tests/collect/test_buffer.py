"""The disk buffer: order, acknowledgement, bounds, and recovery after a crash."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from secmon.collect.buffer import DiskBuffer


def frames(n: int, start: int = 0) -> list[bytes]:
    return [b"frame-%06d" % i for i in range(start, start + n)]


async def read_all(buffer: DiskBuffer) -> list[bytes]:
    out: list[bytes] = []
    while True:
        batch, _ = buffer.read(1000, 1 << 20)
        if not batch:
            return out
        out += batch


async def test_frames_come_out_in_order_across_segments(tmp_path: Path) -> None:
    buffer = DiskBuffer(tmp_path, segment_bytes=1000)
    for chunk in range(10):
        await buffer.append(frames(50, chunk * 50))
    assert len(list(tmp_path.glob("*.seg"))) > 5
    assert await read_all(buffer) == frames(500)
    buffer.close()


async def test_frames_larger_than_a_read_come_out_whole_between_small_ones(tmp_path: Path) -> None:
    buffer = DiskBuffer(tmp_path)
    big = os.urandom(3 << 20)
    await buffer.append([b"small-1", big, b"small-2", big[::-1]])
    assert await read_all(buffer) == [b"small-1", big, b"small-2", big[::-1]]
    buffer.close()


async def test_acknowledged_frames_are_forgotten_and_their_segments_deleted(tmp_path: Path) -> None:
    buffer = DiskBuffer(tmp_path, segment_bytes=1000)
    await buffer.append(frames(300))
    first, position = buffer.read(200, 1 << 20)
    buffer.acknowledge(position)
    assert len(first) == 200
    remaining = buffer.pending_bytes
    buffer.close()

    reopened = DiskBuffer(tmp_path, segment_bytes=1000)
    assert reopened.pending_bytes == remaining
    assert await read_all(reopened) == frames(100, 200)
    _, end = reopened.read(1, 1)
    reopened.acknowledge(end)
    assert reopened.empty
    assert len(list(tmp_path.glob("*.seg"))) == 1  # only the segment being written remains
    reopened.close()


async def test_unacknowledged_frames_are_read_again_after_a_restart(tmp_path: Path) -> None:
    buffer = DiskBuffer(tmp_path)
    await buffer.append(frames(10))
    assert len(buffer.read(10, 1 << 20)[0]) == 10  # read, but never acknowledged
    buffer.close()
    assert await read_all(DiskBuffer(tmp_path)) == frames(10)


async def test_append_waits_while_full_and_resumes_when_acknowledged(tmp_path: Path) -> None:
    buffer = DiskBuffer(tmp_path, max_bytes=200)
    await buffer.append(frames(10))  # 10 x 20 bytes with headers: full
    blocked = asyncio.create_task(buffer.append(frames(1, 10)))
    await asyncio.sleep(0.05)
    assert not blocked.done()
    assert buffer.try_append(frames(1, 99)) is False
    _, position = buffer.read(5, 1 << 20)
    buffer.acknowledge(position)
    await asyncio.wait_for(blocked, 1)
    assert await read_all(buffer) == frames(6, 5)
    buffer.close()


def test_a_process_killed_mid_write_leaves_every_complete_frame_and_no_torn_one(tmp_path: Path) -> None:
    # A child appends frames as fast as it can and is killed with SIGKILL at a random moment.
    child = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from secmon.collect.buffer import DiskBuffer
        async def main():
            buffer = DiskBuffer(Path({str(tmp_path)!r}), segment_bytes=50_000)
            print("ready", flush=True)
            i = 0
            while True:
                await buffer.append([b"frame-%09d" % n + b"x" * 300 for n in range(i, i + 7)])
                i += 7
        asyncio.run(main())
    """)
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    time.sleep(0.5)
    process.kill()
    process.wait()
    # Simulate the worst case on top: half a frame at the end of the last segment.
    last = max(tmp_path.glob("*.seg"))
    with last.open("ab") as segment:
        segment.write(b"\x40\x01\x00\x00\xde\xad")

    async def check() -> None:
        buffer = DiskBuffer(tmp_path, segment_bytes=50_000)
        recovered = await read_all(buffer)
        assert len(recovered) > 100
        assert recovered == [b"frame-%09d" % n + b"x" * 300 for n in range(len(recovered))]
        await buffer.append([b"after"])  # and it keeps working
        assert (await read_all(buffer)) == [b"after"]
        buffer.close()

    asyncio.run(check())
    assert os.path.getsize(last) > 0


@pytest.mark.parametrize("garbage", [b"", b"\x00" * 3, os.urandom(64)])
def test_a_garbled_ack_file_falls_back_to_the_start(tmp_path: Path, garbage: bytes) -> None:
    (tmp_path / "ack").write_bytes(garbage)

    async def check() -> None:
        buffer = DiskBuffer(tmp_path)
        await buffer.append(frames(3))
        assert await read_all(buffer) == frames(3)
        buffer.close()

    asyncio.run(check())

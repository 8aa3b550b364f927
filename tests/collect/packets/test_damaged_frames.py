"""Damaged frames never stop the decoder: seeded mutations of real frames from every capture of the datasets."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from secmon.collect.transforms.packets import CaptureError, packets_to_events, read_capture
from secmon.collect.transforms.packets.processor import PacketProcessor

PCAP = Path(__file__).resolve().parents[4] / "shared" / "datasets" / "pcap"


def real_frames(per_capture: int) -> list[tuple[float, bytes, int]]:
    frames: list[tuple[float, bytes, int]] = []
    for capture in sorted(PCAP.rglob("*.pcap*")):
        try:
            for number, frame in enumerate(read_capture(capture)):
                if number == per_capture:
                    break
                frames.append(frame)
        except CaptureError:
            pass  # the damaged captures of the dataset: their first frames are taken
    return frames


def damaged(data: bytes, chance: random.Random) -> bytes:
    """``data`` with a few bytes changed, cut or inserted, mostly past the link and IP headers."""
    frame = bytearray(data)
    for _ in range(chance.randint(1, 6)):
        if not frame:
            break
        deep = len(frame) > 55 and chance.random() < 0.8
        at = chance.randrange(54, len(frame)) if deep else chance.randrange(len(frame))
        what = chance.random()
        if what < 0.6:
            frame[at] = chance.randrange(256)
        elif what < 0.8:
            del frame[at:]
        else:
            frame[at:at] = chance.randbytes(chance.randint(1, 40))
    return bytes(frame)


@pytest.mark.parametrize("seed", [1, 2])
def test_damaged_frames_are_counted_and_the_decoder_goes_on(seed: int) -> None:
    frames = real_frames(per_capture=200)
    assert len(frames) > 4000
    chance = random.Random(seed)
    processor = PacketProcessor()
    for ts, data, linktype in frames:
        processor.process(ts, damaged(data, chance), linktype)  # must not raise
    processor.flush()
    assert sum(processor.stats.dropped.values()) > 1000  # the damage was seen, and counted
    # The same processor still reads an intact capture afterwards.
    capture = PCAP / "dns" / "dns__dns-tcp-www-google-com" / "dns.pcap"
    later = max(ts for ts, _, _ in frames) + 3600
    events = packets_to_events(((ts + later, data, lt) for ts, data, lt in read_capture(capture)), processor)
    assert any(e["event"]["dataset"] == "network.dns" for e in events)

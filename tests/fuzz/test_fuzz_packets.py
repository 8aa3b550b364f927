"""Captured frames under random input: decode_frame gives back a packet's fields or counts why it cannot.

tests/collect/packets/test_damaged_frames.py feeds seeded damage of the datasets' real frames
through the whole PacketProcessor; here Hypothesis draws frames from their fields (every link type
secmon reads, VLAN tags, IPv4 options, IPv6 extension headers, Ethernet padding), any bytes, and
damaged generated frames, and checks decode_frame's answer field by field.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secmon.bench.fuzz.cases import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    FrameCase,
    frame_case,
)
from secmon.bench.fuzz.draw import Draw
from secmon.bench.fuzz.targets import check_frame, check_frame_case, check_stored
from secmon.collect.transforms.packets.processor import PacketProcessor
from tests.fuzz.drawing import cases, examples

LINKTYPES = [LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LOOP, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2]


@examples(150)
@given(data=st.binary(max_size=200))
@pytest.mark.parametrize("linktype", [*LINKTYPES, 228, 229, 9999])
def test_any_bytes_decode_or_are_counted_under_one_reason(linktype: int, data: bytes) -> None:
    check_frame(data, linktype)


@examples(150)
@given(case=cases(frame_case))
def test_a_frame_gives_back_addresses_ports_flags_ttl_vlan_and_payload(case: FrameCase) -> None:
    check_frame_case(case)


def damaged_frame(d: Draw) -> tuple[bytes, int]:
    from secmon.bench.fuzz.damage import damage_bytes

    case = frame_case(d)
    return damage_bytes(d, case.data, keep=14), case.linktype


@examples(100)
@given(frames=st.lists(cases(damaged_frame), min_size=1, max_size=8))
def test_damaged_frames_through_the_whole_decoder_make_storable_events_only(frames: list[tuple[bytes, int]]) -> None:
    processor = PacketProcessor()
    for number, (data, linktype) in enumerate(frames):
        check_frame(data, linktype)
        check_stored(processor.process(1_700_000_000 + number / 10, data, linktype))
    check_stored(processor.flush())

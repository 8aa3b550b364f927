"""RFC 6587 framing of syslog over TCP: octet counting, newlines, cut-off of over-long messages."""

from __future__ import annotations

from secmon.collect.sources.syslog import Framing


def octet_counted(message: bytes) -> bytes:
    return b"%d %b" % (len(message), message)


def feed_in_pieces(framing: Framing, data: bytes, piece: int) -> list[tuple[bytes, bool]]:
    frames = []
    for start in range(0, len(data), piece):
        frames += framing.feed(data[start : start + piece])
    return frames


def test_newline_and_octet_counted_frames_mix_in_one_stream() -> None:
    data = b"<34>1 first\n" + octet_counted(b"<34>1 second\nwith a newline") + b"<34>third\r\n"
    assert Framing(1024).feed(data) == [
        (b"<34>1 first", False),
        (b"<34>1 second\nwith a newline", False),
        (b"<34>third\r", False),
    ]


def test_frames_split_across_reads_at_every_byte_come_out_whole() -> None:
    data = octet_counted(b"<13>abcdefg") + b"<13>line two\n" + octet_counted(b"<1>x")
    expected = [(b"<13>abcdefg", False), (b"<13>line two", False), (b"<1>x", False)]
    for piece in range(1, len(data) + 1):
        assert feed_in_pieces(Framing(1024), data, piece) == expected, piece


def test_a_plain_line_starting_with_digits_is_not_taken_for_a_count() -> None:
    assert Framing(1024).feed(b"2024 was a year\n") == [(b"2024 was a year", False)]


def test_over_long_lines_are_cut_and_the_next_message_is_intact() -> None:
    long_line = b"<13>" + b"x" * 5000
    frames = feed_in_pieces(Framing(1024), long_line + b"\n<13>next\n", 700)
    assert frames == [(long_line[:1024], True), (b"<13>next", False)]


def test_over_long_octet_counted_frames_are_cut_and_skipped_by_count() -> None:
    body = b"<13>" + b"\n" * 3000  # newlines inside must not be taken for frame ends
    data = octet_counted(body) + octet_counted(b"<13>ok")
    frames = feed_in_pieces(Framing(1024), data, 500)
    assert frames == [(body[:1024], True), (b"<13>ok", False)]


def test_a_last_message_without_newline_is_kept_when_the_stream_ends() -> None:
    framing = Framing(1024)
    assert framing.feed(b"<13>one\n<13>two") == [(b"<13>one", False)]
    assert framing.finish() == (b"<13>two", False)


def test_an_octet_counted_frame_cut_short_by_the_close_is_kept_and_marked() -> None:
    framing = Framing(1024)
    assert framing.feed(b"100 <13>only part") == []
    assert framing.finish() == (b"<13>only part", True)


def test_binary_garbage_never_raises_and_empty_lines_are_not_messages() -> None:
    framing = Framing(1024)
    frames = framing.feed(bytes(range(256)) * 20 + b"\n\n\r\n")
    assert all(len(frame) <= 1024 for frame, _ in frames)
    assert framing.finish() is None

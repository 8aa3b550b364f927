"""ISO 8601 UTC timestamps, written one way everywhere: ``2024-01-02T03:04:05.123Z``.

Stored documents, alerts, audit entries and deliveries all take their times from here, so
Elasticsearch, the API and a reader of the JSON see one shape.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime


def utc_iso(moment: datetime) -> str:
    """``moment`` (naive means UTC) as ``2024-01-02T03:04:05.123Z``: milliseconds or microseconds only when set."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    microsecond = moment.microsecond
    if microsecond == 0:
        return text + "Z"
    if microsecond % 1000 == 0:
        return f"{text}.{microsecond // 1000:03d}Z"
    return f"{text}.{microsecond:06d}Z"


def utc_from_epoch(seconds: float | None) -> datetime:
    """Seconds since the epoch as an aware UTC datetime; ``None``, 0 or out of range: now."""
    if seconds:
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return datetime.fromtimestamp(time.time(), UTC)


def epoch_to_iso(seconds: float | None) -> str:
    """Seconds since the epoch (``None`` or 0: now) as an ISO 8601 UTC string."""
    return utc_iso(utc_from_epoch(seconds))


def epoch_to_iso_millis(seconds: float) -> str:
    """Seconds since the epoch as ``2024-01-02T03:04:05.123Z``, always with milliseconds: the times secmon stamps."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def datetime_to_iso_millis(moment: datetime) -> str:
    """An aware ``datetime`` as :func:`epoch_to_iso_millis` writes it (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso_seconds() -> str:
    """The current time to the second, ``2024-01-02T03:04:05Z``: for what an operator reads (dead letters)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def epoch_to_iso_seconds(seconds: float) -> str:
    """Seconds since the epoch to the second, ``2024-01-02T03:04:05Z`` (``secmon detect``'s findings)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def epoch_to_iso_micros(ts: float) -> str:
    """Seconds since the epoch as ISO 8601 UTC with microseconds, as ``datetime`` would write it.

    Every packet event needs one, and packets come many to a second: the date and time of the
    whole second are formatted once and kept (a datetime per packet was 15% of decoding).
    """
    whole = math.floor(ts)
    micros = round((ts - whole) * 1_000_000)  # half to even, as datetime.fromtimestamp rounds
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    second = _SECONDS.get(whole)
    if second is None:
        if len(_SECONDS) >= _SECONDS_KEPT:
            _SECONDS.clear()
        second = _SECONDS[whole] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{second}.{micros:06d}Z"


_SECONDS: dict[int, str] = {}
_SECONDS_KEPT = 4096  # a capture's seconds are near one another: a small cache hits nearly always

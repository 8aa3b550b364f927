"""The per-key token bucket, on an injected clock."""

from __future__ import annotations

from secmon.auth.limits import KeyRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_key_waits_for_what_it_overdrew() -> None:
    clock = Clock()
    limiter = KeyRateLimiter(rate=10, burst=2, clock=clock)  # 20 events at once, then 10/s
    assert limiter.take("k", 15) == 0
    assert limiter.take("k", 5) == 0
    assert limiter.take("k", 1) == 0  # bucket at 0: not in debt yet, the event goes
    assert limiter.take("k", 1) == 0.1  # 1 event of debt at 10/s
    clock.now = 0.1
    assert limiter.take("k", 10) == 0  # debt repaid: taken, 10 events of debt now
    assert limiter.take("other", 20) == 0  # keys do not share a bucket


def test_a_request_larger_than_the_bucket_still_goes_through_once_it_is_full() -> None:
    clock = Clock()
    limiter = KeyRateLimiter(rate=1, burst=5, clock=clock)
    assert limiter.take("k", 50) == 0
    assert limiter.take("k", 1) == 45
    clock.now = 44.0
    assert limiter.take("k", 1) == 1
    clock.now = 45.0
    assert limiter.take("k", 1) == 0

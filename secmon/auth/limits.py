"""Per-key rate limits: a token bucket per API key, counted in events.

A key may send ``rate`` events per second on average and bursts of up to ``burst`` seconds'
worth. A request bigger than the bucket is let through when the bucket is not in debt and
leaves it in debt, so no request is refused for its size alone: its sender waits longer next.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_KEYS = 100_000  # buckets kept; the least recently used is forgotten (and starts full again)


class KeyRateLimiter:
    """Decides whether a key may send ``n`` more events now."""

    def __init__(self, rate: float, burst: float = 10.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("a rate limit must be more than 0 events per second")
        self.rate = rate
        self.capacity = rate * burst
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key id -> (tokens, at)

    def take(self, key_id: str, events: int) -> float:
        """0 when the key may send ``events`` now (they are counted); otherwise the seconds to wait."""
        now = self._clock()
        tokens, at = self._buckets.pop(key_id, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        if tokens < 0:
            self._remember(key_id, tokens, now)
            return max(0.001, -tokens / self.rate)
        self._remember(key_id, tokens - events, now)
        return 0.0

    def _remember(self, key_id: str, tokens: float, now: float) -> None:
        self._buckets[key_id] = (tokens, now)
        while len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)


def retry_after(seconds: float) -> str:
    """A Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))

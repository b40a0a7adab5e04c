"""Per-key token buckets for the optional rate limit."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """Token-bucket limiter with one bucket per API key.

    Args:
        rate: Tokens added per second; None turns limiting off.
        burst: Bucket size; defaults to the rate rounded up (at least 1).
    """

    def __init__(self, rate: float | None, burst: int | None = None) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate limit must be > 0 requests/s, not {rate!r}")
        if burst is not None and burst < 1:
            raise ValueError(f"rate burst must be >= 1, not {burst!r}")
        self.rate = rate
        self.burst = burst if burst is not None else max(1, int(-(-(rate or 1) // 1)))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Take one token from the key's bucket; return False if it is empty."""
        if self.rate is None:
            return True
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
        return allowed

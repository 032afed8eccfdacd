"""Per-channel send rates: a token bucket that threads wait on.

    bucket = TokenBucket(rate_per_second=80, burst=80)
    bucket.acquire()      # blocks until a send is allowed

A bucket holds up to `burst` tokens and gains `rate_per_second` tokens a second; each
send takes one. Over any span of `t` seconds at most `burst + rate_per_second * t` sends
start. The bucket limits one worker process: with several workers, give each its share of
the provider's limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """A thread-safe token bucket; `clock` and `sleep` are injectable for tests."""

    def __init__(self, rate_per_second: float, burst: int, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate_per_second <= 0:
            raise ValueError(f"rate_per_second must be above 0, not {rate_per_second}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst}")
        self.rate_per_second = rate_per_second
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._updated = clock()

    def _reserve(self) -> float:
        """Take a token (possibly going into debt); how long to wait before using it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst),
                               self._tokens + (now - self._updated) * self.rate_per_second)
            self._updated = now
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self.rate_per_second

    def acquire(self) -> float:
        """Wait until one send may start; the seconds waited.

        Waiters are served in the order they reserved, each at its own time, so waiting
        threads do not stampede when tokens come back.
        """
        wait = self._reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

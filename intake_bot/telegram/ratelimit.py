"""Per-reporter flood limit, in memory only (promise 3: rate-limit state is never stored)."""

from __future__ import annotations

import time
from dataclasses import dataclass

CAPACITY = 30.0
"""Updates a reporter may send in a burst (an album of ten photos fits)."""
REFILL_PER_SECOND = 1.0
NOTICE_EVERY = 30.0
"""Seconds between two "slow down" answers to one reporter."""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    told: float = 0.0


class RateLimiter:
    """A token bucket per key; keys are reporter handles, never raw ids."""

    def __init__(self, capacity: float = CAPACITY, refill: float = REFILL_PER_SECOND) -> None:
        self.capacity = capacity
        self.refill = refill
        self._buckets: dict[bytes, _Bucket] = {}

    def allow(self, key: bytes, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key) or _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.refill)
        bucket.at = now
        self._buckets[key] = bucket
        if len(self._buckets) > 100_000:
            self._forget_full(now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True
        return False

    def should_tell(self, key: bytes, now: float | None = None) -> bool:
        """Whether to answer this refused update (once per :data:`NOTICE_EVERY`)."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None or now - bucket.told < NOTICE_EVERY:
            return False
        bucket.told = now
        return True

    def _forget_full(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.at) * self.refill >= self.capacity:
                del self._buckets[key]

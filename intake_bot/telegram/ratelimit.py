"""Per-reporter flood limit, in memory only (promise 3: rate-limit state is never stored)."""

from __future__ import annotations

import time
from dataclasses import dataclass

NOTICE_EVERY = 30.0
"""Seconds between two "slow down" answers to one reporter."""
MAX_BUCKETS = 100_000
"""Reporters tracked at once. Beyond it, full buckets are forgotten (they hold nothing a
fresh one would not); if that is not enough, the least recently seen half goes."""
SWEEP_EVERY = 1_000
"""New buckets between two checks of :data:`MAX_BUCKETS` (the check walks all buckets)."""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    told: float | None = None


class RateLimiter:
    """A token bucket per key; keys are reporter handles, never raw ids."""

    def __init__(self, capacity: float, refill: float) -> None:
        self.capacity = capacity
        self.refill = refill
        self._buckets: dict[bytes, _Bucket] = {}
        self._new_since_sweep = 0

    def allow(self, key: bytes, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            self._new_since_sweep += 1
            if self._new_since_sweep >= SWEEP_EVERY and len(self._buckets) >= MAX_BUCKETS:
                self._sweep(now)
            bucket = self._buckets[key] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.refill)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True
        return False

    def should_tell(self, key: bytes, now: float | None = None) -> bool:
        """Whether to answer this refused update (once per :data:`NOTICE_EVERY`)."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None or (bucket.told is not None and now - bucket.told < NOTICE_EVERY):
            return False
        bucket.told = now
        return True

    def _sweep(self, now: float) -> None:
        self._new_since_sweep = 0
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.at) * self.refill >= self.capacity:
                del self._buckets[key]
        if len(self._buckets) >= MAX_BUCKETS:
            by_age = sorted(self._buckets.items(), key=lambda item: item[1].at)
            for key, _ in by_age[: len(by_age) // 2]:
                del self._buckets[key]

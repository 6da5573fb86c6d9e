"""The per-reporter token bucket, on an injected clock."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from intake_bot.config import load_settings
from intake_bot.telegram.ratelimit import NOTICE_EVERY, RateLimiter

T0 = 10_000.0
A, B = b"a" * 32, b"b" * 32


def _burst(limiter: RateLimiter, key: bytes, now: float, tries: int = 1000) -> int:
    """How many updates are allowed at one instant."""
    return sum(limiter.allow(key, now) for _ in range(tries))


def test_defaults_fit_an_album() -> None:
    settings = load_settings({})
    assert settings.rate_burst >= 10
    assert settings.rate_per_minute > 0
    assert NOTICE_EVERY == 30.0


def test_burst_capacity() -> None:
    limiter = RateLimiter(capacity=30, refill=1.0)
    assert _burst(limiter, A, T0) == 30
    assert not limiter.allow(A, T0)
    assert _burst(limiter, B, T0) == 30  # another reporter has a bucket of their own


def test_refill_over_time() -> None:
    limiter = RateLimiter(capacity=5, refill=2.0)
    assert _burst(limiter, A, T0) == 5
    assert not limiter.allow(A, T0 + 0.4)  # 0.8 tokens
    assert limiter.allow(A, T0 + 0.5)  # 0.8 + 0.2 = 1.0
    assert not limiter.allow(A, T0 + 0.5)
    assert _burst(limiter, A, T0 + 2.0) == 3  # 1.5 s at 2/s
    assert _burst(limiter, A, T0 + 1000.0) == 5  # never more than the capacity


def test_a_steady_sender_at_the_refill_rate_is_never_refused() -> None:
    limiter = RateLimiter(capacity=3, refill=1.0)
    assert all(limiter.allow(A, T0 + i) for i in range(500))
    fast = RateLimiter(capacity=3, refill=1.0)
    allowed = sum(fast.allow(A, T0 + i * 0.5) for i in range(100))
    assert 50 <= allowed <= 53  # the rate plus the burst


@settings(max_examples=150)
@given(
    capacity=st.integers(1, 40),
    refill=st.floats(0.1, 10.0),
    gaps=st.lists(st.floats(0.0, 5.0), min_size=1, max_size=80),
)
def test_never_more_than_capacity_plus_refill(
    capacity: int, refill: float, gaps: list[float]
) -> None:
    limiter = RateLimiter(capacity=capacity, refill=refill)
    now = T0
    allowed = 0
    for gap in gaps:
        now += gap
        allowed += limiter.allow(A, now)
    assert allowed <= capacity + (now - T0) * refill + 1e-6
    assert allowed >= min(len(gaps), capacity)  # a fresh bucket is full


def test_should_tell_once_per_30_seconds() -> None:
    limiter = RateLimiter(capacity=1, refill=0.001)
    assert limiter.allow(A, T0)
    assert not limiter.allow(A, T0)
    assert limiter.should_tell(A, T0)
    assert not limiter.should_tell(A, T0 + 1)
    assert not limiter.should_tell(A, T0 + NOTICE_EVERY - 0.01)
    assert limiter.should_tell(A, T0 + NOTICE_EVERY)
    assert not limiter.should_tell(A, T0 + NOTICE_EVERY + 5)
    assert limiter.should_tell(A, T0 + 2 * NOTICE_EVERY + 0.5)
    assert not limiter.should_tell(B, T0)  # no bucket: nothing was refused


def test_should_tell_per_reporter() -> None:
    limiter = RateLimiter(capacity=1, refill=0.001)
    for key in (A, B):
        limiter.allow(key, T0)
        limiter.allow(key, T0)
    assert limiter.should_tell(A, T0)
    assert limiter.should_tell(B, T0 + 1)
    assert not limiter.should_tell(A, T0 + 2)


def test_the_first_refusal_is_told_whatever_the_clock_reads() -> None:
    limiter = RateLimiter(capacity=1, refill=0.001)
    limiter.allow(A, 5.0)
    assert not limiter.allow(A, 5.0)
    assert limiter.should_tell(A, 5.0)


def test_real_clock_is_used_without_now() -> None:
    limiter = RateLimiter(capacity=2, refill=0.0001)
    assert limiter.allow(A)
    assert limiter.allow(A)
    assert not limiter.allow(A)


def test_memory_is_bounded_by_forgetting_full_buckets() -> None:
    limiter = RateLimiter(capacity=30, refill=1.0)
    for i in range(99_999):
        assert limiter.allow(i.to_bytes(16, "big"), T0)
    drained = b"drained".ljust(16, b"!")
    assert _burst(limiter, drained, T0, tries=40) == 30
    assert len(limiter._buckets) == 100_000
    # two seconds later every one-update bucket is full again: forgetting it changes nothing
    assert limiter.allow(b"newcomer".ljust(16, b"!"), T0 + 2)
    assert len(limiter._buckets) <= 2
    assert drained in limiter._buckets  # a bucket still refilling is remembered
    assert _burst(limiter, drained, T0 + 2.5) == 2  # it kept refilling from empty


def test_the_update_that_triggers_forgetting_is_charged() -> None:
    limiter = RateLimiter(capacity=30, refill=1.0)
    for i in range(100_000):
        limiter.allow(i.to_bytes(16, "big"), T0)
    newcomer = b"newcomer".ljust(16, b"!")
    assert _burst(limiter, newcomer, T0 + 2, tries=40) == 30

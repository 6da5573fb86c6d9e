"""The exponential slow-down of failed sign-ins (admin/throttle.py), on a hand-moved clock."""

from __future__ import annotations

import pytest

from admin import throttle
from admin.throttle import BASE_DELAY, FORGET_AFTER, MAX_DELAY, Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 50_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def backoff(clock: Clock) -> Backoff:
    return Backoff(clock)


def test_a_new_key_waits_for_nothing(backoff: Backoff) -> None:
    assert backoff.wait(backoff.key("name", "amina")) == 0.0
    assert backoff.wait() == 0.0


def test_each_failure_doubles_the_wait(backoff: Backoff, clock: Clock) -> None:
    key = backoff.key("name", "amina")
    for expected in (1.0, 2.0, 4.0, 8.0, 16.0):
        backoff.fail(key)
        assert backoff.wait(key) == expected
        clock.now += expected / 2
        assert backoff.wait(key) == expected / 2
        clock.now += expected / 2
        assert backoff.wait(key) == 0.0


def test_the_wait_is_capped(backoff: Backoff, clock: Clock) -> None:
    key = backoff.key("client", "203.0.113.9")
    for _ in range(60):
        backoff.fail(key)
        clock.now += backoff.wait(key)
    backoff.fail(key)
    assert backoff.wait(key) == MAX_DELAY == 900.0
    assert BASE_DELAY == 1.0


def test_keys_are_independent_and_the_longest_wait_counts(backoff: Backoff) -> None:
    name, client, other = (
        backoff.key("name", "amina"),
        backoff.key("client", "10.0.0.1"),
        backoff.key("name", "bob"),
    )
    backoff.fail(name, client)
    backoff.fail(name)
    assert backoff.wait(name) == 2.0
    assert backoff.wait(client) == 1.0
    assert backoff.wait(other) == 0.0
    assert backoff.wait(other, client) == 1.0
    assert backoff.wait(client, name, other) == 2.0


def test_success_clears_the_keys_it_names(backoff: Backoff) -> None:
    name, client = backoff.key("name", "amina"), backoff.key("client", "10.0.0.1")
    backoff.fail(name, client)
    backoff.fail(name, client)
    backoff.succeed(name)
    assert backoff.wait(name) == 0.0
    assert backoff.wait(client) == 2.0
    backoff.fail(name)
    assert backoff.wait(name) == 1.0, "a cleared key starts again from the first delay"


def test_a_quiet_day_forgets_old_failures(backoff: Backoff, clock: Clock) -> None:
    key = backoff.key("name", "amina")
    for _ in range(12):
        backoff.fail(key)
        clock.now += backoff.wait(key)
    clock.now += FORGET_AFTER - 1
    backoff.fail(key)
    assert backoff.wait(key) == MAX_DELAY, "less than a day of quiet: the count stands"
    clock.now += MAX_DELAY + FORGET_AFTER + 1
    backoff.fail(key)
    assert backoff.wait(key) == 1.0


def test_keys_are_keyed_hashes_not_the_values() -> None:
    one, two = Backoff(), Backoff()
    key = one.key("name", "amina")
    assert key == one.key("name", "amina")
    assert len(key) == 32
    assert b"amina" not in key
    assert key != one.key("client", "amina"), "kinds are separate"
    assert key != one.key("name", "amina2")
    assert key != two.key("name", "amina"), "each process has its own pepper"
    assert one.key("client", b"\x01\x02") == one.key("client", b"\x01\x02")


def test_memory_is_bounded_oldest_first(backoff: Backoff, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle, "MAX_KEYS", 3)
    a, b, c, d = (backoff.key("name", n) for n in "abcd")
    backoff.fail(a)
    backoff.fail(b)
    backoff.fail(c)
    backoff.fail(a)  # a is now the most recently failed
    backoff.fail(d)  # b, the least recent, goes
    assert backoff.wait(b) == 0.0
    assert backoff.wait(a) == 2.0
    assert backoff.wait(c) == backoff.wait(d) == 1.0

"""Exponential slow-down of failed sign-in attempts, per account and per client.

After each failure the key must wait twice as long as after the one before (1 s, 2 s,
4 s, …, at most :data:`MAX_DELAY`) before the next attempt is even checked, so no
Argon2id work is spent on a locked key. A key that stayed quiet for :data:`FORGET_AFTER`
after its last lock ran out starts again from one second: a member's typing mistakes,
months apart, must not add up to a fifteen-minute lock-out.

Keys are opaque bytes chosen by the caller: the account's id, or a keyed hash of a name
nobody has (so an unknown name behaves exactly like a known one and is never kept in the
clear), and a keyed hash of the client address. State is in memory only, bounded, and
forgotten at restart.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

BASE_DELAY = 1.0
MAX_DELAY = 900.0
"""Fifteen minutes: long enough to make guessing hopeless, short enough not to lock out
staff for a day when an adversary aims at their account."""
FORGET_AFTER = 24 * 3600.0
"""A day without failures wipes a key's count. A guesser gains nothing by waiting for it:
the cap already lets a locked key try once every :data:`MAX_DELAY`, far more than the few
quick tries a fresh count allows once a day."""
MAX_KEYS = 100_000


@dataclass(slots=True)
class _Record:
    failures: int
    until: float


class Backoff:
    """Failure counts and lock-out times by key, in least-recently-used order."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._records: OrderedDict[bytes, _Record] = OrderedDict()
        self._pepper = secrets.token_bytes(32)

    def key(self, kind: str, value: str | bytes) -> bytes:
        """An opaque key for a value (a name, an address) that must not be kept as is."""
        raw = value.encode("utf-8") if isinstance(value, str) else value
        return hmac.new(self._pepper, kind.encode() + b"\x00" + raw, hashlib.sha256).digest()

    def wait(self, *keys: bytes) -> float:
        """Seconds until every key may try again (0 when none is locked)."""
        now = self._clock()
        records = [r for k in keys if (r := self._records.get(k)) is not None]
        return max((max(0.0, r.until - now) for r in records), default=0.0)

    def fail(self, *keys: bytes) -> None:
        now = self._clock()
        for key in keys:
            record = self._records.pop(key, None)
            if record is None or now - record.until > FORGET_AFTER:
                record = _Record(0, now)
            record.failures += 1
            record.until = now + min(MAX_DELAY, BASE_DELAY * 2.0 ** min(record.failures - 1, 20))
            self._records[key] = record
        while len(self._records) > MAX_KEYS:
            self._records.popitem(last=False)

    def succeed(self, *keys: bytes) -> None:
        for key in keys:
            self._records.pop(key, None)

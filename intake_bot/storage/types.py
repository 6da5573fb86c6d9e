"""Column types that accept only ciphertext.

A column declared with :class:`CiphertextColumn` refuses any value that is not an instance
of its ciphertext class, at bind time: plain ``bytes`` (and so plaintext) cannot reach it
even through a bug that mypy did not catch.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, LargeBinary
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from intake_bot.crypto import Ciphertext


class CiphertextColumn(TypeDecorator[Ciphertext]):
    """Binary column holding one ciphertext kind."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, kind: type[Ciphertext]) -> None:
        super().__init__()
        self.kind = kind

    def process_bind_param(self, value: Ciphertext | None, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        if not isinstance(value, self.kind):
            raise TypeError(f"column takes {self.kind.__name__}, not {type(value).__name__}")
        return bytes(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Ciphertext | None:
        return None if value is None else self.kind(value)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A moment in time, stored in UTC and returned with UTC attached, on both databases.

    SQLite keeps no offset: without this, a value given in Baku time would be stored as
    its local clock reading and read back as if it were UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("times must carry a time zone")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if not isinstance(value, dt.datetime):
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)

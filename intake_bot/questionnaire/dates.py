"""Parsing of dates with precision: a day, a month, a year, or "don't know".

Reporters write dates the way they are used to: ``20.03.2023`` (the common form in
Azerbaijan and Russia), ``2023-03-20``, ``03.2023``, ``2023``. A date in the future or
before 1900 is refused.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_DAY_FIRST = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{4})$")
_ISO_DAY = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_MONTH = re.compile(r"^(\d{1,2})[./-](\d{4})$")
_ISO_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_YEAR = re.compile(r"^(\d{4})$")
EARLIEST_YEAR = 1900


class DateError(ValueError):
    """Not a date we understand, or not a possible one; ``code`` names which."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class PartialDate:
    """``precision`` is ``day``, ``month`` or ``year``; ``value`` is ISO text to that precision."""

    precision: str
    value: str


def parse_date(text: str, today: dt.date) -> PartialDate:
    """Parse what a reporter typed; raise :class:`DateError` (``date_format``,
    ``date_invalid`` or ``date_future``)."""
    cleaned = text.strip().replace(" ", "")
    if match := _DAY_FIRST.match(cleaned):
        day, month, year = (int(g) for g in match.groups())
        return _day(year, month, day, today)
    if match := _ISO_DAY.match(cleaned):
        year, month, day = (int(g) for g in match.groups())
        return _day(year, month, day, today)
    if match := _MONTH.match(cleaned) or _ISO_MONTH.match(cleaned):
        first, second = (int(g) for g in match.groups())
        month, year = (first, second) if second > 12 else (second, first)
        if not 1 <= month <= 12:
            raise DateError("date_invalid")
        _check_range(year, (year, month) > (today.year, today.month))
        return PartialDate("month", f"{year:04d}-{month:02d}")
    if match := _YEAR.match(cleaned):
        year = int(match.group(1))
        _check_range(year, year > today.year)
        return PartialDate("year", f"{year:04d}")
    raise DateError("date_format")


def _day(year: int, month: int, day: int, today: dt.date) -> PartialDate:
    try:
        date = dt.date(year, month, day)
    except ValueError:
        raise DateError("date_invalid") from None
    _check_range(year, date > today)
    return PartialDate("day", date.isoformat())


def _check_range(year: int, future: bool) -> None:
    if year < EARLIEST_YEAR:
        raise DateError("date_invalid")
    if future:
        raise DateError("date_future")

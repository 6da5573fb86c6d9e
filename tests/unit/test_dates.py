"""Dates with precision, as reporters type them; refusals carry the right code."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake_bot.questionnaire.dates import EARLIEST_YEAR, DateError, PartialDate, parse_date

TODAY = dt.date(2024, 6, 15)


@pytest.mark.parametrize(
    ("text", "precision", "value"),
    [
        ("20.03.2023", "day", "2023-03-20"),
        ("2023-03-20", "day", "2023-03-20"),
        ("03.2023", "month", "2023-03"),
        ("2023-03", "month", "2023-03"),
        ("2023", "year", "2023"),
        (" 20 . 03 . 2023 ", "day", "2023-03-20"),
        ("\t2023 - 03 - 20\n", "day", "2023-03-20"),
        ("2 0 2 3", "year", "2023"),
        ("5.3.2023", "day", "2023-03-05"),
        ("05.3.2023", "day", "2023-03-05"),
        ("5.03.2023", "day", "2023-03-05"),
        ("2023-3-5", "day", "2023-03-05"),
        ("3.2023", "month", "2023-03"),
        ("2023-3", "month", "2023-03"),
        ("20/03/2023", "day", "2023-03-20"),
        ("20-03-2023", "day", "2023-03-20"),
        ("03/2023", "month", "2023-03"),
        ("29.02.2024", "day", "2024-02-29"),
        ("15.06.2024", "day", "2024-06-15"),  # today
        ("06.2024", "month", "2024-06"),  # this month
        ("2024", "year", "2024"),  # this year
        ("01.01.1900", "day", "1900-01-01"),
        ("1900", "year", "1900"),
    ],
)
def test_accepted_forms(text: str, precision: str, value: str) -> None:
    assert parse_date(text, TODAY) == PartialDate(precision, value)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("31.02.2023", "date_invalid"),
        ("29.02.2023", "date_invalid"),
        ("2023-02-30", "date_invalid"),
        ("32.01.2023", "date_invalid"),
        ("00.01.2023", "date_invalid"),
        ("10.13.2023", "date_invalid"),
        ("13.2023", "date_invalid"),
        ("00.2023", "date_invalid"),
        ("2023-13", "date_invalid"),
        ("2023-00", "date_invalid"),
        ("31.12.1899", "date_invalid"),
        ("12.1899", "date_invalid"),
        ("1899", "date_invalid"),
        ("0000", "date_invalid"),
        ("16.06.2024", "date_future"),
        ("2024-06-16", "date_future"),
        ("07.2024", "date_future"),
        ("2024-07", "date_future"),
        ("2025", "date_future"),
        ("01.01.2999", "date_future"),
        ("", "date_format"),
        ("   ", "date_format"),
        ("yesterday", "date_format"),
        ("вчера", "date_format"),
        ("20.03.23", "date_format"),
        ("2023/03/20", "date_format"),
        ("20.03.2023.", "date_format"),
        ("20..03.2023", "date_format"),
        ("20032023", "date_format"),
        ("123", "date_format"),
        ("12345", "date_format"),
        ("March 2023", "date_format"),
        ("20.03.2023 10:00", "date_format"),
        ("1.2.3.2023", "date_format"),
        ("-2023", "date_format"),
    ],
)
def test_refused_with_the_right_code(text: str, code: str) -> None:
    with pytest.raises(DateError) as info:
        parse_date(text, TODAY)
    assert info.value.code == code
    assert isinstance(info.value, ValueError)


def test_future_is_relative_to_today() -> None:
    assert parse_date("16.06.2024", dt.date(2024, 6, 16)).value == "2024-06-16"
    with pytest.raises(DateError):
        parse_date("15.06.2024", dt.date(2024, 6, 14))


PAST = st.dates(dt.date(EARLIEST_YEAR, 1, 1), TODAY)


@settings(max_examples=200)
@given(day=PAST)
def test_any_past_day_round_trips(day: dt.date) -> None:
    expected = PartialDate("day", day.isoformat())
    assert parse_date(f"{day:%d.%m.%Y}", TODAY) == expected
    assert parse_date(day.isoformat(), TODAY) == expected
    assert parse_date(f"{day.day}.{day.month}.{day.year}", TODAY) == expected
    assert parse_date(f" {day.day}/{day.month}/{day.year}  ", TODAY) == expected


@settings(max_examples=100)
@given(day=PAST)
def test_any_past_month_and_year_round_trip(day: dt.date) -> None:
    month = PartialDate("month", f"{day.year:04d}-{day.month:02d}")
    assert parse_date(f"{day:%m.%Y}", TODAY) == month
    assert parse_date(f"{day:%Y-%m}", TODAY) == month
    assert parse_date(str(day.year), TODAY) == PartialDate("year", f"{day.year}")


@settings(max_examples=100)
@given(day=st.dates(TODAY + dt.timedelta(days=1), dt.date(9999, 12, 31)))
def test_any_future_day_is_refused(day: dt.date) -> None:
    for text in (f"{day:%d.%m.%Y}", day.isoformat()):
        with pytest.raises(DateError) as info:
            parse_date(text, TODAY)
        assert info.value.code == "date_future"


@settings(max_examples=300)
@given(
    text=st.one_of(
        st.text(max_size=20),
        st.text(alphabet="0123456789.-/ \n\t", max_size=14),
        st.from_regex(r"\A\s*\d{1,2}[./-]\d{1,2}[./-]\d{4}\s*\Z"),
    )
)
def test_random_text_raises_only_date_error(text: str) -> None:
    code: str | None
    try:
        parsed = parse_date(text, TODAY)
    except DateError as exc:
        code = exc.code
    else:
        code = None
    if code is not None:
        assert code in {"date_format", "date_invalid", "date_future"}
        return
    assert parsed.precision in {"day", "month", "year"}
    value = parsed.value
    if parsed.precision == "day":
        assert dt.date.fromisoformat(value).year >= EARLIEST_YEAR
        assert dt.date.fromisoformat(value) <= TODAY
    elif parsed.precision == "month":
        assert (int(value[:4]), int(value[5:])) <= (TODAY.year, TODAY.month)
        assert 1 <= int(value[5:]) <= 12
    else:
        assert EARLIEST_YEAR <= int(value) <= TODAY.year

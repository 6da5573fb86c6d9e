"""Callback data: what the bot encodes parses back; anything else parses to None."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake_bot.telegram.callbacks import MAX_INDEX, Callback, encode, parse

# The grammar of the module docstring, with ASCII digits only.
GRAMMAR = re.compile(r"[AT]:[0-9]{1,4}:[0-9]{1,4}|[DSUE]:[0-9]{1,4}|L:[a-z]{2}|C:[yn]|[RBPW]")
INDEX = st.integers(0, MAX_INDEX)


def _encoded() -> st.SearchStrategy[tuple[str, Callback]]:
    with_option = st.builds(
        lambda k, q, o: (encode(k, q, o), Callback(k, q, o)), st.sampled_from("AT"), INDEX, INDEX
    )
    question_only = st.builds(
        lambda k, q: (encode(k, q), Callback(k, q)), st.sampled_from("DSUE"), INDEX
    )
    valued = st.one_of(
        st.builds(
            lambda v: (encode("L", value=v), Callback("L", value=v)),
            st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=2),
        ),
        st.builds(lambda v: (encode("C", value=v), Callback("C", value=v)), st.sampled_from("yn")),
    )
    bare = st.builds(lambda k: (encode(k), Callback(k)), st.sampled_from("RBPW"))
    return st.one_of(with_option, question_only, valued, bare)


@settings(max_examples=300)
@given(pair=_encoded())
def test_every_encoding_round_trips(pair: tuple[str, Callback]) -> None:
    data, expected = pair
    assert parse(data) == expected
    assert len(data.encode()) <= 64
    assert GRAMMAR.fullmatch(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("A:0:0", Callback("A", 0, 0)),
        ("T:9999:9999", Callback("T", 9999, 9999)),
        ("D:12", Callback("D", 12)),
        ("S:0", Callback("S", 0)),
        ("U:3", Callback("U", 3)),
        ("E:81", Callback("E", 81)),
        ("L:az", Callback("L", value="az")),
        ("C:y", Callback("C", value="y")),
        ("C:n", Callback("C", value="n")),
        ("R", Callback("R")),
        ("B", Callback("B")),
        ("P", Callback("P")),
        ("W", Callback("W")),
    ],
)
def test_known_values(data: str, expected: Callback) -> None:
    assert parse(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        None,
        "",
        "A:1:2\n",
        "R\n",
        "\nR",
        " R",
        "R ",
        "A:1:2:3",
        "A:1",
        "T:1",
        "D:1:2",
        "S:1:2",
        "E:1:2",
        "A:12345:1",
        "A:1:12345",
        "D:12345",
        "A:-1:0",
        "A:+1:0",
        "A: 1:0",
        "A:1.0:0",
        "L:a",
        "L:aze",
        "L:AZ",
        "L:",
        "C:x",
        "C:yy",
        "C:Y",
        "RB",
        "X",
        "X:1",
        "a:1:1",
        "r",
        "E:",
        "E:1:",
        ":",
        "A::1",
        "P" * 65,
        "E:1" + " " * 62,
    ],
)
def test_outside_the_grammar_is_none(data: str | None) -> None:
    assert parse(data) is None


@pytest.mark.parametrize("data", ["E:\u0661", "A:\uff11:\uff12", "D:\u09e7\u09e8", "T:1:\u0663"])
def test_non_ascii_digits_are_outside_the_grammar(data: str) -> None:
    assert parse(data) is None


@settings(max_examples=500)
@given(data=st.text(max_size=120))
def test_arbitrary_text_never_raises(data: str) -> None:
    result = parse(data)
    assert result is None or isinstance(result, Callback)
    if result is not None:
        # whatever parses names a button the bot could have sent
        again = parse(encode(result.kind, result.question, result.option, result.value))
        assert again == result


# Near-misses: strings built from the grammar's own pieces plus junk (ASCII only).
PIECE = st.sampled_from(
    [
        "A",
        "T",
        "D",
        "S",
        "U",
        "E",
        "L",
        "C",
        "R",
        "B",
        "P",
        "W",
        ":",
        "::",
        "y",
        "n",
        "az",
        "0",
        "1",
        "12",
        "123",
        "1234",
        "12345",
        "x",
        "\n",
        " ",
        "-",
        "Z",
        "ru",
    ]
)


@settings(max_examples=500)
@given(pieces=st.lists(PIECE, max_size=6))
def test_near_misses_parse_exactly_when_in_the_grammar(pieces: list[str]) -> None:
    data = "".join(pieces)
    result = parse(data)
    assert (result is not None) == bool(GRAMMAR.fullmatch(data)), repr(data)
    if result is not None:
        assert result.kind == data[0]
        numbers = [int(n) for n in re.findall(r"[0-9]+", data)]
        assert [n for n in (result.question, result.option) if n is not None] == numbers


@settings(max_examples=200)
@given(tail=st.text(min_size=1, max_size=10).filter(lambda s: not s[0].isdecimal()))
def test_anything_after_a_valid_value_is_refused(tail: str) -> None:
    assert parse("A:1:2") is not None
    assert parse("A:1:2" + tail) is None
    assert parse("R" + tail) is None

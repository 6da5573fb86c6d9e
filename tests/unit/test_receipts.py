"""Receipt codes: six EFF words; forgiving normalisation; separated derived values."""

from __future__ import annotations

import re
import secrets
from functools import cache
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake_bot.crypto import (
    KDF_INSECURE_TEST,
    RECEIPT_WORDS,
    Secret,
    new_receipt_code,
    normalise_receipt,
    receipt_lookup_id,
    receipt_reply_key,
)


@cache
def eff_words() -> tuple[str, ...]:
    """The EFF long wordlist, read here independently of the code under test."""
    text = resources.files("diceware").joinpath("wordlists", "wordlist_en_eff.txt").read_text()
    return tuple(line.split("\t")[1].strip() for line in text.splitlines() if line.strip())


@cache
def eff_set() -> frozenset[str]:
    return frozenset(eff_words())


def _split_into_words(code: str, count: int) -> list[str] | None:
    """Split a hyphen-joined code into ``count`` list words (some words hold a hyphen)."""
    known = eff_set()
    if count == 0:
        return [] if code == "" else None
    pieces = code.split("-")
    for take in range(1, len(pieces) + 1):
        word = "-".join(pieces[:take])
        rest = "-".join(pieces[take:])
        if word in known and (rest or count == 1):
            tail = _split_into_words(rest, count - 1)
            if tail is not None:
                return [word, *tail]
    return None


PLAIN = [w for w in eff_words() if re.fullmatch("[a-z]+", w)]
HYPHENATED = [w for w in eff_words() if "-" in w]
WORDS = st.lists(st.sampled_from(PLAIN), min_size=RECEIPT_WORDS, max_size=RECEIPT_WORDS)


FILLER = ["abacus", "zoom", "cactus", "dial", "ember"]
IWORDS = ["ivory", "ignore", "abacus", "zoom", "cactus", "dial"]


def test_the_words_used_below_are_in_the_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixtures of the known-bug tests are sound: they fail for the bug alone."""
    assert set(FILLER) | set(IWORDS) <= eff_set()
    assert HYPHENATED == ["drop-down", "felt-tip", "t-shirt", "yo-yo"]
    picks = iter(["ivory", *FILLER])
    monkeypatch.setattr(secrets, "choice", lambda sequence: next(picks))
    code = new_receipt_code()
    assert code == "ivory-abacus-zoom-cactus-dial-ember"
    assert normalise_receipt(code) == code
    assert normalise_receipt(" ".join(IWORDS).upper()) == "-".join(IWORDS)


def test_the_wordlist_is_the_eff_long_list() -> None:
    assert len(eff_words()) == len(set(eff_words())) == 7776
    assert eff_words()[0] == "abacus"
    assert RECEIPT_WORDS == 6


def test_new_codes_are_six_eff_words_joined_by_hyphens() -> None:
    codes = {new_receipt_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert code == code.strip().lower()
        words = _split_into_words(code, RECEIPT_WORDS)
        assert words is not None, code
        assert "-".join(words) == code


def test_codes_draw_from_the_list_without_hyphenated_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every draw is from the EFF list minus the words holding a hyphen (which would make
    a hyphen-joined code ambiguous): 7,772 words, about 77.5 bits for six."""
    drawn_from: list[tuple[str, ...]] = []
    real_choice = secrets.choice

    def spy(sequence: tuple[str, ...]) -> str:
        drawn_from.append(tuple(sequence))
        return real_choice(sequence)

    monkeypatch.setattr(secrets, "choice", spy)
    new_receipt_code()
    assert len(drawn_from) == RECEIPT_WORDS
    expected = tuple(w for w in eff_words() if w not in HYPHENATED)
    assert all(sequence == expected for sequence in drawn_from)
    assert len(expected) == 7772


@settings(max_examples=150)
@given(words=WORDS)
def test_normalise_forgives_case_spaces_and_dots(words: list[str]) -> None:
    code = "-".join(words)
    assert normalise_receipt(code) == code
    assert normalise_receipt(code.upper()) == code
    assert normalise_receipt(" ".join(words)) == code
    assert normalise_receipt(".".join(w.capitalize() for w in words)) == code
    assert normalise_receipt(f"  {words[0]} - {'  '.join(words[1:])}\n") == code
    assert normalise_receipt(",".join(words).upper() + ".") == code


@settings(max_examples=100)
@given(words=WORDS, cut=st.integers(0, RECEIPT_WORDS - 1))
def test_normalise_rejects_wrong_counts_and_unknown_words(words: list[str], cut: int) -> None:
    assert normalise_receipt("-".join(words[:5])) is None
    assert normalise_receipt("-".join([*words, words[0]])) is None
    unknown = [*words]
    unknown[cut] = unknown[cut] + "zz"
    assert normalise_receipt("-".join(unknown)) is None
    assert normalise_receipt("-".join([*words[:cut], "qq", *words[cut + 1 :]])) is None


@pytest.mark.parametrize("text", ["", "   ", "-----", "123456", "abacus " * 5, "abacus " * 7])
def test_normalise_rejects_junk(text: str) -> None:
    assert normalise_receipt(text) is None


def test_every_code_the_bot_hands_out_is_accepted_back() -> None:
    """Regression: codes once could hold t-shirt, yo-yo...; split on '-', such a code had
    seven parts and was refused (fixed in fbd8df6 while these tests were written)."""
    for _ in range(300):
        code = new_receipt_code()
        assert normalise_receipt(code) == code
        assert normalise_receipt(code.upper().replace("-", " ")) == code


def test_azerbaijani_capital_i_is_forgiven() -> None:
    words = IWORDS
    typed = "İVORY İGNORE ABACUS ZOOM CACTUS DİAL"
    assert normalise_receipt(typed) == "-".join(words)


def test_lookup_id_is_deterministic_and_separate_from_the_reply_key() -> None:
    code = "abacus-zoom-cactus-dial-ember-ivory"
    lookup = receipt_lookup_id(code, KDF_INSECURE_TEST)
    assert isinstance(lookup, bytes)
    assert len(lookup) == 32
    assert receipt_lookup_id(code, KDF_INSECURE_TEST) == lookup
    reply = receipt_reply_key(code, KDF_INSECURE_TEST)
    assert isinstance(reply, Secret)
    assert len(reply) == 32
    assert receipt_reply_key(code, KDF_INSECURE_TEST) == reply
    assert reply.reveal() != lookup
    assert code.encode() not in lookup
    assert "<SECRET>" in repr(reply)


@settings(max_examples=15, deadline=None)
@given(first=WORDS, second=WORDS)
def test_different_codes_give_different_ids(first: list[str], second: list[str]) -> None:
    a, b = "-".join(first), "-".join(second)
    if a == b:
        return
    assert receipt_lookup_id(a, KDF_INSECURE_TEST) != receipt_lookup_id(b, KDF_INSECURE_TEST)
    assert receipt_reply_key(a, KDF_INSECURE_TEST) != receipt_reply_key(b, KDF_INSECURE_TEST)


def test_lookup_of_a_normalised_code_matches_what_was_stored() -> None:
    code = "-".join([*FILLER, "ivory"])
    stored = receipt_lookup_id(code, KDF_INSECURE_TEST)
    for typed in (code.upper().replace("-", " "), " . ".join(code.split("-"))):
        normalised = normalise_receipt(typed)
        assert normalised is not None
        assert receipt_lookup_id(normalised, KDF_INSECURE_TEST) == stored

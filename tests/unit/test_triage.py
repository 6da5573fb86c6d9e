"""The triage rules (intake_bot.triage) against a reference model written from the design.

The model below is restated from the module's documented workflow, not imported from it:
new → in review → needs information / verified / escalated → closed (with a reason); any
open status may be closed; a closed report reopens into review; the middle statuses move
freely between each other and back to review; nothing returns to new; no status follows
itself.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from intake_bot.triage import (
    LABEL_MAX,
    LABELS_MAX,
    TRANSITIONS,
    CloseReason,
    Status,
    Triage,
    TriageError,
    allowed,
    clean_label,
    close_as_spam,
    move,
    parse_labels,
)

NEW, REVIEW, INFO, VERIFIED, ESCALATED, CLOSED = (
    "new",
    "in_review",
    "needs_information",
    "verified",
    "escalated",
    "closed",
)
WORKING = {INFO, VERIFIED, ESCALATED}
MODEL: dict[str, set[str]] = {
    NEW: {REVIEW, CLOSED},
    REVIEW: WORKING | {CLOSED},
    INFO: (WORKING - {INFO}) | {REVIEW, CLOSED},
    VERIFIED: (WORKING - {VERIFIED}) | {REVIEW, CLOSED},
    ESCALATED: (WORKING - {ESCALATED}) | {REVIEW, CLOSED},
    CLOSED: {REVIEW},
}
REASONS = [None, *CloseReason]


def expected(status: str, target: str, reason: CloseReason | None) -> str | None:
    """The error code the model predicts for a move, or None if it is allowed."""
    if target not in MODEL[status]:
        return "status_not_allowed"
    if target == CLOSED and reason is None:
        return "close_reason_needed"
    if target != CLOSED and reason is not None:
        return "reason_only_when_closing"
    return None


def test_the_table_is_the_model() -> None:
    assert {s.value for s in Status} == set(MODEL)
    for status in Status:
        assert {t.value for t in allowed(status)} == MODEL[status.value]
        assert status not in TRANSITIONS[status]
    assert all(Status.NEW not in targets for targets in TRANSITIONS.values())


def test_every_status_is_reachable_from_new_and_closed_is_reachable_from_all() -> None:
    seen, frontier = {Status.NEW}, [Status.NEW]
    while frontier:
        for target in allowed(frontier.pop()):
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(Status)
    assert all(Status.CLOSED in allowed(s) for s in Status if s is not Status.CLOSED)


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("target", list(Status))
@pytest.mark.parametrize("reason", REASONS)
def test_every_move_matches_the_model(
    status: Status, target: Status, reason: CloseReason | None
) -> None:
    current_reason = CloseReason.RESOLVED if status is Status.CLOSED else None
    code = expected(status.value, target.value, reason)
    if code is None:
        assert move(Triage(status, current_reason), target, reason) == Triage(target, reason)
    else:
        with pytest.raises(TriageError) as caught:
            move(Triage(status, current_reason), target, reason)
        assert caught.value.code == code


class TriageMachine(RuleBasedStateMachine):
    """Random sequences of moves and bulk spam closes against the model."""

    def __init__(self) -> None:
        super().__init__()
        self.triage = Triage(Status.NEW)
        self.model_status = NEW
        self.model_reason: CloseReason | None = None
        self.moves = 0

    @rule(to=st.sampled_from(list(Status)), reason=st.sampled_from(REASONS))
    def change(self, to: Status, reason: CloseReason | None) -> None:
        code = expected(self.model_status, to.value, reason)
        before = self.triage
        if code is None:
            self.triage = move(self.triage, to, reason)
            self.model_status, self.model_reason = to.value, reason
            self.moves += 1
        else:
            with pytest.raises(TriageError) as caught:
                move(self.triage, to, reason)
            assert caught.value.code == code
            assert self.triage == before

    @rule()
    def close_spam(self) -> None:
        result = close_as_spam(self.triage)
        if self.model_status == CLOSED:
            assert result is None  # already closed: left untouched, whatever its reason
        else:
            assert result == Triage(Status.CLOSED, CloseReason.SPAM)
            assert result is not None
            self.triage = result
            self.model_status, self.model_reason = CLOSED, CloseReason.SPAM
            assert close_as_spam(self.triage) is None  # idempotent

    @precondition(lambda self: self.model_status == CLOSED)
    @rule()
    def reopen(self) -> None:
        self.triage = move(self.triage, Status.IN_REVIEW)
        self.model_status, self.model_reason = REVIEW, None

    @invariant()
    def agrees_with_the_model(self) -> None:
        assert self.triage.status.value == self.model_status
        assert self.triage.reason == self.model_reason

    @invariant()
    def a_reason_exactly_when_closed(self) -> None:
        assert (self.triage.reason is not None) == (self.triage.status is Status.CLOSED)

    @invariant()
    def never_new_again(self) -> None:
        assert self.moves == 0 or self.triage.status is not Status.NEW


TriageMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40)
test_triage_machine = TriageMachine.TestCase


# --- labels ------------------------------------------------------------------------------

KNOWN_CODES = {"label_length", "label_characters", "too_many_labels"}
label_text = st.text(st.characters(codec="utf-8"), max_size=80) | st.lists(
    st.sampled_from(["İş", "ı", "ə", "Ğ", "ü", "ş", "ç", "Ö", "торт", " ", ",", "-", "_", "x1"]),
    max_size=30,
).map("".join)


@given(label_text)
@example("İşgəncə, ılıq, ƏLİ")
@example(",".join(f"l{i}" for i in range(13)))
@example("e\u0301")
@example("a\u2028b")
@settings(max_examples=600)
def test_labels_either_refused_or_round_trip(text: str) -> None:
    try:
        labels = parse_labels(text)
    except TriageError as exc:
        refused: str | None = exc.code
    else:
        refused = None
    if refused is not None:
        assert refused in KNOWN_CODES
        return
    assert len(labels) <= LABELS_MAX
    for label in labels:
        assert 1 <= len(label) <= LABEL_MAX
        assert label == label.strip()
        assert "  " not in label
        assert "," not in label
        assert unicodedata.is_normalized("NFC", label)
        assert clean_label(label) == label
    assert parse_labels(", ".join(sorted(labels))) == labels


def test_azerbaijani_dotted_and_dotless_i_are_kept() -> None:
    assert parse_labels(" İşgəncə ,  ılıq   su, Bakı ") == {"İşgəncə", "ılıq su", "Bakı"}
    # Not lower-cased: "İ".lower() is "i" + U+0307, which would change the label.
    assert parse_labels("İ") == {"İ"}
    assert parse_labels("ı") == {"ı"}
    assert parse_labels("I, ı, İ, i") == {"I", "ı", "İ", "i"}


def test_labels_are_nfc_and_duplicates_collapse() -> None:
    assert parse_labels("e\u0301, \u00e9") == {"\u00e9"}
    assert parse_labels("ə\u0301") == {unicodedata.normalize("NFC", "ə\u0301")}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("<script>", "label_characters"),
        ('"><svg onload=alert(1)>', "label_characters"),
        ("a;b", "label_characters"),
        ("a/b", "label_characters"),
        ("x" * (LABEL_MAX + 1), "label_length"),
        ("a\u202eb", "label_characters"),
        (",".join(f"l{i}" for i in range(LABELS_MAX + 1)), "too_many_labels"),
    ],
)
def test_bad_labels_are_refused(text: str, code: str) -> None:
    with pytest.raises(TriageError) as caught:
        parse_labels(text)
    assert caught.value.code == code


def test_white_space_is_collapsed_before_the_length_is_checked() -> None:
    assert parse_labels("\t" + "x" * LABEL_MAX + "  \n") == {"x" * LABEL_MAX}
    assert parse_labels("a \t\n b") == {"a b"}


def test_empty_pieces_are_ignored() -> None:
    assert parse_labels("") == frozenset()
    assert parse_labels(" , ,, ") == frozenset()
    assert parse_labels(",".join(f"l{i}" for i in range(LABELS_MAX))) == {
        f"l{i}" for i in range(LABELS_MAX)
    }

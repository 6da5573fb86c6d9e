"""A draft whose questionnaire changed under it continues instead of failing every update."""

from __future__ import annotations

from intake_bot.questionnaire.engine import REVIEW, Engine, State
from intake_bot.questionnaire.loader import parse

QUESTIONNAIRE = """
id: small
version: 2
languages: [en]
sections:
  - id: one
    title: {en: One}
    questions:
      - id: first
        type: yesno
        text: {en: "First?"}
      - id: second
        type: text
        text: {en: "Second?"}
"""


def test_unknown_position_continues_at_first_unanswered_question() -> None:
    engine = Engine(parse(QUESTIONNAIRE))
    stale = State(position="removed_in_version_2", answers={"first": "yes"})
    assert engine.recover(stale).position == "second"


def test_unknown_position_with_everything_answered_goes_to_review() -> None:
    engine = Engine(parse(QUESTIONNAIRE))
    stale = State(position="gone", answers={"first": "no", "second": [{"text": "x"}]})
    assert engine.recover(stale).position == REVIEW


def test_known_positions_are_left_alone() -> None:
    engine = Engine(parse(QUESTIONNAIRE))
    for state in (engine.start(), State(position=REVIEW, answers={"first": "yes"})):
        assert engine.recover(state) == state

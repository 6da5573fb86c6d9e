"""The questionnaire as typed, immutable data: sections, questions, options, conditions.

A questionnaire is data (YAML), not code, so an organisation can adapt it; this module
only describes its shape. Loading and validation are in :mod:`.loader`, the flow in
:mod:`.engine`. Nothing here knows of Telegram, HTTP or storage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Translated = Mapping[str, str]
"""Text by language code (``az``, ``ru``, ``en``)."""

Answers = Mapping[str, Any]
"""Question id -> answer value (``None`` for a skipped question); see :mod:`.engine`."""


class QuestionType(StrEnum):
    NOTICE = "notice"
    """Text to acknowledge with one button (the safety notice)."""
    SINGLE = "single"
    MULTI = "multi"
    YESNO = "yesno"
    DATE = "date"
    TEXT = "text"
    """Free text over one or more messages (voice notes count), then Done."""
    FILES = "files"
    """One or more files, then Done."""


YES = "yes"
NO = "no"
UNKNOWN_DATE = "unknown"


@dataclass(frozen=True, slots=True)
class Option:
    id: str
    label: Translated


@dataclass(frozen=True, slots=True)
class Condition:
    """Shows a question or section only for some earlier answers.

    ``op`` is one of ``is``, ``is_not``, ``includes``, ``excludes``, ``answered``, ``all``,
    ``any``. A condition on a question that was skipped or not shown is false, except
    ``is_not``/``excludes``, which are true then (the reporter did not say so).
    """

    op: str
    question: str | None = None
    values: frozenset[str] = frozenset()
    items: tuple[Condition, ...] = ()

    def holds(self, answers: Answers) -> bool:
        if self.op == "all":
            return all(item.holds(answers) for item in self.items)
        if self.op == "any":
            return any(item.holds(answers) for item in self.items)
        value = answers.get(self.question) if self.question else None
        chosen: set[str] = set()
        if isinstance(value, list):
            chosen = {v for v in value if isinstance(v, str)}
        elif isinstance(value, str):
            chosen = {value}
        if self.op == "answered":
            return value is not None
        matched = bool(chosen & self.values)
        return matched if self.op in ("is", "includes") else not matched

    def questions(self) -> set[str]:
        """Every question id this condition reads."""
        found = {self.question} if self.question else set()
        for item in self.items:
            found |= item.questions()
        return found


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    type: QuestionType
    text: Translated
    section: str
    options: tuple[Option, ...] = ()
    help: Translated | None = None
    required: bool = False
    when: Condition | None = None
    urgent_if: frozenset[str] = frozenset()
    """Option ids that mark the report urgent (the one content-derived clear label)."""
    max_length: int = 20_000
    """Longest text accepted, in characters, for one text message."""

    def option(self, option_id: str) -> Option | None:
        return next((o for o in self.options if o.id == option_id), None)


@dataclass(frozen=True, slots=True)
class Section:
    id: str
    title: Translated
    questions: tuple[Question, ...]
    when: Condition | None = None


@dataclass(frozen=True, slots=True)
class Questionnaire:
    id: str
    version: int
    languages: tuple[str, ...]
    sections: tuple[Section, ...]
    questions: tuple[Question, ...] = field(init=False)
    _by_id: Mapping[str, Question] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        ordered = tuple(q for s in self.sections for q in s.questions)
        object.__setattr__(self, "questions", ordered)
        object.__setattr__(self, "_by_id", {q.id: q for q in ordered})

    def question(self, question_id: str) -> Question | None:
        return self._by_id.get(question_id)

    def section(self, section_id: str) -> Section:
        return next(s for s in self.sections if s.id == section_id)

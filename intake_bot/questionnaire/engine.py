"""The flow engine: which question comes next, what counts as an answer, when it is done.

Pure and immutable: every operation takes a :class:`State` and returns a new one or raises
:class:`AnswerError` (whose ``code`` the adapter translates). The engine never sees
Telegram, storage or encryption; the adapter persists the state (encrypted) after every
step, and plaintext in a ``State`` never leaves the process unencrypted.

Visibility: a question is shown when its own and its section's conditions hold against the
answers of the questions shown before it. Conditions only look back (the loader enforces
it), so one pass in order decides every question. Answers to questions that an edit has
since hidden are kept in the state but are not *effective*: they take part neither in
conditions nor in the report.

Answer values (JSON-compatible):
``notice`` ``"ack"``; ``single``/``yesno`` an option id (``"yes"``/``"no"``); ``multi`` a
list of option ids in the questionnaire's order; ``date`` ``{"precision": "day"|"month"|
"year", "value": ISO text}`` or ``{"precision": "unknown"}``; ``text`` a list of parts,
each ``{"text": str}`` or ``{"voice": file ref}``; ``files`` a list of file refs (opaque
mappings from the adapter). ``None`` means skipped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .dates import DateError, parse_date
from .model import NO, UNKNOWN_DATE, YES, Question, Questionnaire, QuestionType

MAX_PARTS = 100
"""Parts (messages, files, forwards) one answer takes: the draft is rewritten at every step,
so an unbounded answer would make each step slower for everyone."""

REVIEW = "#review"
"""The position after the last question: the summary with Change and Submit."""

ACK = "ack"
_COLLECTING = (QuestionType.MULTI, QuestionType.TEXT, QuestionType.FILES)


class AnswerError(Exception):
    """An answer the current step cannot take; ``code`` is a message key for the reporter."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


@dataclass(frozen=True, slots=True)
class State:
    """Where a reporter is. ``pending`` collects multi-choice toggles, text parts or files
    until Done."""

    position: str
    answers: Mapping[str, Any] = field(default_factory=dict)
    pending: tuple[Any, ...] = ()
    editing: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "answers": dict(self.answers),
            "pending": list(self.pending),
            "editing": self.editing,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> State:
        return cls(
            position=str(data["position"]),
            answers=dict(data.get("answers", {})),
            pending=tuple(data.get("pending", ())),
            editing=bool(data.get("editing", False)),
        )


class Engine:
    """The flow over one questionnaire."""

    def __init__(self, questionnaire: Questionnaire) -> None:
        self.questionnaire = questionnaire

    # --- reading ---------------------------------------------------------------------

    def visible(self, answers: Mapping[str, Any]) -> list[Question]:
        """The questions shown for these answers, in order."""
        shown: list[Question] = []
        effective: dict[str, Any] = {}
        for question in self.questionnaire.questions:
            section = self.questionnaire.section(question.section)
            if (section.when is None or section.when.holds(effective)) and (
                question.when is None or question.when.holds(effective)
            ):
                shown.append(question)
                if question.id in answers:
                    effective[question.id] = answers[question.id]
        return shown

    def effective(self, answers: Mapping[str, Any]) -> dict[str, Any]:
        """Answers (and skips) of the questions that are shown, in questionnaire order."""
        return {q.id: answers[q.id] for q in self.visible(answers) if q.id in answers}

    def current(self, state: State) -> Question | None:
        """The question to ask now, or None at the review step."""
        if state.position == REVIEW:
            return None
        question = self.questionnaire.question(state.position)
        if question is None:
            raise AnswerError("state_invalid")
        return question

    def is_urgent(self, answers: Mapping[str, Any]) -> bool:
        """True when a shown question's answer is one of its ``urgent_if`` options."""
        for question in self.visible(answers):
            if not question.urgent_if:
                continue
            value = answers.get(question.id)
            items = value if isinstance(value, list) else [value]
            if question.urgent_if & {v for v in items if isinstance(v, str)}:
                return True
        return False

    # --- moving ----------------------------------------------------------------------

    def start(self) -> State:
        return State(position=self._next_after(None, {}, only_unanswered=False))

    def _next_after(
        self, position: str | None, answers: Mapping[str, Any], *, only_unanswered: bool
    ) -> str:
        shown = self.visible(answers)
        ids = [q.id for q in shown]
        start = ids.index(position) + 1 if position in ids else 0
        if position is not None and position not in ids:
            # The current question was hidden by its own answer's effect: resume in order.
            order = [q.id for q in self.questionnaire.questions]
            later = set(order[order.index(position) + 1 :])
            start = next((i for i, qid in enumerate(ids) if qid in later), len(ids))
        for question in shown[start:]:
            if not only_unanswered or question.id not in answers:
                return question.id
        return REVIEW

    def _commit(self, state: State, question: Question, value: Any) -> State:
        answers = {**state.answers, question.id: value}
        position = self._next_after(question.id, answers, only_unanswered=state.editing)
        return State(
            position=position,
            answers=answers,
            pending=(),
            editing=state.editing and position != REVIEW,
        )

    def _need(self, state: State, *types: QuestionType) -> Question:
        question = self.current(state)
        if question is None:
            raise AnswerError("at_review")
        if question.type not in types:
            raise AnswerError("wrong_kind", expected=question.type.value)
        return question

    def choose(self, state: State, option_id: str) -> State:
        """Press an option of a single-choice, yes/no or notice question."""
        question = self._need(state, QuestionType.SINGLE, QuestionType.YESNO, QuestionType.NOTICE)
        valid = (
            {ACK}
            if question.type is QuestionType.NOTICE
            else {YES, NO}
            if question.type is QuestionType.YESNO
            else {o.id for o in question.options}
        )
        if option_id not in valid:
            raise AnswerError("not_an_option")
        return self._commit(state, question, option_id)

    def toggle(self, state: State, option_id: str) -> State:
        """Select or unselect an option of a multiple-choice question."""
        question = self._need(state, QuestionType.MULTI)
        if question.option(option_id) is None:
            raise AnswerError("not_an_option")
        selected = set(state.pending)
        selected ^= {option_id}
        ordered = tuple(o.id for o in question.options if o.id in selected)
        return replace(state, pending=ordered)

    def add_part(self, state: State, part: Mapping[str, Any]) -> State:
        """Add a text part (``{"text": …}``), a voice note (``{"voice": ref}``), a file
        (``{"file": ref}``) or a forwarded message kept as evidence (``{"forward": …}``)."""
        question = self._need(state, QuestionType.TEXT, QuestionType.FILES)
        if len(state.pending) >= MAX_PARTS:
            raise AnswerError("too_many_parts", limit=MAX_PARTS)
        if question.type is QuestionType.TEXT:
            if "text" in part:
                text = part["text"]
                if not isinstance(text, str) or not text.strip():
                    raise AnswerError("empty")
                if len(text) > question.max_length:
                    raise AnswerError("too_long", limit=question.max_length)
            elif "voice" not in part:
                raise AnswerError("wrong_kind", expected=question.type.value)
        elif "file" not in part and "forward" not in part:
            raise AnswerError("wrong_kind", expected=question.type.value)
        return replace(state, pending=(*state.pending, dict(part)))

    def enter_date(self, state: State, text: str, today: dt.date) -> State:
        """A typed date (``20.03.2023``, ``2023-03-20``, ``03.2023``, ``2023``)."""
        question = self._need(state, QuestionType.DATE)
        try:
            parsed = parse_date(text, today)
        except DateError as exc:
            raise AnswerError(exc.code) from None
        return self._commit(state, question, {"precision": parsed.precision, "value": parsed.value})

    def unknown_date(self, state: State) -> State:
        question = self._need(state, QuestionType.DATE)
        return self._commit(state, question, {"precision": UNKNOWN_DATE})

    def done(self, state: State) -> State:
        """Finish a collecting question (multi, text, files) with what was collected."""
        question = self._need(state, *_COLLECTING)
        keeps_old = question.type is QuestionType.TEXT and state.editing
        if not state.pending and keeps_old and state.answers.get(question.id) is not None:
            # Changing a written answer and sending nothing new keeps the old answer.
            return self._commit(state, question, state.answers[question.id])
        if not state.pending:
            if question.required:
                raise AnswerError(
                    "choose_one" if question.type is QuestionType.MULTI else "required"
                )
            return self._commit(state, question, None)
        return self._commit(state, question, list(state.pending))

    def skip(self, state: State) -> State:
        """Skip the question. Parts already sent for it are kept (as with Done): a file or
        text the reporter sent is never silently dropped."""
        question = self.current(state)
        if question is None:
            raise AnswerError("at_review")
        if state.pending and question.type in _COLLECTING:
            return self.done(state)
        if question.required:
            raise AnswerError("required")
        return self._commit(state, question, None)

    def edit(self, state: State, question_id: str) -> State:
        """From the review step, go back to a shown question to change its answer."""
        if state.position != REVIEW:
            raise AnswerError("not_at_review")
        if question_id not in {q.id for q in self.visible(state.answers)}:
            raise AnswerError("not_an_option")
        question = self.questionnaire.question(question_id)
        previous = state.answers.get(question_id)
        keep = (
            question is not None
            and question.type in (QuestionType.MULTI, QuestionType.FILES)
            and isinstance(previous, list)
        )
        # Toggles and files start from the current answer; text starts empty (replace it).
        pending = tuple(previous) if keep and isinstance(previous, list) else ()
        return State(position=question_id, answers=state.answers, pending=pending, editing=True)

    def recover(self, state: State) -> State:
        """A state whose position this questionnaire no longer has (it was edited while the
        draft was open) continues at the first unanswered shown question, or the summary."""
        if state.position == REVIEW or self.questionnaire.question(state.position) is not None:
            return state
        position = self._next_after(None, state.answers, only_unanswered=True)
        return State(position=position, answers=state.answers)

    def can_submit(self, state: State) -> bool:
        return state.position == REVIEW

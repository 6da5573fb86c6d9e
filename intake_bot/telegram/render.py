"""What the reporter sees: question messages, keyboards and the summary.

Plain text only (no parse mode), so nothing a reporter typed can turn into markup when it
is shown back on the summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from intake_bot.questionnaire.engine import ACK, Engine
from intake_bot.questionnaire.model import NO, UNKNOWN_DATE, YES, Question, QuestionType

from .callbacks import encode
from .strings import LANGUAGE_NAMES, LANGUAGES, Strings

MESSAGE_LIMIT = 4000
"""Telegram allows 4096 characters a message; keep a margin."""
BUTTON_LABEL = 60
SUMMARY_ANSWER = 600
"""Longest answer excerpt shown on the summary, in characters."""

Markup = InlineKeyboardMarkup


def _button(text: str, data: str) -> InlineKeyboardButton:
    label = text if len(text) <= BUTTON_LABEL else text[: BUTTON_LABEL - 1] + "…"
    return InlineKeyboardButton(label, callback_data=data)


def language_keyboard() -> Markup:
    return InlineKeyboardMarkup(
        [[_button(LANGUAGE_NAMES[lang], encode("L", value=lang))] for lang in LANGUAGES]
    )


class Renderer:
    def __init__(self, engine: Engine, strings: Strings) -> None:
        self.engine = engine
        self.strings = strings
        self.index = {q.id: i for i, q in enumerate(engine.questionnaire.questions)}

    def question(
        self, question: Question, lang: str, pending: tuple[Any, ...] = ()
    ) -> tuple[str, Markup]:
        t = self.strings
        section = self.engine.questionnaire.section(question.section)
        # No case change: "i".upper() is wrong for Azerbaijani (İ/i and I/ı pair differently).
        lines = [section.title[lang], "", question.text[lang]]
        if question.help:
            lines += ["", question.help[lang]]
        hint = {
            QuestionType.SINGLE: "hint_single",
            QuestionType.YESNO: "hint_single",
            QuestionType.MULTI: "hint_multi",
            QuestionType.DATE: "hint_date",
            QuestionType.TEXT: "hint_text",
            QuestionType.FILES: "hint_files",
        }.get(question.type)
        if hint:
            lines += ["", t(lang, hint)]
        return "\n".join(lines)[:MESSAGE_LIMIT], self.keyboard(question, lang, pending)

    def keyboard(self, question: Question, lang: str, pending: tuple[Any, ...] = ()) -> Markup:
        t = self.strings
        qi = self.index[question.id]
        rows: list[list[InlineKeyboardButton]] = []
        if question.type is QuestionType.NOTICE:
            rows.append([_button(t(lang, "button_ack"), encode("A", qi, 0))])
        elif question.type is QuestionType.SINGLE:
            rows += [
                [_button(o.label[lang], encode("A", qi, i))] for i, o in enumerate(question.options)
            ]
        elif question.type is QuestionType.YESNO:
            rows.append(
                [
                    _button(t(lang, "button_yes"), encode("A", qi, 0)),
                    _button(t(lang, "button_no"), encode("A", qi, 1)),
                ]
            )
        elif question.type is QuestionType.MULTI:
            rows += [
                [_button(("✓ " if o.id in pending else "") + o.label[lang], encode("T", qi, i))]
                for i, o in enumerate(question.options)
            ]
            rows.append([_button(t(lang, "button_done"), encode("D", qi))])
        elif question.type is QuestionType.DATE:
            rows.append([_button(t(lang, "button_dont_know"), encode("U", qi))])
        else:
            rows.append([_button(t(lang, "button_done"), encode("D", qi))])
        if not question.required and not pending:
            # Once something was sent for this question, Done keeps it; no Skip to lose it.
            rows.append([_button(t(lang, "button_skip"), encode("S", qi))])
        return InlineKeyboardMarkup(rows)

    @staticmethod
    def option_id(question: Question, index: int) -> str | None:
        """The option a button index names, or None if out of range."""
        if question.type is QuestionType.NOTICE:
            return ACK if index == 0 else None
        if question.type is QuestionType.YESNO:
            return (YES, NO)[index] if index < 2 else None
        return question.options[index].id if index < len(question.options) else None

    def answer_text(self, question: Question, value: Any, lang: str) -> str:
        t = self.strings
        if value is None:
            return t(lang, "review_skipped")
        if question.type is QuestionType.NOTICE:
            return "✓"
        if question.type is QuestionType.YESNO:
            return t(lang, "button_yes" if value == YES else "button_no")
        if question.type in (QuestionType.SINGLE, QuestionType.MULTI):
            chosen = value if isinstance(value, list) else [value]
            return ", ".join(o.label[lang] for o in question.options if o.id in chosen)
        if question.type is QuestionType.DATE:
            return (
                t(lang, "review_unknown_date")
                if value.get("precision") == UNKNOWN_DATE
                else str(value.get("value"))
            )
        if question.type is QuestionType.FILES:
            return t(lang, "review_files", count=len(value))
        parts = [p["text"] if "text" in p else t(lang, "review_voice") for p in value]
        text = "\n".join(parts)
        return text if len(text) <= SUMMARY_ANSWER else text[: SUMMARY_ANSWER - 1] + "…"

    def summary(self, answers: Mapping[str, Any], lang: str) -> list[str]:
        """The summary as one or more messages (each within Telegram's limit)."""
        t = self.strings
        blocks = [t(lang, "review_title")]
        for question in self.engine.visible(answers):
            if question.type is QuestionType.NOTICE or question.id not in answers:
                continue
            shown = self.answer_text(question, answers[question.id], lang)
            blocks.append(f"• {question.text[lang]}\n→ {shown}")
        blocks.append(t(lang, "review_footer"))
        messages: list[str] = []
        current = ""
        for block in blocks:
            if current and len(current) + len(block) + 2 > MESSAGE_LIMIT:
                messages.append(current)
                current = ""
            current = f"{current}\n\n{block}" if current else block[:MESSAGE_LIMIT]
        messages.append(current)
        return messages

    def review_keyboard(self, lang: str) -> Markup:
        t = self.strings
        return InlineKeyboardMarkup(
            [
                [_button(t(lang, "button_change"), encode("R"))],
                [_button(t(lang, "button_submit"), encode("P"))],
            ]
        )

    def change_keyboard(self, answers: Mapping[str, Any], lang: str) -> Markup:
        rows = [
            [_button(q.text[lang], encode("E", self.index[q.id]))]
            for q in self.engine.visible(answers)
            if q.type is not QuestionType.NOTICE
        ][:95]
        rows.append([_button(self.strings(lang, "button_back_to_review"), encode("B"))])
        return InlineKeyboardMarkup(rows)

"""Decrypted reports as the report page shows them: one of the few places plaintext lives.

Turns a report's decrypted payloads (the submitted document, or an unfinished draft's
answers, manifests and state) into plain view objects: every answer under its question in
the staff member's language, using the questionnaire version the report was made with.
Nothing here escapes HTML: the templates do, always (autoescape), and no value from a
report is ever marked safe. File names lose bidirectional-control and other invisible
format characters, which could make ``evil`` + U+202E + ``fdp.exe`` read as ``evilexe.pdf``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from intake_bot.crypto import PayloadKind, Plaintext
from intake_bot.questionnaire.model import Question, Questionnaire, QuestionType

SUMMARY_LENGTH = 120
NAME_LENGTH = 200


def clean_name(name: object) -> str:
    """A file name safe to show: no control or format (bidi) characters, bounded length."""
    text = name if isinstance(name, str) else ""
    kept = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))
    return kept.strip()[:NAME_LENGTH] or "file"


@dataclass(frozen=True, slots=True)
class FileView:
    id: str
    name: str
    mime: str
    size: int
    sha256: str
    received: str
    sent: str
    caption: str
    forward: str


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of an answer: text (``text``), a file (``file``), or both empty for a
    skipped question."""

    text: str = ""
    file: FileView | None = None
    forward: str = ""
    free: bool = False
    """Written by the reporter (not an option label or a date)."""


@dataclass(frozen=True, slots=True)
class AnswerView:
    question: str
    parts: tuple[Part, ...]
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class SectionView:
    title: str
    answers: tuple[AnswerView, ...]


@dataclass(frozen=True, slots=True)
class NoteView:
    author: str
    at: str
    text: str


@dataclass(slots=True)
class ReportView:
    complete: bool
    questionnaire: str
    known_version: bool
    language: str
    started: str
    submitted: str
    sections: list[SectionView] = field(default_factory=list)
    files: list[FileView] = field(default_factory=list)
    notes: list[NoteView] = field(default_factory=list)


class Questionnaires:
    """The questionnaires staff can read reports of, by (id, version)."""

    def __init__(self, known: Iterable[Questionnaire]) -> None:
        self._by_version = {(q.id, q.version): q for q in known}

    def get(self, qid: object, version: object) -> Questionnaire | None:
        if not isinstance(qid, str) or not isinstance(version, int):
            return None
        return self._by_version.get((qid, version))


def _text(translated: Mapping[str, str], language: str) -> str:
    return translated.get(language) or translated.get("en") or next(iter(translated.values()), "")


def _forward(origin: object) -> str:
    """Who a forwarded message came from, as one line."""
    if not isinstance(origin, dict):
        return ""
    if origin.get("from_reporter"):
        who = "the reporter"
    else:
        user: dict[str, Any] = origin.get("user") or {}
        chat: dict[str, Any] = origin.get("chat") or {}
        if not isinstance(user, dict) or not isinstance(chat, dict):
            user, chat = {}, {}
        names = [
            str(value)
            for value in (
                user.get("name"),
                user.get("username") and f"@{user.get('username')}",
                origin.get("name"),
                chat.get("title"),
                chat.get("username") and f"@{chat.get('username')}",
            )
            if value
        ]
        who = ", ".join(names) or "hidden sender"
    return f"{who} ({origin.get('date', '')})"


def file_view(ref: Mapping[str, Any]) -> FileView:
    return FileView(
        id=str(ref.get("file", "")),
        name=clean_name(ref.get("name")),
        mime=str(ref.get("mime") or "application/octet-stream")[:100],
        size=int(ref.get("size") or 0),
        sha256=str(ref.get("sha256", "")),
        received=str(ref.get("received", "")),
        sent=str(ref.get("sent", "")),
        caption=str(ref.get("caption") or ""),
        forward=_forward(ref.get("forward")),
    )


def _parts(question: Question | None, value: Any, language: str) -> tuple[Part, ...]:
    if isinstance(value, list) and (question is None or question.type is not QuestionType.MULTI):
        return tuple(_part(item) for item in value)
    if isinstance(value, dict) and "precision" in value:
        shown = "unknown" if value.get("precision") == "unknown" else str(value.get("value"))
        return (Part(text=shown),)
    chosen = value if isinstance(value, list) else [value]
    labels = []
    for item in chosen:
        option = question.option(str(item)) if question is not None else None
        labels.append(_text(option.label, language) if option is not None else str(item))
    return (Part(text=", ".join(labels)),)


def _part(item: Any) -> Part:
    if isinstance(item, dict):
        if isinstance(item.get("file"), dict):
            return Part(file=file_view(item["file"]))
        if isinstance(item.get("voice"), dict):
            return Part(file=file_view(item["voice"]))
        forward = item.get("forward")
        if isinstance(forward, dict) and "origin" in forward:
            return Part(
                text=str(forward.get("text", "")), forward=_forward(forward["origin"]), free=True
            )
        return Part(text=str(item.get("text", "")), forward=_forward(forward), free=True)
    return Part(text=str(item), free=True)


def _sections(
    answers: Sequence[tuple[str, Any]], questionnaire: Questionnaire | None, language: str
) -> list[SectionView]:
    """Answers grouped by section, in questionnaire order (or as stored, without one)."""
    if questionnaire is None:
        return [
            SectionView(
                "",
                tuple(
                    AnswerView(qid, _parts(None, value, language), value is None)
                    for qid, value in answers
                ),
            )
        ]
    by_id = dict(answers)
    sections = []
    for section in questionnaire.sections:
        views = tuple(
            AnswerView(
                _text(question.text, language),
                ()
                if by_id[question.id] is None
                else _parts(question, by_id[question.id], language),
                by_id[question.id] is None,
            )
            for question in section.questions
            if question.id in by_id and question.type is not QuestionType.NOTICE
        )
        if views:
            sections.append(SectionView(_text(section.title, language), views))
    return sections


def _json(plaintext: Plaintext) -> Any:
    return json.loads(plaintext.reveal())


def build(
    payloads: Iterable[tuple[PayloadKind, bytes, Plaintext]],
    questionnaires: Questionnaires,
    language: str,
    *,
    fallback: Questionnaire,
) -> ReportView:
    """The report page's view of a report from its decrypted payloads.

    An unfinished report (a draft or an incomplete report) has no document; it is shown
    from its answers, read with the questionnaire now in use (``fallback``).
    """
    document: dict[str, Any] | None = None
    answers: dict[str, Any] = {}
    manifests: list[dict[str, Any]] = []
    state: dict[str, Any] = {}
    notes: list[NoteView] = []
    for kind, _slot, plaintext in payloads:
        data = _json(plaintext)
        if kind is PayloadKind.DOCUMENT:
            document = data
        elif kind is PayloadKind.ANSWER:
            answers[str(data.get("question"))] = data.get("value")
        elif kind is PayloadKind.MANIFEST:
            manifests.append(data)
        elif kind is PayloadKind.DRAFT_STATE:
            state = data
        elif kind is PayloadKind.NOTE:
            notes.append(NoteView(str(data["author"]), str(data["at"]), str(data["text"])))
    notes.sort(key=lambda note: note.at)
    if document is not None:
        meta = document.get("questionnaire") or {}
        questionnaire = questionnaires.get(meta.get("id"), meta.get("version"))
        pairs = [(str(a.get("question")), a.get("value")) for a in document.get("answers", [])]
        view = ReportView(
            complete=True,
            questionnaire=f"{meta.get('id')} v{meta.get('version')}",
            known_version=questionnaire is not None,
            language=str(document.get("language", "")),
            started=str(document.get("started", "")),
            submitted=str(document.get("submitted", "")),
            sections=_sections(pairs, questionnaire, language),
            files=[file_view(ref) for ref in document.get("files", [])],
        )
    else:
        engine = state.get("engine") if isinstance(state.get("engine"), dict) else {}
        order = {q.id: i for i, q in enumerate(fallback.questions)}
        pairs = sorted(answers.items(), key=lambda pair: order.get(pair[0], len(order)))
        if engine and isinstance(engine.get("answers"), dict):
            pairs = [(qid, value) for qid, value in pairs if qid in engine["answers"]] or pairs
        view = ReportView(
            complete=False,
            questionnaire=f"{fallback.id} v{fallback.version}",
            known_version=True,
            language=str(state.get("language", "")),
            started=str(state.get("started", "")),
            submitted="",
            sections=_sections(pairs, fallback, language),
            files=[file_view(ref) for ref in manifests],
        )
    view.notes = notes
    return view


def summary(view: ReportView) -> str:
    """One line for the inbox: the first text the reporter wrote, else the first answer."""
    parts = [p for s in view.sections for a in s.answers for p in a.parts if p.text]
    chosen = next((p for p in parts if p.free), parts[0] if parts else None)
    if chosen is None:
        return ""
    line = " ".join(chosen.text.split())
    return line if len(line) <= SUMMARY_LENGTH else line[: SUMMARY_LENGTH - 1] + "…"

"""Decrypted reports as the report page shows them: one of the few places plaintext lives.

Turns a report's decrypted payloads (the submitted document, or an unfinished draft's
answers, manifests and state) into plain view objects: every answer under its question in
the staff member's language, using the questionnaire version the report was made with.
Nothing here escapes HTML: the templates do, always (autoescape), and no value from a
report is ever marked safe. File names lose bidirectional-control and other invisible
format characters, which could make ``evil`` + U+202E + ``fdp.exe`` read as ``evilexe.pdf``.

Payloads are not trusted to have the shape the bot writes: anyone with the org public key
(a seized server, a tampered database) can make a report that decrypts to any JSON. So
:func:`build` is total over JSON: a value of an unexpected type is shown as text or
dropped, never an exception that would take the inbox down for every key-holder. Lone
surrogates (valid in JSON escapes, not in UTF-8) become U+FFFD so that a page can always
be encoded.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from intake_bot.crypto import PayloadKind, Plaintext
from intake_bot.questionnaire.model import Question, Questionnaire, QuestionType

SUMMARY_LENGTH = 120
NAME_LENGTH = 200
FILE_ID = re.compile(r"[0-9a-f]{32}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_HIDDEN = ("Cc", "Cf", "Cs")
"""Control, format (bidi marks, isolates, zero-width) and surrogate characters."""


def _visible(text: str) -> str:
    return "".join(ch for ch in text if unicodedata.category(ch) not in _HIDDEN)


def clean_name(name: object) -> str:
    """A file name safe to show: no control or format (bidi) characters, bounded length."""
    text = name if isinstance(name, str) else ""
    return _visible(text).strip()[:NAME_LENGTH].strip() or "file"


def _scalar(value: object) -> str:
    """Any JSON value as one text: strings as they are, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _scrub(value: Any) -> Any:
    """A decoded JSON value with every lone surrogate replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if isinstance(value, dict):
        return {_scrub(key): _scrub(item) for key, item in value.items()}
    return value


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

    @property
    def size_text(self) -> str:
        """The size as people read it, with the exact byte count for comparison."""
        for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if self.size >= scale:
                return f"{self.size / scale:.1f} {unit} ({self.size} B)"
        return f"{self.size} B"


def utc_minute(text: str) -> str:
    """An ISO time from inside the encryption as ``YYYY-MM-DD HH:MM UTC`` (or as it is,
    if it is not one)."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M UTC")


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


@dataclass(frozen=True, slots=True)
class Words:
    """The few words the page adds to a report's data, in the staff member's language."""

    reporter: str = "the reporter"
    hidden_sender: str = "hidden sender"
    unknown_date: str = "unknown"
    yes: str = "yes"
    no: str = "no"


ENGLISH = Words()


def _text(translated: Mapping[str, str], language: str) -> str:
    return translated.get(language) or translated.get("en") or next(iter(translated.values()), "")


def _one_line(value: object) -> str:
    """A name from Telegram (a sender, a chat) as one line without bidi or control marks."""
    return " ".join(_visible(_scalar(value)).split())[:NAME_LENGTH]


def _forward(origin: object, words: Words) -> str:
    """Who a forwarded message came from, as one line."""
    if not isinstance(origin, dict):
        return ""
    if origin.get("from_reporter") is True:
        who = words.reporter
    else:
        user, chat = _dict(origin.get("user")), _dict(origin.get("chat"))
        names = [
            _one_line(value)
            for value in (
                user.get("name"),
                user.get("username") and f"@{_scalar(user.get('username'))}",
                origin.get("name"),
                chat.get("title"),
                chat.get("username") and f"@{_scalar(chat.get('username'))}",
            )
            if value
        ]
        who = ", ".join(name for name in names if name) or words.hidden_sender
    return f"{who} ({_one_line(origin.get('date'))})"


def file_view(ref: Mapping[str, Any], words: Words = ENGLISH) -> FileView:
    """A manifest entry as shown. ``id`` is empty unless it is a file id (32 hex digits),
    so a crafted entry cannot steer the page's links."""
    file_id = ref.get("file")
    size = ref.get("size")
    return FileView(
        id=file_id if isinstance(file_id, str) and FILE_ID.fullmatch(file_id) else "",
        name=clean_name(ref.get("name")),
        mime=_one_line(ref.get("mime") or "application/octet-stream")[:100],
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else 0,
        sha256=_one_line(ref.get("sha256"))[:100],
        received=utc_minute(_one_line(ref.get("received"))),
        sent=utc_minute(_one_line(ref.get("sent"))),
        caption=_scalar(ref.get("caption")),
        forward=_forward(ref.get("forward"), words),
    )


def _parts(question: Question | None, value: Any, language: str, words: Words) -> tuple[Part, ...]:
    if isinstance(value, list) and (question is None or question.type is not QuestionType.MULTI):
        return tuple(_part(item, words) for item in value)
    if isinstance(value, dict) and "precision" in value:
        unknown = value.get("precision") == "unknown"
        return (Part(text=words.unknown_date if unknown else _scalar(value.get("value"))),)
    chosen = value if isinstance(value, list) else [value]
    labels = []
    yes_no = {"yes": words.yes, "no": words.no}
    for item in chosen:
        option = question.option(_scalar(item)) if question is not None else None
        if option is not None:
            labels.append(_text(option.label, language))
        elif question is not None and question.type is QuestionType.YESNO:
            labels.append(yes_no.get(_scalar(item), _scalar(item)))
        else:
            labels.append(_scalar(item))
    return (Part(text=", ".join(labels)),)


def _part(item: Any, words: Words) -> Part:
    if isinstance(item, dict):
        if isinstance(item.get("file"), dict):
            return Part(file=file_view(item["file"], words))
        if isinstance(item.get("voice"), dict):
            return Part(file=file_view(item["voice"], words))
        forward = item.get("forward")
        if isinstance(forward, dict) and "origin" in forward:
            return Part(
                text=_scalar(forward.get("text")),
                forward=_forward(forward["origin"], words),
                free=True,
            )
        return Part(text=_scalar(item.get("text")), forward=_forward(forward, words), free=True)
    return Part(text=_scalar(item), free=True)


def _by_ids(answers: Sequence[tuple[str, Any]], language: str, words: Words) -> SectionView:
    return SectionView(
        "",
        tuple(
            AnswerView(
                qid, () if value is None else _parts(None, value, language, words), value is None
            )
            for qid, value in answers
        ),
    )


def _sections(
    answers: Sequence[tuple[str, Any]],
    questionnaire: Questionnaire | None,
    language: str,
    words: Words,
) -> list[SectionView]:
    """Answers grouped by section, in questionnaire order (or as stored, without one).

    Answers to questions the questionnaire does not have are shown last, by their ids:
    staff see everything a report holds.
    """
    if questionnaire is None:
        return [_by_ids(answers, language, words)] if answers else []
    by_id = dict(answers)
    sections = []
    for section in questionnaire.sections:
        views = tuple(
            AnswerView(
                _text(question.text, language),
                ()
                if by_id[question.id] is None
                else _parts(question, by_id[question.id], language, words),
                by_id[question.id] is None,
            )
            for question in section.questions
            if question.id in by_id and question.type is not QuestionType.NOTICE
        )
        if views:
            sections.append(SectionView(_text(section.title, language), views))
    unknown = [(qid, value) for qid, value in answers if questionnaire.question(qid) is None]
    if unknown:
        sections.append(_by_ids(unknown, language, words))
    return sections


def _json(plaintext: Plaintext) -> Any:
    """A payload's JSON; :class:`ValueError` if it is not JSON (or absurdly nested)."""
    try:
        return _scrub(json.loads(plaintext.reveal()))
    except RecursionError:
        raise ValueError("payload nested too deeply") from None


def build(
    payloads: Iterable[tuple[PayloadKind, bytes, Plaintext]],
    questionnaires: Questionnaires,
    language: str,
    *,
    fallback: Questionnaire,
    words: Words = ENGLISH,
) -> ReportView:
    """The report page's view of a report from its decrypted payloads.

    An unfinished report (a draft or an incomplete report) has no document; it is shown
    from its answers, read with the questionnaire now in use (``fallback``).
    """
    document: dict[str, Any] | None = None
    answers: dict[str, Any] = {}
    manifests: list[dict[str, Any]] = []
    state: dict[str, Any] = {}
    notes: list[tuple[str, NoteView]] = []
    for kind, _slot, plaintext in payloads:
        data = _json(plaintext)
        if kind is PayloadKind.DOCUMENT:
            document = _dict(data)
        elif kind is PayloadKind.ANSWER and isinstance(data, dict):
            answers[_scalar(data.get("question"))] = data.get("value")
        elif kind is PayloadKind.MANIFEST and isinstance(data, dict):
            manifests.append(data)
        elif kind is PayloadKind.DRAFT_STATE:
            state = _dict(data)
        elif kind is PayloadKind.NOTE and isinstance(data, dict):
            written = _one_line(data.get("at"))
            notes.append(
                (
                    written,
                    NoteView(
                        _one_line(data.get("author")),
                        utc_minute(written),
                        _scalar(data.get("text")),
                    ),
                )
            )
    notes.sort(key=lambda pair: pair[0])  # by the exact time, not the minute shown
    if document is not None:
        meta = _dict(document.get("questionnaire"))
        questionnaire = questionnaires.get(meta.get("id"), meta.get("version"))
        pairs = [
            (_scalar(a.get("question")), a.get("value"))
            for a in _list(document.get("answers"))
            if isinstance(a, dict)
        ]
        made_with = (_one_line(meta.get("id")) or "?", _one_line(meta.get("version")) or "?")
        view = ReportView(
            complete=True,
            questionnaire="{} v{}".format(*made_with),
            known_version=questionnaire is not None,
            language=_one_line(document.get("language")),
            started=_one_line(document.get("started")),
            submitted=_one_line(document.get("submitted")),
            sections=_sections(pairs, questionnaire, language, words),
            files=[
                file_view(ref, words)
                for ref in _list(document.get("files"))
                if isinstance(ref, dict)
            ],
        )
    else:
        engine = _dict(state.get("engine"))
        order = {q.id: i for i, q in enumerate(fallback.questions)}
        pairs = sorted(answers.items(), key=lambda pair: order.get(pair[0], len(order)))
        current = engine.get("answers")
        if isinstance(current, dict):
            pairs = [(qid, value) for qid, value in pairs if qid in current] or pairs
        view = ReportView(
            complete=False,
            questionnaire=f"{fallback.id} v{fallback.version}",
            known_version=True,
            language=_one_line(state.get("language")),
            started=_one_line(state.get("started")),
            submitted="",
            sections=_sections(pairs, fallback, language, words),
            files=[file_view(ref, words) for ref in manifests],
        )
    view.notes = [note for _, note in notes]
    return view


def summary(view: ReportView) -> str:
    """One line for the inbox: the longest text the reporter wrote (their account, rather
    than a place name typed earlier), else the first answer."""
    parts = [p for s in view.sections for a in s.answers for p in a.parts if p.text]
    written = [p for p in parts if p.free]
    chosen = max(written, key=lambda p: len(p.text)) if written else (parts[0] if parts else None)
    if chosen is None:
        return ""
    line = " ".join(chosen.text.split())
    return line if len(line) <= SUMMARY_LENGTH else line[: SUMMARY_LENGTH - 1] + "…"

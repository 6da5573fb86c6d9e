"""admin.rendering: decrypted payloads (shaped as the bot writes them) to the report page's
view, in the staff member's language; file names made safe to show; the inbox summary.

Documents here follow ``Conversation._document`` and file refs ``Conversation._file``;
drafts follow ``services.drafts`` (ANSWER ``{"question", "value"}`` per slot, DRAFT_STATE
``{"engine", "started", "language", "slots"}``, one MANIFEST per file).
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from admin.rendering import (
    NAME_LENGTH,
    SUMMARY_LENGTH,
    Questionnaires,
    ReportView,
    build,
    clean_name,
    summary,
)
from intake_bot.crypto import PayloadKind, Plaintext, random_id
from intake_bot.questionnaire.loader import load_default
from intake_bot.questionnaire.model import Questionnaire

DEFAULT = load_default()
KNOWN = Questionnaires([DEFAULT])
FILE_ID = "0123456789abcdef0123456789abcdef"
SHA = "ab" * 32
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
CONTROL = "\x00\x07\x1b\r\n\t\x7f\x85"


def ref(name: str = "photo.jpg", **extra: Any) -> dict[str, Any]:
    """A file ref as the bot writes it (kind, name, type, size, SHA-256, times, caption)."""
    return {
        "file": FILE_ID,
        "kind": "photo",
        "name": name,
        "mime": "image/jpeg",
        "size": 123_456,
        "sha256": SHA,
        "sent": "2026-11-01T09:59:58+00:00",
        "received": "2026-11-01T10:00:01.123456+00:00",
        "caption": None,
        "album": False,
        **extra,
    }


FORWARD_ORIGIN = {
    "type": "channel",
    "date": "2026-10-30T08:00:00+00:00",
    "chat": {"id": -1001, "title": "Xəbər kanalı", "username": "xeber"},
}

ANSWERS: list[tuple[str, Any]] = [
    ("urgent", "someone_else"),
    ("urgent_details", [{"text": "Qardaşım dünən gecə saxlanıldı"}]),
    ("role", "relative"),
    ("violations", ["arbitrary_arrest", "torture"]),
    ("started", {"precision": "month", "value": "2026-10"}),
    ("ongoing", "yes"),
    ("place_city", None),
    (
        "event_account",
        [
            {"text": "They came at night.\n\nThey took his phone."},
            {"forward": FORWARD_ORIGIN, "text": "forwarded words"},
        ],
    ),
    (
        "evidence_files",
        [
            {"file": ref()},
            {
                "forward": {
                    "origin": {
                        "type": "hidden_user",
                        "date": "2026-10-29T00:00:00+00:00",
                        "name": "Anon",
                    },
                    "text": "a forwarded note",
                }
            },
        ],
    ),
]


def section_of(qid: str) -> str:
    question = DEFAULT.question(qid)
    return question.section if question is not None else ""


def document(answers: list[tuple[str, Any]] = ANSWERS, **meta: Any) -> dict[str, Any]:
    files = [
        part["file"]
        for _, value in answers
        if isinstance(value, list)
        for part in value
        if isinstance(part, dict) and "file" in part
    ]
    return {
        "questionnaire": {"id": DEFAULT.id, "version": DEFAULT.version},
        "language": "az",
        "started": "2026-11-01T09:58:00.000001+00:00",
        "submitted": "2026-11-01T10:05:00.654321+00:00",
        "urgent": True,
        "answers": [
            {"question": qid, "section": section_of(qid), "value": value} for qid, value in answers
        ],
        "files": files,
        **meta,
    }


def payload(kind: PayloadKind, data: Any) -> tuple[PayloadKind, bytes, Plaintext]:
    return kind, random_id(), Plaintext(json.dumps(data, ensure_ascii=False).encode())


def render(*payloads: tuple[PayloadKind, bytes, Plaintext], language: str = "en") -> ReportView:
    return build(payloads, KNOWN, language, fallback=DEFAULT)


def answers_of(view: ReportView) -> dict[str, list[str]]:
    """Question text -> the text of each part (file names for files)."""
    return {
        a.question: [p.file.name if p.file else p.text for p in a.parts]
        for s in view.sections
        for a in s.answers
    }


def test_a_submitted_report_in_questionnaire_order_in_the_viewers_language() -> None:
    view = render(payload(PayloadKind.DOCUMENT, document()), language="ru")
    assert view.complete
    assert view.known_version
    assert view.questionnaire == "intake-default v1"
    assert (view.language, view.started, view.submitted) == (
        "az",
        "2026-11-01T09:58:00.000001+00:00",
        "2026-11-01T10:05:00.654321+00:00",
    )
    assert [s.title for s in view.sections] == [
        "Прежде чем начать",
        "О вас",  # noqa: RUF001 (Cyrillic)
        "Что произошло",
        "Доказательства",
    ]
    shown = answers_of(view)
    assert shown["Сейчас кто-то задержан, пропал или в опасности?"] == ["Да, другой человек"]
    assert shown["Какое отношение вы имеете к случившемуся?"] == ["Родственник или друг"]
    assert shown["Что произошло?"] == ["Арест или задержание, Пытки или жестокое обращение"]
    assert shown["Когда это началось?"] == ["2026-10"]
    assert shown["Расскажите, пожалуйста, что произошло, своими словами."] == [
        "They came at night.\n\nThey took his phone.",
        "forwarded words",
    ]
    skipped = [a for s in view.sections for a in s.answers if a.skipped]
    assert [a.question for a in skipped] == ["Где это произошло? Город или район."]
    assert skipped[0].parts == ()


def test_each_language_gives_its_own_question_texts() -> None:
    texts = {
        language: list(
            answers_of(render(payload(PayloadKind.DOCUMENT, document()), language=language))
        )
        for language in ("az", "ru", "en")
    }
    question = DEFAULT.question("event_account")
    assert question is not None
    for language, shown in texts.items():
        assert question.text[language] in shown
    assert len({tuple(t) for t in texts.values()}) == 3
    # A language the questionnaire lacks falls back to English.
    assert (
        list(answers_of(render(payload(PayloadKind.DOCUMENT, document()), language="de")))
        == (texts["en"])
    )


def test_files_forwards_and_parts_keep_their_details() -> None:
    view = render(payload(PayloadKind.DOCUMENT, document()))
    assert len(view.files) == 1
    item = view.files[0]
    assert (item.id, item.name, item.mime, item.size, item.sha256) == (
        FILE_ID,
        "photo.jpg",
        "image/jpeg",
        123_456,
        SHA,
    )
    assert item.received == "2026-11-01 10:00 UTC"
    evidence = next(a for s in view.sections for a in s.answers if a.question.startswith("If you"))
    assert evidence.parts[0].file == item
    assert evidence.parts[1].text == "a forwarded note"
    assert evidence.parts[1].forward == "Anon (2026-10-29T00:00:00+00:00)"
    account = next(a for s in view.sections for a in s.answers if a.question.startswith("Please"))
    assert account.parts[1].forward == "Xəbər kanalı, @xeber (2026-10-30T08:00:00+00:00)"
    assert all(part.free for part in account.parts)


def test_a_forward_from_the_reporter_names_no_one() -> None:
    origin = {"type": "user", "date": "2026-10-01T00:00:00+00:00", "from_reporter": True}
    doc = document([("event_account", [{"text": "mine", "forward": origin}])])
    view = render(payload(PayloadKind.DOCUMENT, doc))
    assert (
        view.sections[0].answers[0].parts[0].forward == "the reporter (2026-10-01T00:00:00+00:00)"
    )


def test_an_unknown_questionnaire_version_shows_question_ids() -> None:
    doc = document(questionnaire={"id": DEFAULT.id, "version": 99})
    view = render(payload(PayloadKind.DOCUMENT, doc))
    assert not view.known_version
    assert view.questionnaire == "intake-default v99"
    assert [s.title for s in view.sections] == [""]
    assert [a.question for a in view.sections[0].answers] == [qid for qid, _ in ANSWERS]
    shown = answers_of(view)
    assert shown["role"] == ["relative"]  # the option id, not a label of another version
    assert shown["violations"] == ["arbitrary_arrest", "torture"]
    assert shown["evidence_files"] == ["photo.jpg", "a forwarded note"]


def test_an_older_installed_version_is_read_with_its_own_questions() -> None:
    old: Questionnaire = replace(DEFAULT, version=0)
    question = old.question("event_account")
    assert question is not None
    doc = document(questionnaire={"id": DEFAULT.id, "version": 0})
    view = build(
        [payload(PayloadKind.DOCUMENT, doc)], Questionnaires([DEFAULT, old]), "en", fallback=DEFAULT
    )
    assert view.known_version
    assert view.questionnaire == "intake-default v0"
    assert question.text["en"] in answers_of(view)


def test_answers_to_questions_the_version_lacks_are_still_shown() -> None:
    doc = document([("role", "witness"), ("removed_question", [{"text": "kept anyway"}])])
    shown = answers_of(render(payload(PayloadKind.DOCUMENT, doc)))
    assert shown["How are you connected to what happened?"] == ["Witness"]
    assert shown["removed_question"] == ["kept anyway"]


def draft_payloads(
    answers: dict[str, Any], *, engine_answers: dict[str, Any] | None = None, files: int = 1
) -> list[tuple[PayloadKind, bytes, Plaintext]]:
    slots = {qid: random_id().hex() for qid in answers}
    state = {
        "engine": {
            "position": "event_account",
            "answers": answers if engine_answers is None else engine_answers,
            "pending": [{"text": "half a sentence"}],
            "editing": False,
        },
        "started": "2026-11-02T07:00:00.5+00:00",
        "language": "ru",
        "slots": slots,
    }
    found = [payload(PayloadKind.ANSWER, {"question": q, "value": v}) for q, v in answers.items()]
    found.append(payload(PayloadKind.DRAFT_STATE, state))
    found += [payload(PayloadKind.MANIFEST, ref(f"f{i}.pdf")) for i in range(files)]
    return found


def test_an_incomplete_draft_is_shown_from_its_answers() -> None:
    answers = {
        "event_account": [{"text": "Çətin idi"}],
        "urgent": "me",
        "role": None,
    }
    view = render(*draft_payloads(answers, files=2), language="az")
    assert not view.complete
    assert view.submitted == ""
    assert view.started == "2026-11-02T07:00:00.5+00:00"
    assert view.language == "ru"
    assert view.questionnaire == "intake-default v1"
    assert [f.name for f in view.files] == ["f0.pdf", "f1.pdf"]
    shown = answers_of(view)
    # In questionnaire order, not in the order the payloads were stored.
    assert list(shown) == [
        "Hazırda kimsə həbsdədir, itkin düşüb və ya təhlükədədir?",
        "Baş verənlərlə əlaqəniz nədir?",
        "Zəhmət olmasa, baş verənləri öz sözlərinizlə danışın.",
    ]
    assert shown["Hazırda kimsə həbsdədir, itkin düşüb və ya təhlükədədir?"] == ["Bəli, mən"]
    assert shown["Zəhmət olmasa, baş verənləri öz sözlərinizlə danışın."] == ["Çətin idi"]
    assert summary(view) == "Çətin idi"


def test_a_draft_shows_only_answers_its_engine_state_still_holds() -> None:
    answers = {"role": "witness", "event_account": [{"text": "current"}]}
    view = render(*draft_payloads(answers, engine_answers={"event_account": []}))
    assert list(answers_of(view)) == ["Please tell us what happened, in your own words."]


def test_a_draft_without_its_state_is_still_shown() -> None:
    view = render(payload(PayloadKind.ANSWER, {"question": "role", "value": "lawyer"}))
    assert not view.complete
    assert view.started == ""
    assert answers_of(view) == {"How are you connected to what happened?": ["Lawyer"]}


def test_notes_are_shown_oldest_first() -> None:
    notes = [
        {"author": "rustam", "at": "2026-11-03T10:00:00+00:00", "text": "second"},
        {"author": "amina", "at": "2026-11-02T10:00:00+00:00", "text": "first"},
    ]
    view = render(
        payload(PayloadKind.DOCUMENT, document()), *(payload(PayloadKind.NOTE, n) for n in notes)
    )
    assert [(n.author, n.text) for n in view.notes] == [("amina", "first"), ("rustam", "second")]


# --- file names --------------------------------------------------------------------------


@pytest.mark.parametrize("mark", list(BIDI + CONTROL + "\u200b\u200d\ufeff\u00ad"))
def test_invisible_and_control_characters_are_stripped_from_file_names(mark: str) -> None:
    assert clean_name(f"evil{mark}fdp.exe") == "evilfdp.exe"


def test_the_classic_bidi_trick_is_undone() -> None:
    name = "invoice\u202egpj.exe"  # shows as "invoiceexe.jpg"
    assert clean_name(name) == "invoicegpj.exe"
    view = render(
        payload(PayloadKind.DOCUMENT, document([("evidence_files", [{"file": ref(name)}])]))
    )
    assert view.files[0].name == "invoicegpj.exe"
    assert view.sections[0].answers[0].parts[0].file == view.files[0]


@given(st.text(max_size=400) | st.none() | st.integers())
@example("\u202e" * 5)
@example(" \x00 ")
@example("a" * 1000)
@settings(max_examples=300)
def test_a_clean_name_has_no_invisible_characters(name: object) -> None:
    cleaned = clean_name(name)
    assert cleaned, "never empty"
    assert len(cleaned) <= NAME_LENGTH
    assert cleaned == cleaned.strip()
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in cleaned)
    if isinstance(name, str) and all(ch.isalnum() or ch in "._- " for ch in name) and name.strip():
        assert cleaned == name.strip()[:NAME_LENGTH].strip()


def test_names_in_forwards_lose_bidi_marks_too() -> None:
    origin = {
        "type": "user",
        "date": "2026-10-01",
        "user": {"name": "Ali\u202eved", "username": None},
    }
    doc = document([("event_account", [{"text": "x", "forward": origin}])])
    forward = render(payload(PayloadKind.DOCUMENT, doc)).sections[0].answers[0].parts[0].forward
    assert forward == "Alived (2026-10-01)"


# --- the summary line --------------------------------------------------------------------


def test_the_summary_is_the_longest_text_the_reporter_wrote() -> None:
    view = render(payload(PayloadKind.DOCUMENT, document()))
    # "urgent" and "role" come first but are option labels, not the reporter's words; the
    # urgent details come before the account but are shorter: the account is the summary.
    assert summary(view) == "They came at night. They took his phone."
    short = document([("place_city", [{"text": "Sumqayıt"}]), ("event_account", [{"text": "A"}])])
    assert summary(render(payload(PayloadKind.DOCUMENT, short))) == "Sumqayıt"


def test_without_free_text_the_summary_is_the_first_answer() -> None:
    doc = document([("role", "witness"), ("violations", ["torture"])])
    assert summary(render(payload(PayloadKind.DOCUMENT, doc))) == "Witness"
    assert summary(render(payload(PayloadKind.DOCUMENT, document([])))) == ""


def test_the_summary_is_one_bounded_line() -> None:
    text = "line one\n\n  line\ttwo " + "word " * 100
    view = render(payload(PayloadKind.DOCUMENT, document([("event_account", [{"text": text}])])))
    line = summary(view)
    assert len(line) == SUMMARY_LENGTH
    assert line.endswith("…")
    assert line.startswith("line one line two word word")
    assert "\n" not in line
    assert "\t" not in line
    assert "  " not in line


# --- crafted payloads --------------------------------------------------------------------

keys = st.sampled_from(
    [
        "file",
        "voice",
        "forward",
        "origin",
        "text",
        "name",
        "size",
        "questionnaire",
        "answers",
        "files",
        "question",
        "value",
        "precision",
        "engine",
        "author",
        "at",
        "user",
        "chat",
    ]
)
shaped = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(keys | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=8,
)


def crafted_document() -> st.SearchStrategy[Any]:
    answer = st.fixed_dictionaries(
        {
            "question": st.sampled_from(
                ["role", "violations", "event_account", "evidence_files", "started", "x"]
            )
            | shaped,
            "value": shaped,
        },
    )
    return (
        st.fixed_dictionaries(
            {},
            optional={
                "questionnaire": st.fixed_dictionaries(
                    {"id": st.just(DEFAULT.id) | shaped, "version": st.just(1) | shaped}
                )
                | shaped,
                "answers": st.lists(answer | shaped, max_size=5) | shaped,
                "files": st.lists(st.builds(ref, name=st.text()) | shaped, max_size=3) | shaped,
                "language": shaped,
                "started": shaped,
            },
        )
        | shaped
    )


@given(
    st.lists(st.tuples(st.sampled_from(list(PayloadKind)), crafted_document()), max_size=6),
    st.sampled_from(["en", "az", "ru"]),
)
@example([(PayloadKind.DOCUMENT, [1, 2])], "en")
@example([(PayloadKind.DOCUMENT, {"questionnaire": "x", "answers": 5, "files": [3]})], "en")
@example([(PayloadKind.DOCUMENT, {"files": [{"size": 1e300, "file": "../../accounts"}]})], "en")
@example([(PayloadKind.NOTE, {"text": 1})], "en")
@example([(PayloadKind.DRAFT_STATE, {"engine": []}), (PayloadKind.ANSWER, "x")], "en")
@settings(max_examples=120, deadline=None)
def test_any_json_in_any_payload_renders_without_an_exception(
    items: list[tuple[PayloadKind, Any]], language: str
) -> None:
    """A report can be made by anyone with the org public key: a crafted one must not take
    the inbox or the report page down."""
    view = render(*(payload(kind, data) for kind, data in items), language=language)
    line = summary(view)
    texts = [line, view.questionnaire, view.language, view.started, view.submitted]
    for section in view.sections:
        texts.append(section.title)
        for answer in section.answers:
            texts.append(answer.question)
            texts += [p.text + p.forward for p in answer.parts]
    for item in view.files:
        assert item.id == "" or len(item.id) == 32
        assert isinstance(item.size, int)
        assert item.size >= 0
        texts += [item.name, item.mime, item.caption, item.forward, item.sha256]
    texts += [n.author + n.at + n.text for n in view.notes]
    for text in texts:
        assert isinstance(text, str)
        text.encode("utf-8")  # a page of these always encodes


def test_lone_surrogates_become_replacement_characters() -> None:
    raw = b'{"answers": [{"question": "event_account", "value": [{"text": "a\\ud800b"}]}]}'
    view = render((PayloadKind.DOCUMENT, random_id(), Plaintext(raw)))
    assert summary(view) == "a\ufffdb"


def test_a_payload_that_is_not_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r".*"):
        render((PayloadKind.DOCUMENT, random_id(), Plaintext(b"\xff not json")))
    with pytest.raises(ValueError, match="nested"):
        render((PayloadKind.DOCUMENT, random_id(), Plaintext(b"[" * 100_000 + b"]" * 100_000)))

"""What the reporter sees: plain text, titles as written, keyboards and summary limits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import InlineKeyboardMarkup

import intake_bot.telegram
from intake_bot.config import load_settings
from intake_bot.questionnaire.engine import ACK, Engine
from intake_bot.questionnaire.loader import load_default, parse
from intake_bot.questionnaire.model import NO, UNKNOWN_DATE, YES, Questionnaire, QuestionType
from intake_bot.telegram.app import build_application
from intake_bot.telegram.callbacks import Callback
from intake_bot.telegram.callbacks import parse as parse_callback
from intake_bot.telegram.render import (
    BUTTON_LABEL,
    MESSAGE_LIMIT,
    SUMMARY_ANSWER,
    Renderer,
    language_keyboard,
)
from intake_bot.telegram.strings import LANGUAGES, Strings

TELEGRAM_LIMIT = 4096
STRINGS = Strings.load()
DEFAULT = load_default()


def _tr(text: str) -> dict[str, str]:
    return {"az": text, "ru": text, "en": text}


def _questionnaire(
    questions: list[dict[str, Any]], title: dict[str, str] | None = None
) -> Questionnaire:
    doc = {
        "id": "render",
        "version": 1,
        "languages": list(LANGUAGES),
        "sections": [{"id": "s", "title": title or _tr("Section"), "questions": questions}],
    }
    return parse(yaml.safe_dump(doc, allow_unicode=True))


def _texts(count: int, text: str = "Question number {i}") -> Questionnaire:
    return _questionnaire(
        [{"id": f"q{i}", "type": "text", "text": _tr(text.format(i=i))} for i in range(count)]
    )


def _renderer(questionnaire: Questionnaire) -> Renderer:
    return Renderer(Engine(questionnaire), STRINGS)


def _buttons(markup: InlineKeyboardMarkup) -> list[tuple[str, str]]:
    return [
        (button.text, str(button.callback_data)) for row in markup.inline_keyboard for button in row
    ]


# --- the summary ---------------------------------------------------------------------------


def test_long_summaries_are_split_within_telegram_limits() -> None:
    renderer = _renderer(_texts(50))
    answers = {f"q{i}": [{"text": f"{i:02d}" + "ə" * 2998}] for i in range(50)}
    for lang in LANGUAGES:
        pages = renderer.summary(answers, lang)
        assert len(pages) > 1
        assert all(0 < len(page) <= MESSAGE_LIMIT <= TELEGRAM_LIMIT for page in pages)
        joined = "\n\n".join(pages)
        for i in range(50):
            assert f"Question number {i}\n" in joined
            assert f"{i:02d}" + "ə" * (SUMMARY_ANSWER - 3) + "…" in joined
        assert pages[0].startswith(STRINGS(lang, "review_title"))
        assert pages[-1].endswith(STRINGS(lang, "review_footer"))


def test_a_single_huge_block_is_cut_to_the_limit() -> None:
    questionnaire = _texts(3, "{i} " + "long question " * 500)
    renderer = _renderer(questionnaire)
    pages = renderer.summary({"q0": [{"text": "a"}], "q1": None, "q2": [{"text": "c"}]}, "en")
    assert all(len(page) <= MESSAGE_LIMIT for page in pages)
    assert sum(page.count("long question") for page in pages) > 500


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lengths=st.lists(st.one_of(st.none(), st.integers(1, 5000)), min_size=1, max_size=40),
    parts=st.integers(1, 3),
)
def test_any_summary_fits_and_shows_every_answered_question(
    lengths: list[int | None], parts: int
) -> None:
    renderer = _renderer(_texts(len(lengths)))
    answers: dict[str, Any] = {
        f"q{i}": None if n is None else [{"text": "x" * n}] * parts for i, n in enumerate(lengths)
    }
    pages = renderer.summary(answers, "ru")
    assert all(0 < len(page) <= TELEGRAM_LIMIT for page in pages)
    joined = "\n".join(pages)
    for i, n in enumerate(lengths):
        assert f"• Question number {i}\n→ " in joined
        if n is None:
            assert f"Question number {i}\n→ {STRINGS('ru', 'review_skipped')}" in joined


def test_summary_shows_only_visible_answered_questions_and_no_notice() -> None:
    renderer = _renderer(DEFAULT)
    answers: dict[str, Any] = {
        "notice": ACK,
        "urgent": "no",
        "role": "victim",
        "victim_name": [{"text": "hidden: the reporter is the victim"}],
        "violations": ["torture", "arbitrary_arrest"],
        "started": {"precision": "month", "value": "2023-03"},
        "ongoing": YES,
        "place_city": None,
        "evidence_files": [{"file": {}}, {"forward": {}}],
        "torture_methods": ["electric_shocks", "beating"],
    }
    text = "\n".join(renderer.summary(answers, "en"))
    notice = DEFAULT.question("notice")
    assert notice is not None
    assert notice.text["en"][:40] not in text
    assert "hidden: the reporter is the victim" not in text
    ongoing = DEFAULT.question("ongoing")
    assert ongoing is not None
    assert f"• {ongoing.text['en']}\n→ Yes\n" in text
    assert "2023-03" in text
    assert STRINGS("en", "review_files", count=2) in text
    assert STRINGS("en", "review_skipped") in text
    methods = DEFAULT.question("torture_methods")
    assert methods is not None
    labels = [o.label["en"] for o in methods.options if o.id in ("beating", "electric_shocks")]
    assert ", ".join(labels) in text  # in the questionnaire's order
    for qid in ["urgent", "role", "violations", "started", "ongoing", "place_city"]:
        question = DEFAULT.question(qid)
        assert question is not None
        assert f"• {question.text['en']}\n→ " in text


@pytest.mark.parametrize(
    "payload", ["<b>x</b>", "*bold* _it_ `code`", "[link](http://evil)", "&lt;"]
)
def test_reporter_text_is_shown_literally(payload: str) -> None:
    renderer = _renderer(_texts(1))
    for lang in LANGUAGES:
        text = "\n".join(renderer.summary({"q0": [{"text": payload}]}, lang))
        assert payload in text


def test_no_parse_mode_anywhere(tmp_path: Path) -> None:
    """Messages go out as plain text: no parse mode by default, none in any call."""
    settings_ = load_settings(
        {"INTAKE_DATA_DIR": str(tmp_path), "INTAKE_TELEGRAM_TOKEN": "123456:" + "A" * 35}
    )

    class _Conversation:
        async def handle(self, update: object, context: object) -> None:
            """Not called."""

    application = build_application(settings_, _Conversation())  # type: ignore[arg-type]
    defaults = application.bot.defaults
    assert defaults is not None
    assert defaults.parse_mode is None
    assert defaults.protect_content is True
    package = Path(intake_bot.telegram.__file__).parent
    for path in package.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"parse_mode|ParseMode|MARKDOWN|MarkdownV2", source), path.name


def test_answer_texts() -> None:
    renderer = _renderer(DEFAULT)

    def q(qid: str) -> Any:
        return DEFAULT.question(qid)

    assert renderer.answer_text(q("role"), None, "az") == STRINGS("az", "review_skipped")
    assert renderer.answer_text(q("notice"), ACK, "en") == "✓"
    assert renderer.answer_text(q("ongoing"), YES, "ru") == STRINGS("ru", "button_yes")
    assert renderer.answer_text(q("ongoing"), NO, "ru") == STRINGS("ru", "button_no")
    assert renderer.answer_text(q("role"), "witness", "en") == "Witness"
    unknown = {"precision": UNKNOWN_DATE}
    assert renderer.answer_text(q("started"), unknown, "az") == STRINGS("az", "review_unknown_date")
    day = {"precision": "day", "value": "2023-03-20"}
    assert renderer.answer_text(q("started"), day, "en") == "2023-03-20"
    voice = [{"text": "one"}, {"voice": {"id": "v"}}, {"text": "two"}]
    assert renderer.answer_text(q("event_account"), voice, "en") == "one\n[voice note]\ntwo"
    long = renderer.answer_text(q("event_account"), [{"text": "y" * 5000}], "en")
    assert len(long) == SUMMARY_ANSWER
    assert long.endswith("…")


# --- question messages ---------------------------------------------------------------------


def test_section_titles_are_shown_as_written() -> None:
    """No case change: Azerbaijani i/İ and ı/I pair differently from English."""
    title = {"az": "Sizin haqqınızda", "ru": "О вас", "en": "About you"}  # noqa: RUF001 (Russian)
    renderer = _renderer(_questionnaire([{"id": "q", "type": "text", "text": _tr("isim?")}], title))
    question = renderer.engine.questionnaire.questions[0]
    for lang in LANGUAGES:
        text, _ = renderer.question(question, lang)
        assert text.split("\n")[0] == title[lang]
        assert "SİZİN" not in text
        assert "SIZIN" not in text
        assert "isim?" in text
    default = _renderer(DEFAULT)
    for question in DEFAULT.questions:
        section = DEFAULT.section(question.section)
        for lang in LANGUAGES:
            text, _ = default.question(question, lang)
            assert text.startswith(section.title[lang] + "\n\n" + question.text[lang][:50])
            assert len(text) <= MESSAGE_LIMIT
    role = DEFAULT.question("role")
    assert role is not None
    assert role.section == "about_you"
    about = default.question(role, "az")[0]
    assert about.startswith("Sizin haqqınızda\n")


def test_hints_follow_the_question_type() -> None:
    renderer = _renderer(DEFAULT)
    hints = {
        QuestionType.SINGLE: "hint_single",
        QuestionType.YESNO: "hint_single",
        QuestionType.MULTI: "hint_multi",
        QuestionType.DATE: "hint_date",
        QuestionType.TEXT: "hint_text",
        QuestionType.FILES: "hint_files",
    }
    for question in DEFAULT.questions:
        text, _ = renderer.question(question, "en")
        if question.type is QuestionType.NOTICE:
            assert not any(STRINGS("en", h) in text for h in hints.values())
        else:
            assert text.endswith("\n\n" + STRINGS("en", hints[question.type]))


def _kinds_questionnaire() -> Questionnaire:
    options = [{"id": f"o{i}", "label": _tr(f"Option {i}")} for i in range(4)]
    return _questionnaire(
        [
            {"id": "n", "type": "notice", "required": True, "text": _tr("Read")},
            {"id": "s", "type": "single", "options": options, "text": _tr("One")},
            {"id": "sr", "type": "single", "required": True, "options": options, "text": _tr("1")},
            {"id": "m", "type": "multi", "options": options, "text": _tr("Many")},
            {"id": "y", "type": "yesno", "text": _tr("Yes?")},
            {"id": "d", "type": "date", "text": _tr("When")},
            {"id": "dr", "type": "date", "required": True, "text": _tr("When!")},
            {"id": "t", "type": "text", "text": _tr("Tell")},
            {"id": "f", "type": "files", "text": _tr("Files")},
        ]
    )


def test_keyboards_by_question_type() -> None:
    questionnaire = _kinds_questionnaire()
    renderer = _renderer(questionnaire)
    by_id = {q.id: q for q in questionnaire.questions}
    skip = (STRINGS("en", "button_skip"), "S:{i}")

    def keys(qid: str, pending: tuple[Any, ...] = ()) -> list[tuple[str, str]]:
        return _buttons(renderer.keyboard(by_id[qid], "en", pending))

    assert keys("n") == [(STRINGS("en", "button_ack"), "A:0:0")]
    assert renderer.option_id(by_id["n"], 0) == ACK
    options = [(f"Option {i}", f"A:1:{i}") for i in range(4)]
    assert keys("s") == [*options, (skip[0], "S:1")]
    assert keys("sr") == [(label, data.replace("A:1:", "A:2:")) for label, data in options]
    assert keys("m", ("o1", "o3")) == [
        ("Option 0", "T:3:0"),
        ("✓ Option 1", "T:3:1"),
        ("Option 2", "T:3:2"),
        ("✓ Option 3", "T:3:3"),
        (STRINGS("en", "button_done"), "D:3"),
    ]
    # nothing chosen yet: Skip is offered; once something is chosen, Done keeps it
    assert keys("m") == [
        *[(f"Option {i}", f"T:3:{i}") for i in range(4)],
        (STRINGS("en", "button_done"), "D:3"),
        (skip[0], "S:3"),
    ]
    assert keys("y") == [
        (STRINGS("en", "button_yes"), "A:4:0"),
        (STRINGS("en", "button_no"), "A:4:1"),
        (skip[0], "S:4"),
    ]
    assert [renderer.option_id(by_id["y"], i) for i in range(3)] == [YES, NO, None]
    assert keys("d") == [(STRINGS("en", "button_dont_know"), "U:5"), (skip[0], "S:5")]
    assert keys("dr") == [(STRINGS("en", "button_dont_know"), "U:6")]
    assert keys("t") == [(STRINGS("en", "button_done"), "D:7"), (skip[0], "S:7")]
    assert keys("f") == [(STRINGS("en", "button_done"), "D:8"), (skip[0], "S:8")]
    assert keys("t", ({"text": "sent"},)) == [(STRINGS("en", "button_done"), "D:7")]
    assert keys("f", ({"file": {}},)) == [(STRINGS("en", "button_done"), "D:8")]
    assert [renderer.option_id(by_id["s"], i) for i in (0, 3, 4)] == ["o0", "o3", None]


def test_long_labels_are_cut_for_buttons() -> None:
    options = [{"id": "a", "label": _tr("x" * 100)}, {"id": "b", "label": _tr("b")}]
    renderer = _renderer(
        _questionnaire([{"id": "q", "type": "multi", "options": options, "text": _tr("Q")}])
    )
    question = renderer.engine.questionnaire.questions[0]
    labels = [text for text, _ in _buttons(renderer.keyboard(question, "en", ("a",)))]
    assert labels[0] == "✓ " + "x" * (BUTTON_LABEL - 3) + "…"
    assert all(len(label) <= BUTTON_LABEL for label in labels)


def test_change_keyboard_has_at_most_100_buttons() -> None:
    renderer = _renderer(_texts(150))
    answers = {f"q{i}": None for i in range(150)}
    buttons = _buttons(renderer.change_keyboard(answers, "en"))
    assert len(buttons) <= 100
    assert buttons[-1] == (STRINGS("en", "button_back_to_review"), "B")
    assert buttons[0] == ("Question number 0", "E:0")
    small = _buttons(_renderer(DEFAULT).change_keyboard({"notice": ACK, "urgent": "no"}, "en"))
    assert all(data != "E:0" for _, data in small)  # the notice cannot be "changed"


def test_every_callback_of_the_default_questionnaire_fits_and_parses() -> None:
    renderer = _renderer(DEFAULT)
    markups = [language_keyboard()]
    for lang in LANGUAGES:
        markups.append(renderer.review_keyboard(lang))
        everything: dict[str, Any] = {q.id: None for q in DEFAULT.questions}
        everything["violations"] = ["torture", "arbitrary_arrest", "threats_abroad"]
        markups.append(renderer.change_keyboard(everything, lang))
        for question in DEFAULT.questions:
            pending = tuple(o.id for o in question.options)
            markups.append(renderer.keyboard(question, lang, pending))
    seen = 0
    for markup in markups:
        for text, data in _buttons(markup):
            seen += 1
            assert len(data.encode("utf-8")) <= 64
            assert len(text) <= BUTTON_LABEL
            callback = parse_callback(data)
            assert isinstance(callback, Callback), data
            if callback.question is not None:
                question = DEFAULT.questions[callback.question]
                if callback.option is not None:
                    assert renderer.option_id(question, callback.option) is not None
    assert seen > 500
    languages = [parse_callback(data) for _, data in _buttons(language_keyboard())]
    assert [c.value for c in languages if c is not None] == list(LANGUAGES)

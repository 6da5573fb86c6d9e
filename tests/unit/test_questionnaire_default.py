"""The default questionnaire: it loads, is complete in az/ru/en, and follows QUESTIONNAIRE.md."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

import pytest

from intake_bot.questionnaire.engine import ACK, REVIEW, Engine, State
from intake_bot.questionnaire.loader import load_default
from intake_bot.questionnaire.model import Question, Questionnaire, QuestionType, Translated

LANGS = ("az", "ru", "en")
AZ_LETTERS = set("əğıöüşçƏĞİÖÜŞÇ")
MODULES = {
    "arrest": {"arbitrary_arrest", "disappearance"},
    "torture": {"torture"},
    "fabricated_charges": {"fabricated_charges"},
    "surveillance_blackmail": {"surveillance", "blackmail"},
    "death_in_custody": {"death_in_custody"},
    "abroad": {"threats_abroad"},
}
VIOLATIONS = [
    "arbitrary_arrest",
    "torture",
    "fabricated_charges",
    "disappearance",
    "death_in_custody",
    "surveillance",
    "blackmail",
    "threats_abroad",
    "family_pressure",
    "travel_ban",
    "other",
]


@pytest.fixture(scope="module")
def questionnaire() -> Questionnaire:
    return load_default()


def _texts(questionnaire: Questionnaire) -> Iterator[tuple[str, Translated]]:
    for section in questionnaire.sections:
        yield f"section {section.id} title", section.title
    for question in questionnaire.questions:
        yield f"{question.id} text", question.text
        if question.help is not None:
            yield f"{question.id} help", question.help
        for option in question.options:
            yield f"{question.id}.{option.id} label", option.label


def _q(questionnaire: Questionnaire, qid: str) -> Question:
    question = questionnaire.question(qid)
    assert question is not None, f"question {qid} is missing"
    return question


def _options(questionnaire: Questionnaire, qid: str) -> list[str]:
    return [o.id for o in _q(questionnaire, qid).options]


def test_loads_with_its_identity(questionnaire: Questionnaire) -> None:
    assert questionnaire.id == "intake-default"
    assert questionnaire.version >= 1
    assert questionnaire.languages == LANGS
    assert len(questionnaire.questions) > 50


def test_every_text_in_every_language_is_nfc(questionnaire: Questionnaire) -> None:
    for where, text in _texts(questionnaire):
        assert set(text) == set(LANGS), where
        for lang in LANGS:
            assert text[lang].strip(), f"{where} [{lang}] is empty"
            assert unicodedata.is_normalized("NFC", text[lang]), where


def test_translations_are_not_copies(questionnaire: Questionnaire) -> None:
    copies = [
        where
        for where, text in _texts(questionnaire)
        if text["az"] == text["en"] and len(text["en"]) > 12
    ]
    assert not copies
    cyrillic = re.compile("[\u0400-\u04ff]")
    assert all(cyrillic.search(t["ru"]) for _, t in _texts(questionnaire) if len(t["en"]) > 12)


def test_azerbaijani_texts_use_azerbaijani_letters(questionnaire: Questionnaire) -> None:
    az = [text["az"] for _, text in _texts(questionnaire)]
    assert AZ_LETTERS & set("".join(az))
    # not one stray string: most longer Azerbaijani texts have one of these letters
    long = [t for t in az if len(t) > 25]
    with_letters = [t for t in long if AZ_LETTERS & set(t)]
    assert len(with_letters) > 0.8 * len(long)
    assert "Sizin haqqınızda" in [s.title["az"] for s in questionnaire.sections]


def test_option_labels_fit_a_button(questionnaire: Questionnaire) -> None:
    too_long = [
        (where, lang, text[lang])
        for where, text in _texts(questionnaire)
        if where.endswith("label")
        for lang in LANGS
        if len(text[lang]) > 40
    ]
    assert not too_long


MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>|\*\*|\*[^\s*][^*\n]*\*|__|`|\[[^\]]*\]\([^)]*\)")


@pytest.mark.parametrize(
    "sample", ["<b>x</b>", "**bold**", "*photo*", "__u__", "`code`", "[a](http://x)", "</i>"]
)
def test_markup_pattern_recognises_markup(sample: str) -> None:
    assert MARKUP.search(sample)


def test_no_text_contains_markup(questionnaire: Questionnaire) -> None:
    found = [
        (where, lang, m.group())
        for where, text in _texts(questionnaire)
        for lang in LANGS
        if (m := MARKUP.search(text[lang]))
    ]
    assert not found


def test_only_the_notice_and_urgency_are_required(questionnaire: Questionnaire) -> None:
    assert [q.id for q in questionnaire.questions if q.required] == ["notice", "urgent"]


def test_safety_first_notice_then_urgency(questionnaire: Questionnaire) -> None:
    first = questionnaire.sections[0]
    notice, urgent = first.questions[0], first.questions[1]
    assert questionnaire.questions[0] is notice
    assert (notice.type, notice.required, notice.when) == (QuestionType.NOTICE, True, None)
    assert first.when is None
    text = notice.text["en"].lower()
    for topic in ["not end-to-end encrypted", "/cancel", "password", "delete", "location", "bot"]:
        assert topic in text, topic
    for lang in LANGS:
        assert "/cancel" in notice.text[lang]
    assert (urgent.type, urgent.required, urgent.when) == (QuestionType.SINGLE, True, None)
    assert [o.id for o in urgent.options] == ["me", "someone_else", "no"]
    assert urgent.urgent_if == {"me", "someone_else"}
    flagged = [q.id for q in questionnaire.questions if q.urgent_if]
    assert flagged == ["urgent"]


def test_sections_of_the_design_are_present(questionnaire: Questionnaire) -> None:
    assert [s.id for s in questionnaire.sections] == [
        "safety",
        "about_you",
        "event",
        "person_affected",
        "perpetrators",
        *MODULES,
        "remedies",
        "evidence",
        "consent",
    ]
    q = questionnaire
    assert _options(q, "role") == [
        "victim",
        "relative",
        "witness",
        "lawyer",
        "journalist_ngo",
        "other",
    ]
    assert _options(q, "identity") == ["anonymous", "org_only", "public"]
    assert {"this_bot", "signal", "email", "trusted_person", "none"} <= set(
        _options(q, "contact_method")
    )
    assert _q(q, "violations").type is QuestionType.MULTI
    assert _options(q, "violations") == VIOLATIONS
    assert _q(q, "started").type is QuestionType.DATE
    assert _q(q, "ongoing").type is QuestionType.YESNO
    assert _q(q, "event_account").type is QuestionType.TEXT
    assert {"police_station", "state_security", "prison", "court", "abroad"} <= set(
        _options(q, "place_type")
    )
    assert _q(q, "perpetrator_types").type is QuestionType.MULTI
    assert {"police", "state_security", "prison_staff", "court", "plainclothes", "foreign"} <= set(
        _options(q, "perpetrator_types")
    )
    assert {"detained", "released", "in_hiding", "abroad", "deceased", "unknown"} == set(
        _options(q, "victim_status")
    )
    assert _q(q, "torture_methods").type is QuestionType.MULTI
    assert {"beating", "electric_shocks", "suspension", "sexual_violence"} <= set(
        _options(q, "torture_methods")
    )
    assert {"confession", "information", "testimony", "punishment"} <= set(
        _options(q, "torture_purpose")
    )
    assert set(_options(q, "lawyer")) >= {"own_choice", "state_only", "denied"}
    assert set(_options(q, "abroad_tactics")) >= {"assault", "threats", "interpol", "hacking"}
    assert _q(q, "final_decision_date").type is QuestionType.DATE  # ECHR's time limit
    assert _q(q, "evidence_files").type is QuestionType.FILES
    consent = [qq.id for qq in q.section("consent").questions]
    assert consent == [
        "consent_documentation",
        "consent_publication",
        "consent_un",
        "consent_echr",
        "consent_media",
        "victim_agrees",
        "consent_followup",
    ]
    assert _options(q, "consent_publication") == ["named", "anonymised", "no"]


@pytest.mark.parametrize("violation", [*VIOLATIONS, None])
def test_each_module_is_shown_only_for_its_violations(
    questionnaire: Questionnaire, violation: str | None
) -> None:
    engine = Engine(questionnaire)
    answers = {"notice": ACK, "urgent": "no", "violations": [violation] if violation else None}
    shown = {q.section for q in engine.visible(answers)}
    for module, triggers in MODULES.items():
        assert (module in shown) == (violation in triggers), module


def _walk(engine: Engine, *, role: str | None, violations: list[str]) -> list[str]:
    """Answer the minimum (skip, don't know) up to the review; the questions asked."""
    state = engine.start()
    asked: list[str] = []
    while state.position != REVIEW:
        question = engine.current(state)
        assert question is not None
        asked.append(question.id)
        assert len(asked) <= len(engine.questionnaire.questions)
        if question.type is QuestionType.NOTICE:
            state = engine.choose(state, ACK)
        elif question.id == "urgent":
            state = engine.choose(state, "no")
        elif question.id == "role" and role is not None:
            state = engine.choose(state, role)
        elif question.id == "violations":
            for violation in violations:
                state = engine.toggle(state, violation)
            state = engine.done(state)
        elif question.type is QuestionType.DATE:
            state = engine.unknown_date(state)
        else:
            state = engine.skip(state)
    return asked


def test_torture_and_arrest_show_exactly_those_modules(questionnaire: Questionnaire) -> None:
    engine = Engine(questionnaire)
    asked = _walk(engine, role="witness", violations=["torture", "arbitrary_arrest"])
    sections = {_q(questionnaire, qid).section for qid in asked}
    assert {"arrest", "torture"} <= sections
    assert not sections & (set(MODULES) - {"arrest", "torture"})
    assert "whereabouts_confirmed" not in asked  # only for disappearance
    assert "charges_no_arrest" not in asked  # arrest already asks about charges
    for module in ("arrest", "torture"):
        expected = [q.id for q in questionnaire.section(module).questions if q.when is None]
        assert [qid for qid in asked if qid in expected] == expected


def test_no_module_without_violations(questionnaire: Questionnaire) -> None:
    asked = _walk(Engine(questionnaire), role=None, violations=[])
    sections = {_q(questionnaire, qid).section for qid in asked}
    assert not sections & set(MODULES)
    assert {"safety", "about_you", "event", "perpetrators", "remedies", "evidence"} <= sections


@pytest.mark.parametrize(
    ("role", "shown"), [("victim", False), ("witness", True), ("relative", True), (None, True)]
)
def test_person_affected_is_hidden_when_the_reporter_is_the_victim(
    questionnaire: Questionnaire, role: str | None, shown: bool
) -> None:
    asked = _walk(Engine(questionnaire), role=role, violations=[])
    affected = {q.id for q in questionnaire.section("person_affected").questions}
    assert bool(affected & set(asked)) is shown
    assert ("victim_agrees" in asked) is shown
    assert ("self_profile" in asked) is (role == "victim")


def test_a_reporter_who_wants_to_be_known_is_asked_how_to_reach_them(
    questionnaire: Questionnaire,
) -> None:
    engine = Engine(questionnaire)
    answers = {"notice": ACK, "urgent": "no", "identity": "org_only", "contact_method": "signal"}
    visible = {q.id for q in engine.visible(answers)}
    assert {"reporter_name", "contact_method", "contact_handle"} <= visible
    anonymous = {q.id for q in engine.visible({**answers, "identity": "anonymous"})}
    assert not {"reporter_name", "contact_method", "contact_handle"} & anonymous


def test_urgent_details_only_when_urgent(questionnaire: Questionnaire) -> None:
    engine = Engine(questionnaire)
    state = engine.choose(engine.choose(engine.start(), ACK), "someone_else")
    assert state.position == "urgent_details"
    assert engine.is_urgent(state.answers)
    state = engine.choose(engine.choose(engine.start(), ACK), "no")
    assert state.position != "urgent_details"
    assert not engine.is_urgent(state.answers)
    assert State.from_json(state.to_json()) == state

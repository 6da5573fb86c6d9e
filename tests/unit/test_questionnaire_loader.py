"""The loader refuses every malformed questionnaire with a message naming the problem."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake_bot.questionnaire.loader import QuestionnaireError, load_file, parse
from intake_bot.questionnaire.model import Condition, QuestionType


def _tr(en: str) -> dict[str, str]:
    return {"en": en, "ru": f"{en} ru"}


def _base() -> dict[str, Any]:
    return {
        "id": "test-questionnaire",
        "version": 3,
        "languages": ["en", "ru"],
        "sections": [
            {
                "id": "s1",
                "title": _tr("First"),
                "questions": [
                    {
                        "id": "q1",
                        "type": "single",
                        "text": _tr("Pick one"),
                        "options": [
                            {"id": "a", "label": _tr("A")},
                            {"id": "b", "label": _tr("B")},
                        ],
                        "urgent_if": ["a"],
                    },
                    {"id": "q2", "type": "yesno", "text": _tr("Yes?"), "required": True},
                    {
                        "id": "q3",
                        "type": "text",
                        "text": _tr("Tell"),
                        "help": _tr("Help"),
                        "max_length": 500,
                        "when": {"question": "q1", "is": "a"},
                    },
                ],
            },
            {
                "id": "s2",
                "title": _tr("Second"),
                "when": {
                    "any": [{"question": "q2", "is": "yes"}, {"question": "q3", "answered": True}]
                },
                "questions": [
                    {"id": "q4", "type": "date", "text": _tr("When")},
                    {"id": "q5", "type": "files", "text": _tr("Files")},
                    {
                        "id": "q6",
                        "type": "multi",
                        "text": _tr("Several"),
                        "options": [
                            {"id": "x", "label": _tr("X")},
                            {"id": "y", "label": _tr("Y")},
                        ],
                        "when": {"question": "q1", "is_not": ["b"]},
                    },
                    {
                        "id": "q7",
                        "type": "notice",
                        "text": _tr("Note"),
                        "when": {
                            "all": [
                                {"question": "q6", "includes": "x"},
                                {"question": "q6", "excludes": "y"},
                            ]
                        },
                    },
                ],
            },
        ],
    }


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def test_the_base_document_loads_with_everything_in_it() -> None:
    questionnaire = parse(_dump(_base()))
    assert questionnaire.id == "test-questionnaire"
    assert questionnaire.version == 3
    assert questionnaire.languages == ("en", "ru")
    assert [q.id for q in questionnaire.questions] == ["q1", "q2", "q3", "q4", "q5", "q6", "q7"]
    q1 = questionnaire.question("q1")
    q3 = questionnaire.question("q3")
    assert q1 is not None
    assert q3 is not None
    assert q1.type is QuestionType.SINGLE
    assert q1.urgent_if == {"a"}
    assert q3.when == Condition("is", question="q1", values=frozenset({"a"}))
    assert q3.max_length == 500
    assert q3.help == {"en": "Help", "ru": "Help ru"}
    assert q1.max_length == 20_000
    assert not q1.required
    assert questionnaire.section("s2").when is not None


def test_text_is_stripped_and_nfc(tmp_path: Path) -> None:
    doc = _base()
    doc["sections"][0]["title"] = {"en": "  Cafe\u0301  ", "ru": "e\u0308"}
    path = tmp_path / "q.yaml"
    path.write_text(_dump(doc), encoding="utf-8")
    questionnaire = load_file(path)
    assert questionnaire.sections[0].title == {"en": "Café", "ru": "ë"}


def test_unreadable_file_is_a_questionnaire_error(tmp_path: Path) -> None:
    with pytest.raises(QuestionnaireError, match="cannot read"):
        load_file(tmp_path / "missing.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"id: caf\xe9\n")
    with pytest.raises(QuestionnaireError, match="cannot read"):
        load_file(bad)


def test_invalid_yaml_names_the_line() -> None:
    text = "id: x\nversion: 1\nlanguages: [en\nsections: []\n"
    with pytest.raises(QuestionnaireError) as info:
        parse(text, source="mine.yaml")
    message = str(info.value)
    assert message.startswith("mine.yaml: not valid YAML at line ")
    line = int(re.findall(r"line (\d+)", message)[0])
    assert line in (3, 4)
    with pytest.raises(QuestionnaireError, match="not valid YAML at line 2"):
        parse("id: x\n  - : : [\n")


Mutation = Callable[[dict[str, Any]], None]


def _q(doc: dict[str, Any], section: int, index: int) -> dict[str, Any]:
    question: dict[str, Any] = doc["sections"][section]["questions"][index]
    return question


def _set(path: tuple[Any, ...], value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path: tuple[Any, ...]) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def _append_question(section: int, question: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        doc["sections"][section]["questions"].append(question)

    return mutate


Q1 = ("sections", 0, "questions", 0)
Q2 = ("sections", 0, "questions", 1)
Q3 = ("sections", 0, "questions", 2)

CASES: list[tuple[str, Mutation, str]] = [
    ("unknown top-level key", _set(("colour",), "red"), "top level: unknown key 'colour'"),
    ("missing top-level key", _delete(("version",)), "top level: missing key 'version'"),
    ("missing sections", _delete(("sections",)), "top level: missing key 'sections'"),
    (
        "unknown question key",
        _set((*Q1, "hint"), "x"),
        r"section 's1' questions\[0\]: unknown key 'hint'",
    ),
    (
        "missing question text",
        _delete((*Q2, "text")),
        r"section 's1' questions\[1\]: missing key 'text'",
    ),
    (
        "missing section title",
        _delete(("sections", 1, "title")),
        r"sections\[1\]: missing key 'title'",
    ),
    ("bad question id", _set((*Q1, "id"), "Bad-Id"), r"questions\[0\]\.id: ids are lower-case"),
    ("id starts with a digit", _set((*Q1, "id"), "1q"), r"\.id: ids are lower-case"),
    ("id too long", _set((*Q1, "id"), "q" * 65), r"\.id: ids are lower-case"),
    ("id not text", _set((*Q1, "id"), 7), r"\.id: ids are lower-case"),
    ("bad section id", _set(("sections", 0, "id"), "S 1"), r"sections\[0\]\.id: ids are"),
    ("bad option id", _set((*Q1, "options", 1, "id"), "B"), r"options\[1\]\.id: ids are"),
    ("bad top-level id", _set(("id",), "Test!"), "id: ids are lower-case"),
    (
        "duplicate question id",
        _set((*Q3, "id"), "q1"),
        "question 'q1': duplicate question id",
    ),
    (
        "duplicate question id across sections",
        _set(("sections", 1, "questions", 0, "id"), "q2"),
        "question 'q2': duplicate question id",
    ),
    ("duplicate section id", _set(("sections", 1, "id"), "s1"), "duplicate section id 's1'"),
    (
        "duplicate option id",
        _set((*Q1, "options", 1, "id"), "a"),
        "question 'q1': duplicate option id 'a'",
    ),
    ("single without options", _delete((*Q1, "options")), "a single question needs options"),
    (
        "multi with one option",
        _set(("sections", 1, "questions", 2, "options"), [{"id": "x", "label": _tr("X")}]),
        "options must be a list of at least two",
    ),
    (
        "yesno with options",
        _set((*Q2, "options"), [{"id": "a", "label": _tr("A")}, {"id": "b", "label": _tr("B")}]),
        "question 'q2': a yesno question takes no options",
    ),
    ("unknown type", _set((*Q2, "type"), "rating"), "question 'q2': type must be one of notice"),
    (
        "missing translation",
        _set((*Q2, "text"), {"en": "Yes?"}),
        "question 'q2' text: missing translation 'ru'",
    ),
    (
        "empty translation",
        _set((*Q2, "text"), {"en": "Yes?", "ru": "  "}),
        "question 'q2' text: missing translation 'ru'",
    ),
    (
        "missing option translation",
        _set((*Q1, "options", 0, "label"), {"ru": "A"}),
        "question 'q1' option 'a': missing translation 'en'",
    ),
    (
        "missing help translation",
        _set((*Q3, "help"), {"en": "Help"}),
        "question 'q3' help: missing translation 'ru'",
    ),
    (
        "undeclared language",
        _set((*Q2, "text"), {"en": "Yes?", "ru": "Да?", "de": "Ja?"}),
        "question 'q2' text: language 'de' is not declared",
    ),
    (
        "bad language list",
        _set(("languages",), ["en", "en"]),
        "languages: must be a list of distinct language codes",
    ),
    (
        "condition on an unknown question",
        _set((*Q3, "when"), {"question": "ghost", "is": "a"}),
        "question 'q3' when: refers to 'ghost', which is unknown or comes later",
    ),
    (
        "condition on a later question",
        _set((*Q1, "when"), {"question": "q2", "is": "yes"}),
        "question 'q1' when: refers to 'q2', which is unknown or comes later",
    ),
    (
        "section condition on its own question",
        _set(("sections", 1, "when"), {"question": "q4", "answered": True}),
        "section 's2' when: refers to 'q4', which is unknown or comes later",
    ),
    (
        "condition on itself",
        _set((*Q3, "when"), {"question": "q3", "answered": True}),
        r"question 'q3' when: a question's condition cannot depend on itself \(a cycle\)",
    ),
    (
        "nested condition on itself",
        _set(
            (*Q3, "when"),
            {"any": [{"question": "q1", "is": "a"}, {"question": "q3", "answered": True}]},
        ),
        "question 'q3' when: a question's condition cannot depend on itself",
    ),
    (
        "condition value not an option",
        _set((*Q3, "when"), {"question": "q1", "is": ["a", "zzz"]}),
        "question 'q3' when: 'zzz' is not an option of 'q1'",
    ),
    (
        "condition value on yes/no",
        _set((*Q3, "when"), {"question": "q2", "is": "maybe"}),
        "'maybe' is not an option of 'q2'",
    ),
    (
        "value condition on a question without options",
        _set(("sections", 1, "questions", 1, "when"), {"question": "q4", "is": "x"}),
        "question 'q4' has no options to compare with",
    ),
    (
        "two operators",
        _set((*Q3, "when"), {"question": "q1", "is": "a", "is_not": "b"}),
        "give exactly one of is, is_not",
    ),
    (
        "answered not true",
        _set((*Q3, "when"), {"question": "q1", "answered": False}),
        "answered must be true",
    ),
    ("empty any", _set((*Q3, "when"), {"any": []}), "any must be a non-empty list"),
    (
        "urgent_if naming an unknown option",
        _set((*Q1, "urgent_if"), ["zzz"]),
        "question 'q1': urgent_if names unknown option 'zzz'",
    ),
    (
        "urgent_if not a list",
        _set((*Q2, "urgent_if"), "yes"),
        "question 'q2': urgent_if must be a list of option ids",
    ),
    ("max_length zero", _set((*Q3, "max_length"), 0), "question 'q3': max_length must be"),
    ("max_length too big", _set((*Q3, "max_length"), 100_001), "max_length must be a whole"),
    ("max_length text", _set((*Q3, "max_length"), "500"), "max_length must be a whole number"),
    ("max_length bool", _set((*Q3, "max_length"), True), "max_length must be a whole number"),
    ("max_length float", _set((*Q3, "max_length"), 1.5), "max_length must be a whole number"),
    ("required text", _set((*Q2, "required"), "yes"), "question 'q2': required must be true or"),
    ("required number", _set((*Q2, "required"), 1), "required must be true or false"),
    ("version zero", _set(("version",), 0), "version: must be a whole number"),
    ("version bool", _set(("version",), True), "version: must be a whole number"),
    ("no sections", _set(("sections",), []), "sections: must be a non-empty list"),
    ("no questions", _set(("sections", 1, "questions"), []), "questions must be a non-empty"),
    ("question not a mapping", _append_question(1, ["q9"]), r"questions\[4\]: must be a mapping"),
]


@pytest.mark.parametrize(("mutate", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_load_errors_name_the_problem(mutate: Mutation, message: str) -> None:
    doc = copy.deepcopy(_base())
    mutate(doc)
    with pytest.raises(QuestionnaireError) as info:
        parse(_dump(doc), source="q.yaml")
    text = str(info.value)
    assert text.startswith("q.yaml: ")
    assert re.search(message, text), text


@pytest.mark.parametrize("where", [Q1, ("sections", 0)])
def test_an_id_with_a_trailing_newline_is_refused(where: tuple[Any, ...]) -> None:
    doc = _base()
    _set((*where, "id"), "q1\n" if where == Q1 else "s1\n")(doc)
    with pytest.raises(QuestionnaireError, match="ids are lower-case"):
        parse(_dump(doc))


@pytest.mark.parametrize("value", [{"a": 1}, [["a"]], [{"a": 1}]])
def test_an_unhashable_condition_value_is_a_load_error(value: Any) -> None:
    doc = _base()
    _set((*Q3, "when"), {"question": "q1", "is": value})(doc)
    with pytest.raises(QuestionnaireError, match="is takes an option id or a list of option ids"):
        parse(_dump(doc))


def test_a_self_referencing_condition_alias_is_a_load_error() -> None:
    text = _dump(_base()).replace(
        "    when:\n      question: q1\n      is: a\n", "    when: &c\n      any: [*c]\n"
    )
    assert "&c" in text
    with pytest.raises(QuestionnaireError):
        parse(text)


# --- hypothesis: nothing but QuestionnaireError, whatever the document --------------------

KEYS = [
    "id",
    "version",
    "languages",
    "sections",
    "title",
    "questions",
    "type",
    "text",
    "options",
    "label",
    "required",
    "when",
    "question",
    "is",
    "is_not",
    "includes",
    "excludes",
    "answered",
    "all",
    "any",
    "urgent_if",
    "max_length",
    "help",
    "en",
    "ru",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 200_000),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.sampled_from(["en", "ru", "q1", "a", "yes", "single", "multi", "notice", "date", "x"]),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=5)), inner, max_size=5),
    ),
    max_leaves=30,
)


def _parses_or_names_the_problem(text: str) -> None:
    """parse() returns a questionnaire or raises QuestionnaireError, nothing else."""
    message = None
    try:
        parse(text)
    except QuestionnaireError as exc:
        message = str(exc)
    assert message is None or message.startswith("questionnaire: ")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=DOCUMENTS)
def test_random_documents_raise_only_questionnaire_error(doc: Any) -> None:
    _parses_or_names_the_problem(_dump(doc))


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=80))
def test_random_text_raises_only_questionnaire_error(text: str) -> None:
    _parses_or_names_the_problem(text)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


_BASE_PATHS = _paths(_base())
# Replacements that are mappings only where no condition value lies (those are covered by
# test_an_unhashable_condition_value_is_a_load_error, a known bug).
_SCALAR_OR_FLAT = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))


def _condition_value(path: tuple[Any, ...]) -> bool:
    return "when" in path


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_valid_documents_raise_only_questionnaire_error(data: st.DataObject) -> None:
    doc = _base()
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_BASE_PATHS))
        try:
            parent: Any = doc
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue
        if data.draw(st.integers(0, 5)) == 0 and isinstance(parent, dict):
            del parent[path[-1]]
            continue
        values = _SCALAR_OR_FLAT if _condition_value(path) else DOCUMENTS
        parent[path[-1]] = data.draw(values)
    _parses_or_names_the_problem(_dump(doc))

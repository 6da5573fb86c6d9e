"""Load a questionnaire from YAML and validate all of it, naming the exact problem.

Load errors: unknown keys, missing or empty translations, duplicate ids, conditions or
urgency rules that name unknown questions or options, and conditions that look forward or
at their own question (the flow only ever looks back, so this is also the cycle check).
All text is normalised to Unicode NFC.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .model import (
    NO,
    YES,
    Condition,
    Option,
    Question,
    Questionnaire,
    QuestionType,
    Section,
    Translated,
)

_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")
_COND_VALUE_OPS = ("is", "is_not", "includes", "excludes")
DEFAULT_RESOURCE = "default.yaml"


class QuestionnaireError(Exception):
    """The definition is invalid; the message names where and what."""


def default_text() -> str:
    """The YAML of the questionnaire shipped with intake."""
    source = resources.files("intake_bot.questionnaire").joinpath("data", DEFAULT_RESOURCE)
    return source.read_text(encoding="utf-8")


def load_default() -> Questionnaire:
    """The questionnaire shipped with intake."""
    return parse(default_text(), source="default questionnaire")


def read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionnaireError(f"{path}: cannot read ({type(exc).__name__})") from None


def load_file(path: Path) -> Questionnaire:
    return parse(read_file(path), source=str(path))


def parse(text: str, *, source: str = "questionnaire") -> Questionnaire:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise QuestionnaireError(f"{source}: not valid YAML{where}") from None
    try:
        return _Builder(source).build(data)
    except RecursionError:
        raise QuestionnaireError(f"{source}: a condition refers to itself (YAML alias)") from None


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.languages: tuple[str, ...] = ()
        self.seen: dict[str, Question] = {}

    def fail(self, where: str, problem: str) -> QuestionnaireError:
        return QuestionnaireError(f"{self.source}: {where}: {problem}")

    def mapping(
        self, value: Any, where: str, allowed: set[str], required: set[str]
    ) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, "must be a mapping")
        unknown = set(value) - allowed
        if unknown:
            raise self.fail(where, f"unknown key {sorted(map(str, unknown))[0]!r}")
        missing = required - set(value)
        if missing:
            raise self.fail(where, f"missing key {sorted(missing)[0]!r}")
        return dict(value)

    def ident(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not _ID.fullmatch(value):
            raise self.fail(where, "ids are lower-case letters, digits and _ (at most 64)")
        return value

    def translated(self, value: Any, where: str) -> Translated:
        if not isinstance(value, Mapping):
            raise self.fail(where, "must map each language to its text")
        out: dict[str, str] = {}
        for lang in self.languages:
            text = value.get(lang)
            if not isinstance(text, str) or not text.strip():
                raise self.fail(where, f"missing translation {lang!r}")
            out[lang] = unicodedata.normalize("NFC", text.strip())
        extra = set(value) - set(self.languages)
        if extra:
            raise self.fail(where, f"language {sorted(map(str, extra))[0]!r} is not declared")
        return out

    def build(self, data: Any) -> Questionnaire:
        top = self.mapping(
            data,
            "top level",
            {"id", "version", "languages", "sections"},
            {"id", "version", "languages", "sections"},
        )
        self.ident(top["id"].replace("-", "_") if isinstance(top["id"], str) else top["id"], "id")
        version = top["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise self.fail("version", "must be a whole number of at least 1")
        languages = top["languages"]
        if (
            not isinstance(languages, list)
            or not languages
            or not all(
                isinstance(lang, str) and re.fullmatch(r"[a-z]{2,3}", lang) for lang in languages
            )
            or len(set(languages)) != len(languages)
        ):
            raise self.fail(
                "languages", "must be a list of distinct language codes like az, ru, en"
            )
        self.languages = tuple(languages)
        sections_data = top["sections"]
        if not isinstance(sections_data, list) or not sections_data:
            raise self.fail("sections", "must be a non-empty list")
        section_ids: set[str] = set()
        sections = []
        for index, raw in enumerate(sections_data):
            section = self.section(raw, f"sections[{index}]")
            if section.id in section_ids:
                raise self.fail(f"sections[{index}]", f"duplicate section id {section.id!r}")
            section_ids.add(section.id)
            sections.append(section)
        return Questionnaire(top["id"], version, self.languages, tuple(sections))

    def section(self, raw: Any, where: str) -> Section:
        data = self.mapping(
            raw, where, {"id", "title", "when", "questions"}, {"id", "title", "questions"}
        )
        sid = self.ident(data["id"], f"{where}.id")
        where = f"section {sid!r}"
        when = self.condition(data["when"], f"{where} when", None) if "when" in data else None
        questions_data = data["questions"]
        if not isinstance(questions_data, list) or not questions_data:
            raise self.fail(where, "questions must be a non-empty list")
        questions = tuple(
            self.question(q, f"{where} questions[{i}]", sid) for i, q in enumerate(questions_data)
        )
        return Section(sid, self.translated(data["title"], f"{where} title"), questions, when)

    def question(self, raw: Any, where: str, section: str) -> Question:
        data = self.mapping(
            raw,
            where,
            {
                "id",
                "type",
                "text",
                "help",
                "options",
                "required",
                "when",
                "urgent_if",
                "max_length",
            },
            {"id", "type", "text"},
        )
        qid = self.ident(data["id"], f"{where}.id")
        where = f"question {qid!r}"
        if qid in self.seen:
            raise self.fail(where, "duplicate question id")
        try:
            qtype = QuestionType(data["type"])
        except ValueError:
            allowed = ", ".join(t.value for t in QuestionType)
            raise self.fail(where, f"type must be one of {allowed}") from None
        options = self.options(data.get("options"), where, qtype)
        when = self.condition(data["when"], f"{where} when", qid) if "when" in data else None
        option_ids = {o.id for o in options} | ({YES, NO} if qtype is QuestionType.YESNO else set())
        urgent = data.get("urgent_if", [])
        if not isinstance(urgent, list) or not all(isinstance(u, str) for u in urgent):
            raise self.fail(where, "urgent_if must be a list of option ids")
        for value in urgent:
            if value not in option_ids:
                raise self.fail(where, f"urgent_if names unknown option {value!r}")
        required = data.get("required", False)
        if not isinstance(required, bool):
            raise self.fail(where, "required must be true or false")
        max_length = data.get("max_length", 20_000)
        if (
            not isinstance(max_length, int)
            or isinstance(max_length, bool)
            or not 1 <= max_length <= 100_000
        ):
            raise self.fail(where, "max_length must be a whole number from 1 to 100000")
        question = Question(
            id=qid,
            type=qtype,
            text=self.translated(data["text"], f"{where} text"),
            section=section,
            options=options,
            help=self.translated(data["help"], f"{where} help") if "help" in data else None,
            required=required,
            when=when,
            urgent_if=frozenset(urgent),
            max_length=max_length,
        )
        self.seen[qid] = question
        return question

    def options(self, raw: Any, where: str, qtype: QuestionType) -> tuple[Option, ...]:
        needs = qtype in (QuestionType.SINGLE, QuestionType.MULTI)
        if raw is None:
            if needs:
                raise self.fail(where, f"a {qtype.value} question needs options")
            return ()
        if not needs:
            raise self.fail(where, f"a {qtype.value} question takes no options")
        if not isinstance(raw, list) or len(raw) < 2:
            raise self.fail(where, "options must be a list of at least two")
        out: list[Option] = []
        for index, item in enumerate(raw):
            data = self.mapping(item, f"{where} options[{index}]", {"id", "label"}, {"id", "label"})
            oid = self.ident(data["id"], f"{where} options[{index}].id")
            if any(o.id == oid for o in out):
                raise self.fail(where, f"duplicate option id {oid!r}")
            out.append(Option(oid, self.translated(data["label"], f"{where} option {oid!r}")))
        return tuple(out)

    def condition(self, raw: Any, where: str, own: str | None) -> Condition:
        if not isinstance(raw, Mapping):
            raise self.fail(where, "must be a mapping")
        if "all" in raw or "any" in raw:
            op = "all" if "all" in raw else "any"
            items = self.mapping(raw, where, {op}, {op})[op]
            if not isinstance(items, list) or not items:
                raise self.fail(where, f"{op} must be a non-empty list of conditions")
            return Condition(op, items=tuple(self.condition(i, where, own) for i in items))
        data = self.mapping(raw, where, {"question", *_COND_VALUE_OPS, "answered"}, {"question"})
        ops = [k for k in data if k != "question"]
        if len(ops) != 1:
            raise self.fail(where, "give exactly one of is, is_not, includes, excludes, answered")
        op = ops[0]
        target_id = data["question"]
        if target_id == own:
            raise self.fail(where, "a question's condition cannot depend on itself (a cycle)")
        target = self.seen.get(target_id) if isinstance(target_id, str) else None
        if target is None:
            raise self.fail(
                where,
                f"refers to {target_id!r}, which is unknown or comes later "
                "(conditions may only look back, so cycles are impossible)",
            )
        if op == "answered":
            if data[op] is not True:
                raise self.fail(where, "answered must be true")
            return Condition(op, question=target_id)
        values = data[op] if isinstance(data[op], list) else [data[op]]
        if not all(isinstance(value, str) for value in values):
            raise self.fail(where, f"{op} takes an option id or a list of option ids")
        valid = {o.id for o in target.options} | (
            {YES, NO} if target.type is QuestionType.YESNO else set()
        )
        if not valid:
            raise self.fail(where, f"question {target_id!r} has no options to compare with")
        for value in values:
            if value not in valid:
                raise self.fail(where, f"{value!r} is not an option of {target_id!r}")
        return Condition(op, question=target_id, values=frozenset(values))

"""The bot's own strings: three catalogues with the same keys and placeholders, and every
key the Telegram adapter asks for exists."""

from __future__ import annotations

import ast
import string
from importlib import resources
from pathlib import Path

import pytest
import yaml

import intake_bot.telegram
from intake_bot.telegram.strings import DEFAULT_LANGUAGE, LANGUAGE_NAMES, LANGUAGES, Strings

PACKAGE = Path(intake_bot.telegram.__file__).parent


def _catalogue(lang: str) -> dict[str, str]:
    text = resources.files("intake_bot.telegram").joinpath("data", f"strings.{lang}.yaml")
    data = yaml.safe_load(text.read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


@pytest.fixture(scope="module")
def strings() -> Strings:
    return Strings.load()


def _calls() -> list[tuple[str, str, set[str] | None]]:
    """(file, key, keyword names passed) for each call naming a key as a constant; None
    for the names when ``**params`` are passed on."""
    found: list[tuple[str, str, set[str] | None]] = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or _name(node.func) not in _KEY_ARG:
                continue
            index = _KEY_ARG[_name(node.func) or ""]
            if len(node.args) > index and isinstance(node.args[index], ast.Constant):
                key = node.args[index].value  # type: ignore[attr-defined]
                names = {k.arg for k in node.keywords if k.arg is not None}
                spread = any(k.arg is None for k in node.keywords)
                found.append((path.name, str(key), None if spread else names))
    return found


def test_languages() -> None:
    assert LANGUAGES == ("az", "ru", "en")
    assert DEFAULT_LANGUAGE in LANGUAGES
    assert set(LANGUAGE_NAMES) == set(LANGUAGES)


def test_catalogues_have_identical_keys_and_placeholders() -> None:
    catalogues = {lang: _catalogue(lang) for lang in LANGUAGES}
    reference = catalogues["en"]
    for lang, catalogue in catalogues.items():
        assert list(catalogue) == list(reference), lang  # same keys, same order
        for key, text in catalogue.items():
            assert isinstance(text, str), (lang, key)
            assert text.strip(), (lang, key)
            assert _placeholders(text) == _placeholders(reference[key]), (lang, key)


def test_translations_differ_from_english() -> None:
    en, az, ru = (_catalogue(lang) for lang in ("en", "az", "ru"))
    same = [k for k in en if len(en[k]) > 15 and (az[k] == en[k] or ru[k] == en[k])]
    # the language prompt is written in all three languages at once
    assert same == ["language_prompt"]


def test_every_placeholder_can_be_filled(strings: Strings) -> None:
    for key, text in _catalogue("en").items():
        params = {name: "1" for name in _placeholders(text)}
        for lang in LANGUAGES:
            out = strings(lang, key, **params)
            assert "{" not in out, (lang, key)
            assert "}" not in out, (lang, key)


def test_mismatched_catalogues_are_refused() -> None:
    with pytest.raises(ValueError, match=r"strings\.az\.yaml differs in keys"):
        Strings({"en": {"a": "A", "b": "B"}, "az": {"a": "A"}})
    with pytest.raises(ValueError, match="differs in keys"):
        Strings({"en": {"a": "A"}, "ru": {"a": "A", "extra": "E"}})


def test_unknown_language_falls_back_to_english(strings: Strings) -> None:
    assert strings("de", "button_skip") == strings("en", "button_skip") == "Skip"
    assert strings("az", "button_skip") != "Skip"


@pytest.mark.parametrize(
    ("code", "lang"),
    [
        ("az-AZ", "az"),
        ("az", "az"),
        ("AZ", "az"),
        ("ru", "ru"),
        ("ru-RU", "ru"),
        ("en-GB", "en"),
        (None, "en"),
        ("", "en"),
        ("de", "en"),
        ("tr", "en"),
        ("uk-UA", "en"),
    ],
)
def test_language_hint(strings: Strings, code: str | None, lang: str) -> None:
    assert strings.language_hint(code) == lang


# --- the keys the code asks for ------------------------------------------------------------

# callee name -> position of the key argument
_KEY_ARG = {"strings": 1, "t": 1, "_send_plain": 1, "_reply": 2}


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _constants(node: ast.AST, module: dict[str, ast.expr]) -> set[str]:
    """String constants an expression can evaluate to (following module-level dicts)."""
    found: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            found.add(sub.value)
        elif isinstance(sub, ast.Name) and isinstance(module.get(sub.id), ast.Dict):
            found |= {
                v.value
                for v in module[sub.id].values  # type: ignore[attr-defined]
                if isinstance(v, ast.Constant) and isinstance(v.value, str)
            }
    return found


def _tuple_of_strings(node: ast.expr | None) -> list[str]:
    if isinstance(node, ast.Tuple | ast.List):
        return [
            e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
        ]
    return []


def _module_values(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level ``NAME = value`` assignments."""
    module: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                module[target.id] = node.value
    return module


def _local_values(
    function: ast.AST, module: dict[str, ast.expr]
) -> tuple[dict[str, list[ast.expr]], dict[str, list[str]]]:
    """Values assigned to local names, and the strings comprehension names run over."""
    assigned: dict[str, list[ast.expr]] = {}
    loops: dict[str, list[str]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
        if (
            isinstance(node, ast.comprehension)
            and isinstance(node.target, ast.Name)
            and isinstance(node.iter, ast.Name)
        ):
            loops[node.target.id] = _tuple_of_strings(module.get(node.iter.id))
    return assigned, loops


def _keys_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = _module_values(tree)
    keys: set[str] = set()
    functions = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)]
    for function in functions:
        assigned, loops = _local_values(function, module)
        calls = [
            node
            for node in ast.walk(function)
            if isinstance(node, ast.Call)
            and _name(node.func) in _KEY_ARG
            and len(node.args) > _KEY_ARG[_name(node.func) or ""]
        ]
        for call in calls:
            arg = call.args[_KEY_ARG[_name(call.func) or ""]]
            if isinstance(arg, ast.Name):
                for value in assigned.get(arg.id, []):
                    keys |= _constants(value, module)
            elif isinstance(arg, ast.JoinedStr):
                keys |= _expand(arg, loops)
            else:
                keys |= _constants(arg, module)
    return keys


def _expand(node: ast.JoinedStr, loops: dict[str, list[str]]) -> set[str]:
    """``f"command_{name}"`` for each name the comprehension runs over."""
    prefix = "".join(
        v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
    )
    names = [v.value for v in node.values if isinstance(v, ast.FormattedValue)]
    assert len(names) == 1, ast.unparse(node)
    assert isinstance(names[0], ast.Name), ast.unparse(node)
    values = loops.get(names[0].id)
    assert values, f"cannot expand {ast.unparse(node)}"
    return {prefix + value for value in values}


def _used_keys() -> dict[str, set[str]]:
    return {path.name: _keys_in(path) for path in sorted(PACKAGE.glob("*.py"))}


def test_the_extraction_finds_the_keys_in_use() -> None:
    used = _used_keys()
    everything = set().union(*used.values())
    # a sample from each way of naming a key, so that the check below is not vacuous
    assert {"err_slow_down", "err_internal", "err_edited", "err_required"} <= used[
        "conversation.py"
    ]
    assert {"err_contact", "err_location", "err_text_expected", "received_file"} <= everything
    assert {"hint_single", "hint_date", "button_ack", "review_skipped"} <= used["render.py"]
    assert {"command_start", "command_help"} <= used["app.py"]
    assert len(everything) >= 60


def test_every_key_the_code_uses_exists() -> None:
    catalogue = set(_catalogue("en"))
    missing = {name: sorted(keys - catalogue) for name, keys in _used_keys().items()}
    assert {name: keys for name, keys in missing.items() if keys} == {}


def test_language_names_are_in_their_own_language() -> None:
    assert LANGUAGE_NAMES == {"az": "Azərbaycan dili", "ru": "Русский", "en": "English"}


def test_texts_have_no_markup() -> None:
    for lang in LANGUAGES:
        for key, text in _catalogue(lang).items():
            for bad in ("<b>", "<i>", "**", "__", "`"):
                assert bad not in text, (lang, key, bad)


def test_calls_pass_every_placeholder() -> None:
    catalogue = _catalogue("en")
    calls = _calls()
    assert len(calls) > 40
    for where, key, names in calls:
        if names is not None and key in catalogue:
            assert _placeholders(catalogue[key]) <= names, (where, key)

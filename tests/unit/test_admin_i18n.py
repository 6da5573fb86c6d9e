"""The staff interface's catalogues: every message of the templates and the admin code has
a reviewed Azerbaijani and Russian translation with the same ``%(name)s`` fields, the
catalogues hold nothing the code no longer uses, and they load and translate at start.

The extraction is ``scripts/admin-messages``'s, in-process: the same mapping file
(``admin/locale/babel.cfg``) and keywords (Babel's defaults with ``_`` and ``N_``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from hypothesis import example, given
from hypothesis import strategies as st

from admin.i18n import DEFAULT, LANGUAGES, N_, Translator, load_catalogues, negotiate

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "admin"
LOCALE = PACKAGE / "locale"
KEYWORDS = {**DEFAULT_KEYWORDS, "_": None, "N_": None}
TRANSLATED = [code for code in LANGUAGES if code != DEFAULT]
FIELD = re.compile(r"%\((\w+)\)[sdr]")


def _extracted() -> dict[str, set[str]]:
    """Every message id of the package -> where it is used."""
    mapping = LOCALE / "babel.cfg"
    with mapping.open(encoding="utf-8") as source:
        method_map, options_map = parse_mapping_cfg(source, str(mapping))  # type: ignore[no-untyped-call]
    found: dict[str, set[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        PACKAGE, method_map, options_map, keywords=KEYWORDS
    ):
        assert isinstance(message, str), f"{filename}:{lineno}: plural or context message"
        found.setdefault(message, set()).add(f"admin/{filename}:{lineno}")
    return found


MESSAGES = _extracted()


def _catalogue(code: str) -> Catalog:
    with (LOCALE / code / "LC_MESSAGES" / "admin.po").open("rb") as source:
        return read_po(source, locale=code, domain="admin")


@pytest.fixture(scope="module", params=TRANSLATED)
def catalogue(request: pytest.FixtureRequest) -> Catalog:
    return _catalogue(request.param)


def test_extraction_finds_templates_views_and_marked_tables() -> None:
    assert len(MESSAGES) > 100
    where = {place.split(":")[0] for places in MESSAGES.values() for place in places}
    assert "admin/templates/base.html" in where
    assert "admin/views/auth.py" in where
    # A template call with fields, and a table value marked with N_ (translated later).
    assert "Welcome, %(name)s" in MESSAGES
    assert "At most 12 labels." in MESSAGES


def test_every_message_has_a_reviewed_translation(catalogue: Catalog) -> None:
    problems = []
    for message, places in sorted(MESSAGES.items()):
        entry = catalogue.get(message)
        where = ", ".join(sorted(places))
        if entry is None:
            problems.append(f"missing ({where}): {message!r}")
        elif not isinstance(entry.string, str) or not entry.string.strip():
            problems.append(f"untranslated ({where}): {message!r}")
        elif entry.fuzzy:
            problems.append(f"fuzzy, needs review ({where}): {message!r}")
    assert not problems, (
        f"{catalogue.locale}: run scripts/admin-messages and translate:\n" + "\n".join(problems)
    )


def test_translations_keep_the_fields(catalogue: Catalog) -> None:
    problems = []
    for entry in catalogue:
        if not entry.id or not isinstance(entry.id, str) or not isinstance(entry.string, str):
            continue
        fields = set(FIELD.findall(entry.id))
        if set(FIELD.findall(entry.string)) != fields:
            problems.append(f"fields differ: {entry.id!r} -> {entry.string!r}")
        elif fields and entry.string:
            try:
                entry.string % dict.fromkeys(fields, "x")
            except (ValueError, TypeError) as exc:
                problems.append(f"does not format ({exc}; a literal % is %%): {entry.string!r}")
    assert not problems, f"{catalogue.locale}:\n" + "\n".join(problems)


def test_no_obsolete_messages(catalogue: Catalog) -> None:
    stale = sorted(str(entry.id) for entry in catalogue if entry.id and entry.id not in MESSAGES)
    kept = sorted(str(key) for key in catalogue.obsolete)
    assert not stale, f"{catalogue.locale}: not used any more (run scripts/admin-messages): {stale}"
    assert not kept, f"{catalogue.locale}: obsolete #~ entries, delete them: {kept}"


def test_catalogues_have_clean_headers(catalogue: Catalog) -> None:
    assert not catalogue.fuzzy, "a fuzzy header"
    assert str(catalogue.locale) in TRANSLATED
    assert catalogue.charset.lower() == "utf-8"


def test_load_catalogues_translates() -> None:
    catalogues = load_catalogues()
    assert set(catalogues) == set(LANGUAGES)
    assert catalogues["en"].gettext("Password") == "Password"
    assert catalogues["az"].gettext("Password") == "Parol"
    assert catalogues["ru"].gettext("Password") == "Пароль"
    assert catalogues["az"].gettext("not a message of ours") == "not a message of ours"
    az = Translator("az", catalogues["az"])
    ru = Translator("ru", catalogues["ru"])
    assert az("Welcome, %(name)s", name="Leyla") == "Xoş gəlmisiniz, Leyla"
    assert ru("Welcome, %(name)s", name="Leyla") == "Добро пожаловать, Leyla"
    # A table value marked with N_ is the English text; translating happens when shown.
    marked = N_("At most 12 labels.")
    assert marked == "At most 12 labels."
    assert ru(marked) == catalogues["ru"].gettext(marked) != marked


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", "en"),
        ("az", "az"),
        ("az-Latn-AZ,az;q=0.9", "az"),
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),
        ("de-DE, ru;q=0.5", "ru"),
        ("en;q=0.2, AZ;q=0.8, ru;q=0.5", "az"),
        ("tr, fr;q=0.9", "en"),
        ("ru;q=nonsense, az;q=0.1", "az"),
        ("*", "en"),
    ],
)
def test_negotiate_examples(header: str, expected: str) -> None:
    assert negotiate(header) == expected


@given(st.text())
@example(";q=" * 50)
@example("az;q=1e999, ru;q=-inf, en;q=nan")
@example("," * 10_000 + "ru")
def test_negotiate_never_fails(header: str) -> None:
    assert negotiate(header) in LANGUAGES

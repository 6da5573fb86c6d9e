"""Staff interface languages (English, Azerbaijani, Russian) from Babel catalogues.

Messages are written in English in the templates and views (``_("…")``); the ``.po``
catalogues under ``admin/locale`` translate them. They are compiled in memory at start, so
no binary ``.mo`` file is kept in the repository. ``scripts/admin-messages`` extracts new
messages and updates the catalogues.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES: dict[str, str] = {"en": "English", "az": "Azərbaycanca", "ru": "Русский"}
"""Language code -> its own name, in the order the switcher shows them."""
DEFAULT = "en"
DOMAIN = "admin"


def load_catalogues() -> dict[str, NullTranslations]:
    """Every language's translations, compiled from the packaged ``.po`` files."""
    found: dict[str, NullTranslations] = {DEFAULT: NullTranslations()}
    root = resources.files("admin") / "locale"
    for code in LANGUAGES:
        if code == DEFAULT:
            continue
        po = root / code / "LC_MESSAGES" / f"{DOMAIN}.po"
        with po.open("rb") as source:
            catalogue = read_po(source, locale=code, domain=DOMAIN)
        compiled = io.BytesIO()
        write_mo(compiled, catalogue)
        compiled.seek(0)
        found[code] = Translations(compiled, domain=DOMAIN)
    return found


def N_(message: str) -> str:
    """Marks a message for extraction (``scripts/admin-messages``); translated later.

    For texts in tables built before a request has a language, such as error codes to
    messages: the value is the English text itself, and the code that shows it passes it
    to ``_``.
    """
    return message


class Translator:
    """``_`` for one language: translate, then fill ``%(name)s`` fields."""

    def __init__(self, language: str, translations: NullTranslations) -> None:
        self.language = language
        self._translations = translations

    def __call__(self, message: str, **fields: Any) -> str:
        text = self._translations.gettext(message)
        return text % fields if fields else text


def negotiate(accept_language: str, allowed: Iterable[str] = LANGUAGES) -> str:
    """The first language of an ``Accept-Language`` header we have, else English."""
    wanted = set(allowed)
    weighted: list[tuple[float, str]] = []
    for item in accept_language.split(",")[:20]:
        code, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        weighted.append((quality, code.strip().lower().split("-")[0]))
    for _, code in sorted(weighted, key=lambda pair: -pair[0]):
        if code in wanted:
            return code
    return DEFAULT


def choose(requested: str | None, fallback: str) -> str:
    return requested if requested in LANGUAGES else fallback


def language_names() -> Mapping[str, str]:
    return LANGUAGES

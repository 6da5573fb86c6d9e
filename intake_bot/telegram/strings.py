"""The bot's own interface text in each language (``data/strings.<lang>.yaml``)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Any

import yaml

LANGUAGES = ("az", "ru", "en")
"""Offered at /start, in this order."""
LANGUAGE_NAMES = {"az": "Azərbaycan dili", "ru": "Русский", "en": "English"}
DEFAULT_LANGUAGE = "en"


class Strings:
    """A catalogue per language with identical keys (checked at load)."""

    def __init__(self, catalogues: Mapping[str, Mapping[str, str]]) -> None:
        reference = set(catalogues[DEFAULT_LANGUAGE])
        for lang, catalogue in catalogues.items():
            if set(catalogue) != reference:
                missing = sorted(reference ^ set(catalogue))
                raise ValueError(f"strings.{lang}.yaml differs in keys: {missing[:3]}")
        self._catalogues = catalogues

    @classmethod
    def load(cls) -> Strings:
        base = resources.files("intake_bot.telegram").joinpath("data")
        return cls(
            {
                lang: yaml.safe_load(base.joinpath(f"strings.{lang}.yaml").read_text("utf-8"))
                for lang in LANGUAGES
            }
        )

    def __call__(self, lang: str, key: str, **params: Any) -> str:
        catalogue = self._catalogues.get(lang) or self._catalogues[DEFAULT_LANGUAGE]
        text = catalogue[key]
        return text.format(**params) if params else text

    def language_hint(self, code: str | None) -> str:
        """Telegram's language_code as a hint only (used before the reporter chooses)."""
        short = (code or "").split("-")[0].lower()
        return short if short in LANGUAGES else DEFAULT_LANGUAGE

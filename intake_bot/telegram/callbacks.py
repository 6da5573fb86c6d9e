"""Callback data of the bot's buttons: a tiny grammar, parsed strictly.

Telegram returns whatever ``callback_data`` a client sends, so a forged or outdated value
must parse to ``None`` (then the reporter is told to use the latest buttons) and never
raise. Questions and options are addressed by index to stay within Telegram's 64 bytes.

Forms: ``L:<lang>`` language; ``A:<q>:<o>`` choose; ``T:<q>:<o>`` toggle; ``D:<q>`` done;
``S:<q>`` skip; ``U:<q>`` don't know (date); ``E:<q>`` change (from the summary);
``R`` the change menu; ``B`` back to the summary; ``P`` submit; ``C:y``/``C:n`` cancel
confirmation; ``W`` receipt written down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_INDEX = 9999
_PATTERN = re.compile(r"(?:([ATDSUE]):([0-9]{1,4})(?::([0-9]{1,4}))?|([LC]):([a-z]{1,2})|([RBPW]))")
_VALUES = {"L": re.compile(r"[a-z]{2}"), "C": re.compile(r"[yn]")}
_WITH_OPTION = frozenset("AT")


@dataclass(frozen=True, slots=True)
class Callback:
    kind: str
    question: int | None = None
    option: int | None = None
    value: str | None = None


def parse(data: str | None) -> Callback | None:
    """The button pressed, or None for anything this bot did not send."""
    if not data or len(data) > 64:
        return None
    match = _PATTERN.fullmatch(data)
    if match is None:
        return None
    kind, question, option, valued, value, bare = match.groups()
    if valued is not None:
        return Callback(valued, value=value) if _VALUES[valued].fullmatch(value) else None
    if bare is not None:
        return Callback(bare)
    if (option is not None) != (kind in _WITH_OPTION):
        return None
    return Callback(kind, int(question), int(option) if option is not None else None)


def encode(
    kind: str, question: int | None = None, option: int | None = None, value: str | None = None
) -> str:
    parts = [kind]
    if value is not None:
        parts.append(value)
    if question is not None:
        parts.append(str(question))
    if option is not None:
        parts.append(str(option))
    return ":".join(parts)

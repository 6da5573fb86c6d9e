"""Entities Telegram attaches to text users send, with offsets in UTF-16 code units.

Telegram measures entity offsets and lengths in UTF-16 code units, not code points: an
emoji outside the Basic Multilingual Plane counts two. python-telegram-bot slices text
the same way, so an offset computed in code points would cut a command in half after an
emoji. Only ``bot_command`` is produced: it is what command handlers match on (an entity
of that type at offset 0). URLs, mentions and hashtags are not detected.
"""

from __future__ import annotations

import re
from typing import Any

# Telegram: 1-32 letters, digits and underscores, optionally addressed "@botname",
# starting the text or after white space.
_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![A-Za-z0-9_@/])")


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, Telegram's unit for offsets and limits."""
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[dict[str, Any]]:
    """``bot_command`` entities for every command in ``text``, as Telegram marks them."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: match.start()]),
            "length": utf16_len(match.group()),
        }
        for match in _COMMAND.finditer(text)
    ]

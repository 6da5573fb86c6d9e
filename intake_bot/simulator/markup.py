"""``reply_markup`` checked the way Telegram checks it, and searched for buttons.

Telegram refuses malformed keyboards with a 400, and only inline keyboards come back in
the ``Message`` it returns (python-telegram-bot parses ``Message.reply_markup`` as an
``InlineKeyboardMarkup`` and would fail on any other kind), so the transcript keeps the
markup as sent while the message carries the inline kind only.
"""

from __future__ import annotations

from typing import Any

from .errors import bad_request

JsonDict = dict[str, Any]

_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
MAX_CALLBACK_DATA_BYTES = 64


def parse_reply_markup(raw: object) -> JsonDict | None:
    """Validate a decoded ``reply_markup``; returns it, or ``None`` if absent."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in raw:
        for button in _buttons(raw["inline_keyboard"], "inline keyboard"):
            _check_inline_button(button)
    elif "keyboard" in raw:
        for button in _buttons(raw["keyboard"], "keyboard"):
            if not isinstance(button, str) and not isinstance(button.get("text"), str):
                raise bad_request(
                    'can\'t parse keyboard button: Field "text" must be of type String'
                )
    elif raw.get("remove_keyboard") is not True and raw.get("force_reply") is not True:
        raise bad_request("can't parse reply keyboard markup JSON object")
    return raw


def is_inline(markup: JsonDict | None) -> bool:
    return markup is not None and "inline_keyboard" in markup


def find_button(markup: JsonDict | None, *, data: str | None, text: str | None) -> JsonDict | None:
    """The inline button with this ``callback_data`` (or, if ``data`` is None, this text)."""
    if markup is None or not is_inline(markup):
        return None
    for row in markup["inline_keyboard"]:
        for button in row:
            if "callback_data" not in button:
                continue
            if (data is not None and button["callback_data"] == data) or (
                data is None and button.get("text") == text
            ):
                return dict(button)
    return None


def _buttons(rows: object, what: str) -> list[Any]:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(f"can't parse {what} JSON object: rows must be arrays")
    buttons = [button for row in rows for button in row]
    if not all(isinstance(button, dict | str) for button in buttons):
        raise bad_request(f"can't parse {what} button: it must be an object")
    return buttons


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request(
            'can\'t parse inline keyboard button: Field "text" must be of type String'
        )
    actions = [name for name in _INLINE_ACTIONS if name in button]
    if len(actions) != 1:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    data = button.get("callback_data")
    if data is not None and (
        not isinstance(data, str) or not data or len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES
    ):
        raise bad_request("BUTTON_DATA_INVALID")

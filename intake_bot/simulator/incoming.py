"""What users can send: one content builder per message kind, and forward origins.

The control API names a ``kind`` and passes its fields; the builder returns the message
fields Telegram would put in the update. File kinds live in :mod:`.media`; this module
adds the kinds without files (text, location, contact, poll, dice) and the
``forward_origin`` variants (``user``, ``hidden_user``, ``chat``, ``channel``).
"""

from __future__ import annotations

import secrets
from typing import Any

from .chats import JsonDict
from .entities import command_entities, utf16_len
from .errors import invalid
from .media import MEDIA_BUILDERS, MediaBuilder
from .params import Params, Upload
from .state import Simulator

MAX_TEXT = 4096
ALBUM_KINDS = frozenset({"photo", "video", "document", "audio"})
"""Kinds that can be part of an album (photos and videos mix; documents and audio don't)."""

DICE_VALUES = {"🎲": 6, "🎯": 6, "🎳": 6, "🏀": 5, "⚽": 5, "🎰": 64}
"""Emoji Telegram rolls, and the highest value each can show."""

FORWARD_AGE_SECONDS = 3600
"""Default age of a forwarded message's original, when the test gives no ``date``."""


def text(sim: Simulator, p: Params, upload: Upload | None) -> JsonDict:
    body = p.text("text")
    if not body or not body.strip():
        raise invalid("text is required and must not be blank")
    if utf16_len(body) > MAX_TEXT:
        raise invalid(f"a message holds at most {MAX_TEXT} characters")
    content: JsonDict = {"text": body}
    if entities := command_entities(body):
        content["entities"] = entities
    return content


def location(sim: Simulator, p: Params, upload: Upload | None) -> JsonDict:
    latitude, longitude = p.number("latitude"), p.number("longitude")
    if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180:
        raise invalid("latitude (-90..90) and longitude (-180..180) are required")
    body: JsonDict = {"latitude": latitude, "longitude": longitude}
    accuracy = p.number("horizontal_accuracy")
    if accuracy is not None:
        body["horizontal_accuracy"] = accuracy
    return {"location": body}


def contact(sim: Simulator, p: Params, upload: Upload | None) -> JsonDict:
    phone_number, first_name = p.text("phone_number"), p.text("first_name")
    if not phone_number or not first_name:
        raise invalid("phone_number and first_name are required")
    body: JsonDict = {"phone_number": phone_number, "first_name": first_name}
    if last_name := p.text("last_name"):
        body["last_name"] = last_name
    if (user_id := p.integer("user_id")) is not None:
        body["user_id"] = user_id
    if vcard := p.text("vcard"):
        body["vcard"] = vcard
    return {"contact": body}


def poll(sim: Simulator, p: Params, upload: Upload | None) -> JsonDict:
    """Bot API 9.6+ shape: PTB 22.8 refuses options without ``persistent_id`` and polls
    without ``allows_revoting`` and ``members_only`` (checks its signature does not show)."""
    question = p.text("question")
    options = p.json("options")
    if not question or not isinstance(options, list) or not 2 <= len(options) <= 12:
        raise invalid("a poll needs a question and 2 to 12 options")
    if not all(isinstance(option, str) and option for option in options):
        raise invalid("poll options are non-empty strings")
    poll_type = p.text("poll_type") or "regular"
    if poll_type not in ("regular", "quiz"):
        raise invalid("poll_type is regular or quiz")
    body: JsonDict = {
        "id": str(secrets.randbits(63)),
        "question": question,
        "options": [
            {"persistent_id": str(index), "text": option, "voter_count": 0}
            for index, option in enumerate(options)
        ],
        "total_voter_count": 0,
        "is_closed": False,
        "is_anonymous": p.flag("is_anonymous", default=True),
        "type": poll_type,
        "allows_multiple_answers": p.flag("allows_multiple_answers"),
        "allows_revoting": poll_type != "quiz",
        "members_only": False,
    }
    correct = p.json("correct_option_ids")
    if isinstance(correct, list) and all(isinstance(i, int) for i in correct):
        body["correct_option_ids"] = correct
    elif correct is not None:
        raise invalid("correct_option_ids is a list of option indexes")
    return {"poll": body}


def dice(sim: Simulator, p: Params, upload: Upload | None) -> JsonDict:
    emoji = p.text("emoji") or "🎲"
    highest = DICE_VALUES.get(emoji)
    if highest is None:
        raise invalid(f"dice emoji is one of {' '.join(DICE_VALUES)}")
    value = p.integer("value")
    if value is None:
        value = secrets.randbelow(highest) + 1
    if not 1 <= value <= highest:
        raise invalid(f"{emoji} shows 1 to {highest}")
    return {"dice": {"emoji": emoji, "value": value}}


BUILDERS: dict[str, MediaBuilder] = {
    "text": text,
    "location": location,
    "contact": contact,
    "poll": poll,
    "dice": dice,
    **MEDIA_BUILDERS,
}
"""Every kind a user can send, by name."""


def forward_origin(sim: Simulator, spec: object) -> JsonDict:
    """A Bot API ``MessageOrigin`` from the control API's description of one.

    ``{"type": "user", "user_id": <a simulated user>}`` or ``"user": {...}``;
    ``{"type": "hidden_user", "sender_user_name": ...}``; ``{"type": "chat", "title": ...}``;
    ``{"type": "channel", "title": ..., "message_id"?, "username"?}``. ``date`` (Unix
    seconds) defaults to an hour before now.
    """
    if not isinstance(spec, dict):
        raise invalid("forward_origin is an object with a type")
    date = spec.get("date", sim.clock.now() - FORWARD_AGE_SECONDS)
    if not isinstance(date, int) or isinstance(date, bool):
        raise invalid("forward_origin.date is Unix seconds")
    origin_type = spec.get("type")
    origin: JsonDict = {"type": origin_type, "date": date}
    if origin_type == "user":
        origin["sender_user"] = _origin_user(sim, spec)
    elif origin_type == "hidden_user":
        name = spec.get("sender_user_name")
        if not isinstance(name, str) or not name:
            raise invalid("a hidden_user origin needs sender_user_name")
        origin["sender_user_name"] = name
    elif origin_type in ("chat", "channel"):
        chat = _origin_chat(spec, "channel" if origin_type == "channel" else "supergroup")
        if origin_type == "channel":
            origin["chat"] = chat
            origin["message_id"] = _int(spec, "message_id", 1)
        else:
            origin["sender_chat"] = chat
        if isinstance(signature := spec.get("author_signature"), str):
            origin["author_signature"] = signature
    else:
        raise invalid("forward_origin.type is user, hidden_user, chat or channel")
    return origin


def _origin_user(sim: Simulator, spec: dict[str, Any]) -> JsonDict:
    if "user_id" in spec:
        return sim.user(_int(spec, "user_id", 0)).to_api()
    user = spec.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("first_name"), str):
        raise invalid("a user origin needs user_id (a simulated user) or user with first_name")
    data: JsonDict = {
        "id": _int(user, "id", 6_000_000_001),
        "is_bot": bool(user.get("is_bot", False)),
        "first_name": user["first_name"],
    }
    if isinstance(username := user.get("username"), str):
        data["username"] = username
    return data


def _origin_chat(spec: dict[str, Any], chat_type: str) -> JsonDict:
    title = spec.get("title")
    if not isinstance(title, str) or not title:
        raise invalid("a chat or channel origin needs a title")
    chat: JsonDict = {"id": _int(spec, "chat_id", -1_001_000_000_001), "title": title}
    if isinstance(username := spec.get("username"), str):
        chat["username"] = username
    chat["type"] = chat_type
    return chat


def _int(spec: dict[str, Any], name: str, default: int) -> int:
    value = spec.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid(f"{name} must be an integer")
    return value

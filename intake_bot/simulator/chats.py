"""Simulated users, chats and the transcript of every message in each chat.

A transcript keeps every message in order, from both sides, with what tests need to
check the bot's behaviour and Telegram does not expose: who sent it, the markup and
``parse_mode`` it was sent with, whether content was protected, and whether (and when)
it was deleted. Deleted messages stay in the transcript, marked, so a test can verify
exactly what a wipe removed. Edits change the message in place; history is not kept.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

JsonDict = dict[str, Any]
Direction = Literal["in", "out"]
"""``in``: from a user to the bot; ``out``: from the bot (including its service messages)."""

FILE_FIELDS = ("photo", "document", "animation", "audio", "video", "video_note", "voice", "sticker")
"""Message fields that hold files (``photo`` is a list of sizes)."""


@dataclass
class SimUser:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False
    blocked_bot: bool = False
    """The user has blocked the bot: sending to them answers 403, as Telegram does."""

    def to_api(self) -> JsonDict:
        """The Bot API ``User`` as it appears in messages (no ``getMe``-only fields)."""
        data: JsonDict = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value:
                data[key] = value
        return data


@dataclass
class Entry:
    """One message in a transcript, with the Bot API ``Message`` as Telegram shows it now."""

    message: JsonDict
    direction: Direction
    kind: str
    """``text``, ``photo``, ``document``, ``voice``, ... or a service kind such as
    ``left_chat_member``."""
    parse_mode: str | None = None
    markup: JsonDict | None = None
    """Any ``reply_markup`` the bot sent (inline, reply keyboard, removal, force reply)."""
    protect_content: bool = False
    deleted_at: int | None = None

    @property
    def message_id(self) -> int:
        return int(self.message["message_id"])

    @property
    def date(self) -> int:
        return int(self.message["date"])

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def file_ids(self) -> list[str]:
        ids: list[str] = []
        for name in FILE_FIELDS:
            value = self.message.get(name)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict) and item.get("file_id") not in ids:
                    ids.append(item["file_id"])
        return ids

    def to_control(self) -> JsonDict:
        """The control API's view: flags, plus the message itself for a chat page."""
        return {
            "message_id": self.message_id,
            "direction": self.direction,
            "date": self.date,
            "kind": self.kind,
            "text": self.message.get("text"),
            "caption": self.message.get("caption"),
            "parse_mode": self.parse_mode,
            "reply_markup": copy.deepcopy(self.markup),
            "protect_content": self.protect_content,
            "deleted": self.deleted,
            "deleted_at": self.deleted_at,
            "edit_date": self.message.get("edit_date"),
            "media_group_id": self.message.get("media_group_id"),
            "file_ids": self.file_ids(),
            "from_id": self.message.get("from", {}).get("id"),
            "message": copy.deepcopy(self.message),
        }


@dataclass
class SimChat:
    id: int
    type: Literal["private", "group"]
    title: str | None = None
    user: SimUser | None = None
    """The other party of a private chat."""
    members: set[int] = field(default_factory=set)
    bot_is_member: bool = True
    chat_instance: str = field(default_factory=lambda: str(secrets.randbits(63)))
    """What Telegram sends as ``CallbackQuery.chat_instance``: stable for the chat."""
    entries: dict[int, Entry] = field(default_factory=dict)
    last_message_id: int = 0
    version: int = 0
    """Grows at every change of the transcript, for pages that poll for changes."""
    reply_keyboard: JsonDict | None = None
    """The reply keyboard a Telegram client would now show under the input field."""
    last_action: str | None = None
    """The last ``sendChatAction`` ("typing", ...), for a chat page."""

    def to_api(self) -> JsonDict:
        """The Bot API ``Chat`` as it appears in messages."""
        if self.type == "group":
            return {"id": self.id, "title": self.title or "", "type": "group"}
        if self.user is None:
            raise RuntimeError("a private chat without its user")
        data: JsonDict = {"id": self.id, "first_name": self.user.first_name}
        if self.user.last_name:
            data["last_name"] = self.user.last_name
        if self.user.username:
            data["username"] = self.user.username
        data["type"] = "private"
        return data

    def next_message_id(self) -> int:
        """Message ids count up per chat, shared by both sides, as in Telegram."""
        self.last_message_id += 1
        return self.last_message_id

    def live_entry(self, message_id: int) -> Entry | None:
        """The message if it exists and is not deleted."""
        entry = self.entries.get(message_id)
        return None if entry is None or entry.deleted else entry

    def to_control(self) -> JsonDict:
        return {
            "chat": self.to_api(),
            "version": self.version,
            "bot_is_member": self.bot_is_member,
            "reply_keyboard": copy.deepcopy(self.reply_keyboard),
            "last_action": self.last_action,
            "messages": [entry.to_control() for entry in self.entries.values()],
        }

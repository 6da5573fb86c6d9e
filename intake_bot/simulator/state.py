"""The simulated world of one bot: its users, chats, transcripts, files and updates.

Both HTTP faces work on one :class:`Simulator`: the Bot API side as the bot, the control
side as the users and the test. Everything lives in memory for the life of the app and
runs on one event loop, so no locks are needed; every change wakes whoever waits.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from .chats import Direction, Entry, JsonDict, SimChat, SimUser
from .clock import Clock
from .errors import not_found
from .files import FileStore
from .markup import is_inline
from .updates import UpdateQueue
from .wakeup import Wakeup

DEFAULT_DOWNLOAD_LIMIT: Final = 20 * 1024 * 1024
"""The cloud Bot API's ``getFile`` limit; a self-hosted Bot API server lifts it."""

DELETE_WINDOW_SECONDS: Final = 48 * 60 * 60
"""Bots may delete messages in private chats, both sides, for 48 hours."""

FIRST_USER_ID: Final = 7_000_000_001
"""Above 2**32 on purpose: code that squeezes user ids into 32 bits fails in tests."""

FIRST_GROUP_ID: Final = -4_000_000_001

_GET_ME_ONLY: Final[JsonDict] = {
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
    "can_connect_to_business": False,
    "has_main_web_app": False,
    "has_topics_enabled": False,
    "allows_users_to_create_topics": False,
}


@dataclass
class CallbackRecord:
    """A button press sent to the bot, and the bot's ``answerCallbackQuery``, if any."""

    id: str
    chat_id: int
    message_id: int
    from_id: int
    data: str | None
    answered: bool = False
    text: str | None = None
    show_alert: bool = False
    url: str | None = None

    def to_control(self) -> JsonDict:
        return {
            "callback_query_id": self.id,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "from_id": self.from_id,
            "data": self.data,
            "answered": self.answered,
            "text": self.text,
            "show_alert": self.show_alert,
            "url": self.url,
        }


class Simulator:
    """State and rules shared by the Bot API and the control API."""

    def __init__(
        self,
        token: str,
        *,
        download_limit: int = DEFAULT_DOWNLOAD_LIMIT,
        bot_username: str = "intake_test_bot",
        bot_first_name: str = "Intake",
        clock: Clock | None = None,
    ) -> None:
        bot_id, colon, secret = token.partition(":")
        if not colon or not bot_id.isdigit() or not secret:
            raise ValueError("a bot token has the form '<bot id>:<secret>'")
        self.token = token
        self.download_limit = download_limit
        self.clock = clock or Clock()
        self.bot = SimUser(
            id=int(bot_id), first_name=bot_first_name, username=bot_username, is_bot=True
        )
        self.wakeup = Wakeup()
        self.files = FileStore()
        self.updates = UpdateQueue(self.wakeup)
        self.users: dict[int, SimUser] = {}
        self.chats: dict[int, SimChat] = {}
        self.commands: dict[tuple[str, str], list[JsonDict]] = {}
        """Bot commands by (scope as canonical JSON, language code)."""
        self.callbacks: dict[str, CallbackRecord] = {}
        self.last_activity = time.monotonic()
        self._last_callback_id = 0

    def get_me(self) -> JsonDict:
        return {**self.bot.to_api(), **_GET_ME_ONLY}

    # -- people and chats -------------------------------------------------------------

    def add_user(
        self,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> SimUser:
        """A new user and their private chat with the bot (chat id = user id)."""
        user = SimUser(
            id=FIRST_USER_ID + len(self.users),
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
        )
        self.users[user.id] = user
        self.chats[user.id] = SimChat(id=user.id, type="private", user=user, members={user.id})
        return user

    def add_group(self, title: str, member_ids: list[int]) -> SimChat:
        """A basic group the bot is a member of."""
        groups = sum(1 for chat in self.chats.values() if chat.type == "group")
        for member_id in member_ids:
            self.user(member_id)
        chat = SimChat(
            id=FIRST_GROUP_ID - groups, type="group", title=title, members=set(member_ids)
        )
        self.chats[chat.id] = chat
        return chat

    def user(self, user_id: int) -> SimUser:
        user = self.users.get(user_id)
        if user is None:
            raise not_found(f"no user {user_id}")
        return user

    def chat(self, chat_id: int) -> SimChat:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise not_found(f"no chat {chat_id}")
        return chat

    # -- messages ---------------------------------------------------------------------

    def append(
        self,
        chat: SimChat,
        sender: SimUser,
        direction: Direction,
        kind: str,
        content: JsonDict,
        **entry_fields: Any,
    ) -> Entry:
        """Add a message to ``chat``'s transcript with the next id and the clock's date."""
        message: JsonDict = {
            "message_id": chat.next_message_id(),
            "from": sender.to_api(),
            "chat": chat.to_api(),
            "date": self.clock.now(),
            **content,
        }
        entry = Entry(message=message, direction=direction, kind=kind, **entry_fields)
        chat.entries[entry.message_id] = entry
        self.changed(chat)
        return entry

    def user_sends(
        self,
        user: SimUser,
        chat: SimChat,
        kind: str,
        content: JsonDict,
        *,
        reply_to: Entry | None = None,
    ) -> tuple[Entry, int | None]:
        """A user's message: into the transcript, and to the bot as a ``message`` update.

        Returns the entry and the update id (``None`` when the bot cannot receive it: it
        left the group, or its ``allowed_updates`` exclude messages).
        """
        if reply_to is not None:
            content = {**content, "reply_to_message": _quoted(reply_to)}
        chat.members.add(user.id)
        entry = self.append(chat, user, "in", kind, content)
        return entry, self.deliver(chat, "message", entry.message)

    def bot_sends(
        self,
        chat: SimChat,
        kind: str,
        content: JsonDict,
        *,
        markup: JsonDict | None = None,
        protect_content: bool = False,
        parse_mode: str | None = None,
        reply_to: Entry | None = None,
    ) -> Entry:
        content = dict(content)
        if reply_to is not None:
            content["reply_to_message"] = _quoted(reply_to)
        if markup is not None and is_inline(markup):
            content["reply_markup"] = markup
        if protect_content:
            content["has_protected_content"] = True
        if markup is not None and "keyboard" in markup:
            chat.reply_keyboard = markup
        elif markup is not None and markup.get("remove_keyboard") is True:
            chat.reply_keyboard = None
        chat.last_action = None
        return self.append(
            chat,
            self.bot,
            "out",
            kind,
            content,
            markup=markup,
            protect_content=protect_content,
            parse_mode=parse_mode,
        )

    def edit(
        self, chat: SimChat, entry: Entry, changes: JsonDict, removed: tuple[str, ...]
    ) -> None:
        """Change a message in place and stamp ``edit_date``."""
        for name in removed:
            entry.message.pop(name, None)
        entry.message.update(changes)
        entry.message["edit_date"] = self.clock.now()
        self.changed(chat)

    def delete(self, chat: SimChat, entry: Entry) -> None:
        """Mark a message deleted; it stays in the transcript."""
        entry.deleted_at = self.clock.now()
        self.changed(chat)

    def deliver(self, chat: SimChat, update_type: str, payload: JsonDict) -> int | None:
        if chat.type == "group" and not chat.bot_is_member:
            return None
        return self.updates.push(update_type, payload)

    def new_callback_id(self) -> str:
        """Callback query ids are opaque decimal strings in Telegram."""
        self._last_callback_id += 1
        return str(self.bot.id * 1_000_000 + self._last_callback_id)

    # -- activity and waiting ---------------------------------------------------------

    def changed(self, chat: SimChat | None = None) -> None:
        if chat is not None:
            chat.version += 1
        self.wakeup.notify()

    def touch(self) -> None:
        """Note bot activity (an API call, a fetched update) for idle detection."""
        self.last_activity = time.monotonic()
        self.wakeup.notify()

    async def wait_for_bot_messages(
        self, chat: SimChat, *, after: int, count: int, max_wait: float
    ) -> list[Entry]:
        """Bot messages in ``chat`` newer than ``after``, once there are ``count`` of them."""

        def newer() -> list[Entry]:
            found = [
                entry
                for message_id, entry in chat.entries.items()
                if message_id > after and entry.direction == "out"
            ]
            return found if len(found) >= count else []

        found = await self.wakeup.wait_until(newer, max_wait)
        if found:
            return found
        return [e for i, e in chat.entries.items() if i > after and e.direction == "out"]

    async def wait_for_change(self, chat: SimChat, *, version: int, max_wait: float) -> None:
        await self.wakeup.wait_until(lambda: chat.version > version, max_wait)

    async def wait_idle(self, *, quiet: float, max_wait: float) -> bool:
        """Wait until every update was fetched and the bot made no call for ``quiet`` s."""
        deadline = time.monotonic() + max_wait
        while True:
            now = time.monotonic()
            quiet_for = now - self.last_activity
            pending = self.updates.undelivered
            if not pending and quiet_for >= quiet:
                return True
            if now >= deadline:
                return False
            step = deadline - now if pending else min(deadline - now, quiet - quiet_for)
            await self.wakeup.wait(step)

    # -- commands ---------------------------------------------------------------------

    @staticmethod
    def command_key(scope: JsonDict | None, language_code: str | None) -> tuple[str, str]:
        return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""

    def commands_to_control(self) -> list[JsonDict]:
        return [
            {"scope": json.loads(scope), "language_code": language, "commands": copy.deepcopy(cmds)}
            for (scope, language), cmds in self.commands.items()
        ]


def _quoted(entry: Entry) -> JsonDict:
    """A message as it appears inside ``reply_to_message`` (one level deep, like Telegram)."""
    quoted = copy.deepcopy(entry.message)
    quoted.pop("reply_to_message", None)
    return quoted


SIMULATOR: Final = web.AppKey("simulator", Simulator)
"""Where :func:`~intake_bot.simulator.create_app` keeps the app's :class:`Simulator`."""

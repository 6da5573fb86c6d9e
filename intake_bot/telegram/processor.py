"""Update processing: one reporter's updates strictly in order, reporters concurrently.

python-telegram-bot's ``concurrent_updates=True`` would let two messages of one reporter
race (an album's files, a double tap); its ConversationHandler keys state by raw chat and
user ids. Instead, updates are serialised per reporter by a lock keyed with a keyed hash
of the user id (the raw id is not even kept as a dict key), and different reporters run
in parallel.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor


class PerReporterProcessor(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._salt = secrets.token_bytes(16)
        self._locks: dict[bytes, asyncio.Lock] = {}
        self._users: dict[bytes, int] = {}

    def _key(self, update: object) -> bytes:
        user = update.effective_user if isinstance(update, Update) else None
        chat = update.effective_chat if isinstance(update, Update) else None
        ident = user.id if user else chat.id if chat else 0
        return hashlib.blake2b(str(ident).encode(), key=self._salt, digest_size=16).digest()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = self._key(update)
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._locks[key]

    async def initialize(self) -> None:
        """Nothing to set up: locks are created on demand."""

    async def shutdown(self) -> None:
        """Nothing to release."""

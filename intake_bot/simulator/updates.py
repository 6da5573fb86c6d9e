"""The update queue behind ``getUpdates``, with Telegram's long-polling rules.

* An update stays queued until a later call confirms it with ``offset`` greater than its
  ``update_id``; a negative ``offset`` keeps only the last ``-offset`` updates.
* ``allowed_updates`` persists between calls when omitted; an empty list means
  Telegram's default (everything but ``chat_member``, ``message_reaction`` and
  ``message_reaction_count``). Updates of other types are not kept at all.
* A long poll returns as soon as an update is queued. A newer ``getUpdates`` ends an older
  one still waiting with 409 Conflict, as Telegram does when two bot instances poll, so a
  test that accidentally runs two pollers hears about it.
* When the server shuts down, waiting polls return at once with no updates.
"""

from __future__ import annotations

import copy

from .chats import JsonDict
from .errors import conflict
from .wakeup import Wakeup

UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "message_reaction",
        "message_reaction_count",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
DEFAULT_ALLOWED = UPDATE_TYPES - {"chat_member", "message_reaction", "message_reaction_count"}

MAX_POLL_SECONDS = 50.0
"""Long polls are cut to this, like Telegram's own ceiling."""

FIRST_UPDATE_ID = 100_000_001


class UpdateQueue:
    """Pending updates for the one bot the simulator serves."""

    def __init__(self, wakeup: Wakeup) -> None:
        self._wakeup = wakeup
        self._pending: list[JsonDict] = []
        self._next_id = FIRST_UPDATE_ID
        self._allowed: frozenset[str] = DEFAULT_ALLOWED
        self._poll_generation = 0
        self._closing = False
        self.delivered_up_to = 0
        """Highest ``update_id`` handed to the bot at least once."""

    @property
    def pending(self) -> int:
        """Updates not yet confirmed by the bot."""
        return len(self._pending)

    @property
    def undelivered(self) -> int:
        """Updates never yet handed to the bot."""
        return sum(1 for update in self._pending if update["update_id"] > self.delivered_up_to)

    def push(self, update_type: str, payload: JsonDict) -> int | None:
        """Queue an update; ``None`` if the bot's ``allowed_updates`` exclude its type."""
        if update_type not in self._allowed:
            return None
        update_id = self._next_id
        self._next_id += 1
        self._pending.append({"update_id": update_id, update_type: copy.deepcopy(payload)})
        self._wakeup.notify()
        return update_id

    def drop_pending(self) -> None:
        self._pending.clear()
        self._wakeup.notify()

    def close(self) -> None:
        """Release every waiting long poll (server shutdown)."""
        self._closing = True
        self._wakeup.notify()

    async def get(
        self,
        *,
        offset: int | None,
        limit: int,
        poll_seconds: float,
        allowed_updates: list[str] | None,
    ) -> list[JsonDict]:
        self._poll_generation += 1
        generation = self._poll_generation
        self._wakeup.notify()  # an older poll still waiting now answers 409
        self._confirm(offset)
        if allowed_updates is not None:
            self._allowed = frozenset(allowed_updates) & UPDATE_TYPES or DEFAULT_ALLOWED
            self._pending = [u for u in self._pending if _update_type(u) in self._allowed]

        def ready() -> tuple[list[JsonDict], ...]:
            """``(batch,)`` once there is an answer (updates, or none at shutdown)."""
            if generation != self._poll_generation:
                raise conflict(
                    "terminated by other getUpdates request; "
                    "make sure that only one bot instance is running"
                )
            if self._closing:
                return ([],)
            batch = self._pending[:limit]
            return (batch,) if batch else ()

        seconds = min(max(poll_seconds, 0.0), MAX_POLL_SECONDS)
        answer = await self._wakeup.wait_until(ready, seconds)
        batch = answer[0] if answer else []
        if batch:
            self.delivered_up_to = max(self.delivered_up_to, batch[-1]["update_id"])
            self._wakeup.notify()
        return copy.deepcopy(batch)

    def _confirm(self, offset: int | None) -> None:
        if not offset:
            return
        if offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        else:
            self._pending = self._pending[offset:]
        self._wakeup.notify()


def _update_type(update: JsonDict) -> str:
    return next(key for key in update if key != "update_id")

"""One wake-up call for everything that waits on the simulator's state.

Long polls, ``wait`` requests and idle checks all wait for "something changed". A single
broadcast event, replaced after each notification, wakes every waiter; each waiter then
re-checks its own condition. A check and the subsequent wait have no ``await`` between
them, so on one event loop no notification can be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")


class Wakeup:
    """Broadcast "the state changed" to every current waiter."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def notify(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self, max_wait: float) -> None:
        """Return at the next notification or after ``max_wait`` seconds."""
        if max_wait <= 0:
            return
        if self._event is None:
            self._event = asyncio.Event()
        event = self._event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max_wait):
                await event.wait()

    async def wait_until(self, check: Callable[[], _T], max_wait: float) -> _T:
        """Re-run ``check`` at each notification until it returns something truthy.

        Returns the last result, falsy if ``max_wait`` seconds passed first. ``check`` may
        raise to end the wait early.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        while True:
            result = check()
            remaining = deadline - loop.time()
            if result or remaining <= 0:
                return result
            await self.wait(remaining)

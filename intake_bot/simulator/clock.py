"""The simulator's notion of "now", which tests move forward.

Telegram's rules that depend on time (bots may delete messages for 48 hours) are checked
against this clock, so a test can step past a limit without waiting. It follows the wall
clock plus an offset that only grows: message dates stay plausible and never go back.
"""

from __future__ import annotations

import time


class Clock:
    """Wall-clock seconds plus a forward-only offset."""

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> int:
        """Unix time in whole seconds, as Telegram dates are."""
        return int(time.time() + self._offset)

    def advance(self, seconds: float) -> int:
        """Move "now" forward by ``seconds`` (never back); returns the new now."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds
        return self.now()

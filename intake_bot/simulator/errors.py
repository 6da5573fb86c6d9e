"""The one error of the simulator, answered over HTTP the way Telegram answers.

Every refusal, whether the Bot API's or the control API's, is a :class:`SimulatorError`
with an HTTP status and a description. The Bot API renders it as Telegram does
(``{"ok": false, "error_code": ..., "description": ...}``), because python-telegram-bot
maps the status to its exception class (400 ``BadRequest``, 403 ``Forbidden``, 409
``Conflict``) and keeps the description, minus ``"Bad Request: "``, as the message. The
control API renders it as ``{"error": description}``. Descriptions never hold message text.
"""

from __future__ import annotations


class SimulatorError(Exception):
    """A refusal with its HTTP status and Telegram-style description."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def bad_request(detail: str) -> SimulatorError:
    """400, worded like Telegram: ``Bad Request: <detail>``."""
    return SimulatorError(400, f"Bad Request: {detail}")


def forbidden(detail: str) -> SimulatorError:
    """403, worded like Telegram: ``Forbidden: <detail>``."""
    return SimulatorError(403, f"Forbidden: {detail}")


def conflict(detail: str) -> SimulatorError:
    """409, worded like Telegram: ``Conflict: <detail>``."""
    return SimulatorError(409, f"Conflict: {detail}")


def invalid(detail: str) -> SimulatorError:
    """400 from the control API: a test asked for something the simulator cannot do."""
    return SimulatorError(400, detail)


def not_found(detail: str) -> SimulatorError:
    """404 from the control API: no such user, chat, message or callback query."""
    return SimulatorError(404, detail)

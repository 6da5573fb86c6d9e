"""Logging that cannot leak: structlog for our events, stdlib records routed through it.

What is never logged, by construction rather than by care at each call site:

* Values under sensitive keys (answers, text, file names, paths, user and chat ids,
  usernames, tokens, passwords, IP addresses, update bodies): replaced by ``<redacted>``.
* Bot tokens anywhere in a string, including inside ``/bot<token>/`` URLs that httpx and
  python-telegram-bot log: replaced by ``<token>``.
* Exception messages and local variables: exceptions are rendered as their type and stack
  frames only (never ``str(exc)``, which may hold an answer or an SQL parameter, and never
  locals, so ``show_locals`` is off everywhere).

Noisy third-party loggers are held at WARNING (httpx logs every request URL, which holds
the bot token; python-telegram-bot's debug log prints whole updates) and aiohttp's access
log, which records client addresses and paths, is switched off.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import threading
import traceback
from collections.abc import Mapping, MutableMapping
from types import TracebackType
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "<redacted>"

SENSITIVE_KEYS = frozenset(
    {
        "answer",
        "body",
        "callback_data",
        "caption",
        "chat",
        "chat_id",
        "contact",
        "content",
        "document",
        "error",
        "file_id",
        "file_name",
        "file_unique_id",
        "filename",
        "first_name",
        "forward_origin",
        "from",
        "from_user",
        "ip",
        "language_code",
        "last_name",
        "latitude",
        "location",
        "longitude",
        "message",
        "password",
        "path",
        "payload",
        "peer",
        "phone",
        "phone_number",
        "photo",
        "plaintext",
        "remote",
        "reply",
        "secret",
        "text",
        "token",
        "update",
        "url",
        "user",
        "user_id",
        "username",
        "venue",
        "video",
        "voice",
    }
)
"""Keys whose values are never logged, whatever they hold."""

_TOKEN = re.compile(r"\b\d{3,}:[A-Za-z0-9_-]{20,}")
_BOT_PATH = re.compile(r"/bot[^/\s\"']+(?=/)")

_QUIET = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "telegram": logging.WARNING,
    "telegram.ext": logging.WARNING,
    "sqlalchemy": logging.WARNING,
    "alembic": logging.WARNING,
    "asyncio": logging.WARNING,
    "aiosqlite": logging.WARNING,
}


def scrub(text: str) -> str:
    """Remove bot tokens and ``/bot…`` URL segments from a string."""
    return _BOT_PATH.sub("/bot<token>", _TOKEN.sub("<token>", text))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if str(k).lower() in SENSITIVE_KEYS else _clean(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Unknown objects are rendered by type only: their repr may hold anything.
    return f"<{type(value).__name__}>"


def _key(key: object) -> str:
    """Mapping keys as text: ids (bytes) as hex, anything else by type."""
    if isinstance(key, str):
        return scrub(key)
    if isinstance(key, bytes):
        return key.hex()
    if isinstance(key, bool | int | float):
        return str(key)
    return f"<{type(key).__name__}>"


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: drop sensitive keys, scrub tokens, render no foreign repr."""
    for key in list(event_dict):
        if key in ("exc_info", "_record", "_from_structlog"):
            continue
        if key.lower() in SENSITIVE_KEYS:
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _clean(event_dict[key])
    return event_dict


def format_exception(exc: BaseException) -> str:
    """Type and frames of an exception and its chain: no message, no locals, no source."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    lines: list[str] = []
    for position, link in enumerate(reversed(chain)):
        if position:
            lines += ["", "The above led to the following:", ""]
        lines.append("Traceback (most recent call last; messages and locals withheld):")
        for frame in traceback.extract_tb(link.__traceback__):
            lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        lines.append(f"{type(link).__module__}.{type(link).__qualname__}")
    return "\n".join(lines)


def safe_exceptions(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor replacing ``exc_info`` with :func:`format_exception`."""
    exc_info = event_dict.pop("exc_info", None)
    exc: BaseException | None = None
    if isinstance(exc_info, BaseException):
        exc = exc_info
    elif isinstance(exc_info, tuple) and len(exc_info) == 3:
        exc = exc_info[1]
    elif exc_info:
        exc = sys.exception()
    if exc is not None:
        event_dict["exception"] = format_exception(exc)
    return event_dict


def _stdlib_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """For stdlib records: take the formatted message, drop the raw record."""
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord):
        event_dict["logger"] = record.name
        if record.exc_info and "exc_info" not in event_dict:
            event_dict["exc_info"] = record.exc_info
    return event_dict


def configure_logging(
    log_format: str = "console", level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Set up structlog and the stdlib root logger. Call once, at start, before any logging."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=_no_exc_info)
    structlog.configure(
        # Redacted before any handler sees the event (not only ours: a test's log capture,
        # a handler a library adds), and again in the formatter for stdlib records.
        processors=[
            *shared,
            safe_exceptions,
            redact,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _stdlib_event],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            safe_exceptions,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, logging.getLevelName(level)))
    access = logging.getLogger("aiohttp.access")
    access.disabled = True
    access.propagate = False
    logging.captureWarnings(True)
    # A handler that fails must stay silent: stdlib would print the raw, unredacted record.
    logging.raiseExceptions = False
    sys.excepthook = _excepthook
    sys.unraisablehook = _unraisablehook
    threading.excepthook = _thread_excepthook


def _no_exc_info(sio: TextIO, exc_info: Any) -> None:
    """ConsoleRenderer hook: exceptions were already rendered safely, never again here."""


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    structlog.get_logger("intake").critical("uncaught exception", exc_info=exc)


def _unraisablehook(args: Any) -> None:
    """Exceptions in ``__del__`` and finalisers: CPython would print message and object."""
    if args.exc_value is not None:
        structlog.get_logger("intake").error("unraisable exception", exc_info=args.exc_value)


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        structlog.get_logger("intake").critical(
            "uncaught exception in thread", exc_info=args.exc_value
        )


def asyncio_exception_handler(
    loop: asyncio.AbstractEventLoop, context: MutableMapping[str, Any]
) -> None:
    """Event-loop handler: the default one logs task and exception reprs, which may hold
    plaintext; this one logs the exception's type and frames only."""
    exc = context.get("exception")
    structlog.get_logger("intake").error(
        "unhandled error in event loop", exc_info=exc if isinstance(exc, BaseException) else None
    )

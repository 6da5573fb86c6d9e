"""Logging hygiene: redaction, token scrubbing, safe exception rendering, quiet third parties,
process-wide hooks and process hardening (ARCHITECTURE.md, "Hygiene that must hold
everywhere").

Every check that something is absent looks for a per-run canary with the scanner from
``tests/canary.py``, which also catches JSON-escaped and other encodings of it.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import secrets
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from canary import Canary, preserved_process_state, scan_text

from intake_bot.crypto import Plaintext, Secret
from intake_bot.logging import (
    REDACTED,
    SENSITIVE_KEYS,
    asyncio_exception_handler,
    configure_logging,
    format_exception,
    redact,
    scrub,
)

TAG = secrets.token_hex(4)
ANSWER = f"CANARY-{TAG}-Qardaşım döyülüb, ağır xəstədir, şahid çağırın"
TOKEN = f"123456789:AAE-CANARYTOKEN{secrets.token_hex(11)}"
USER_ID = 900_000_000_000 + secrets.randbelow(99_999_999_999)
CANARIES = [
    Canary("answer", ANSWER),
    Canary("token", TOKEN),
    Canary.of_int("user-id", USER_ID),
    Canary("tag", f"CANARY-{TAG}"),
]
FORMATS = ["json", "console"]


@pytest.fixture(autouse=True)
def process_state() -> Iterator[None]:
    with preserved_process_state():
        yield


def configured(log_format: str = "json", level: str = "DEBUG") -> io.StringIO:
    stream = io.StringIO()
    configure_logging(log_format, level, stream=stream)
    return stream


def assert_no_canary(text: str, where: str = "log output") -> None:
    scan_text(text, CANARIES, where).assert_clean()


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def fails_holding_plaintext(answer: str) -> None:
    """A handler that fails with the answer in a local and in the exception message."""
    reply = f"we saved: {answer}"
    raise ValueError(f"could not store {answer} ({reply})")


def caught(answer: str = ANSWER) -> ValueError:
    try:
        fails_holding_plaintext(answer)
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


# Redaction of sensitive keys.


@pytest.mark.parametrize("key", sorted(SENSITIVE_KEYS))
def test_every_sensitive_key_is_redacted_by_the_processor(key: str) -> None:
    event = redact(None, "info", {"event": "e", key: ANSWER, key.upper(): USER_ID})
    assert event == {"event": "e", key: REDACTED, key.upper(): REDACTED}


@pytest.mark.parametrize("log_format", FORMATS)
@pytest.mark.parametrize(
    "key", ["answer", "text", "file_name", "user_id", "username", "token", "chat_id", "password"]
)
def test_sensitive_keys_are_redacted_in_output(key: str, log_format: str) -> None:
    stream = configured(log_format)
    structlog.get_logger("intake").info("received", **{key: ANSWER})
    structlog.get_logger("intake").info("received", **{key: USER_ID})
    output = stream.getvalue()
    assert_no_canary(output)
    assert output.count(REDACTED) == 2
    if log_format == "json":
        assert [r[key] for r in records(stream)] == [REDACTED, REDACTED]


def test_sensitive_keys_match_in_any_case() -> None:
    stream = configured()
    structlog.get_logger("intake").info("received", Text=ANSWER, USER_ID=USER_ID, FileName=ANSWER)
    (record,) = records(stream)
    assert record["Text"] == record["USER_ID"] == record["FileName"] == REDACTED
    assert_no_canary(stream.getvalue())


def test_sensitive_keys_are_redacted_in_nested_values() -> None:
    stream = configured()
    structlog.get_logger("intake").info(
        "nested",
        details={
            "text": ANSWER,
            "ok": "kept",
            "inner": {"user_id": USER_ID, "count": 3, "deeper": {"token": TOKEN}},
            "items": [{"answer": ANSWER}, ("t", {"username": ANSWER})],
        },
    )
    (record,) = records(stream)
    assert record["details"] == {
        "text": REDACTED,
        "ok": "kept",
        "inner": {"user_id": REDACTED, "count": 3, "deeper": {"token": REDACTED}},
        "items": [{"answer": REDACTED}, ["t", {"username": REDACTED}]],
    }
    assert_no_canary(stream.getvalue())


def test_context_variables_are_redacted() -> None:
    stream = configured()
    structlog.contextvars.bind_contextvars(user_id=USER_ID, request_id="r-1")
    structlog.get_logger("intake").info("with context")
    (record,) = records(stream)
    assert record["user_id"] == REDACTED
    assert record["request_id"] == "r-1"
    assert_no_canary(stream.getvalue())


def test_harmless_values_are_kept() -> None:
    stream = configured()
    structlog.get_logger("intake").info("kept", count=3, ratio=0.5, flag=True, none=None, s="x")
    (record,) = records(stream)
    assert (record["count"], record["ratio"], record["flag"], record["none"], record["s"]) == (
        3,
        0.5,
        True,
        None,
        "x",
    )


# Bot tokens.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TOKEN, "<token>"),
        (f"token is {TOKEN}.", "token is <token>."),
        (f"https://api.telegram.org/bot{TOKEN}/getMe", "https://api.telegram.org/bot<token>/getMe"),
        (
            f"https://api.telegram.org/file/bot{TOKEN}/documents/file_7.pdf",
            "https://api.telegram.org/file/bot<token>/documents/file_7.pdf",
        ),
        ("http://127.0.0.1:8081/botSHORT-TOKEN/getMe", "http://127.0.0.1:8081/bot<token>/getMe"),
        ("nothing to see at 12:30", "nothing to see at 12:30"),
    ],
)
def test_scrub(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize("log_format", FORMATS)
def test_tokens_are_scrubbed_from_event_strings_and_values(log_format: str) -> None:
    stream = configured(log_format)
    log = structlog.get_logger("intake")
    log.info(f"calling https://api.telegram.org/bot{TOKEN}/getMe")
    log.info("calling", endpoint=f"https://api.telegram.org/bot{TOKEN}/getMe", tokens=[TOKEN])
    output = stream.getvalue()
    assert_no_canary(output)
    assert output.count("bot<token>") == 2


@pytest.mark.parametrize("log_format", FORMATS)
@pytest.mark.parametrize("name", ["httpx", "telegram.ext.Updater", "some.library"])
def test_tokens_are_scrubbed_from_stdlib_records(name: str, log_format: str) -> None:
    stream = configured(log_format)
    url = f"https://api.telegram.org/bot{TOKEN}/getUpdates"
    logging.getLogger(name).warning('HTTP Request: POST %s "HTTP/1.1 502 Bad Gateway"', url)
    logging.getLogger(name).error(f"Error while getting Updates: {url} failed with {TOKEN}")
    output = stream.getvalue()
    assert_no_canary(output)
    assert "HTTP Request: POST https://api.telegram.org/bot<token>/getUpdates" in output
    assert "failed with <token>" in output
    assert output.count(name) == 2


# Foreign objects.


class Revealing:
    """An object whose repr and str give away content."""

    def __repr__(self) -> str:
        return f"Revealing({ANSWER})"

    __str__ = __repr__


@pytest.mark.parametrize("log_format", FORMATS)
def test_unknown_objects_are_rendered_by_type_name_only(log_format: str) -> None:
    stream = configured(log_format)
    structlog.get_logger("intake").info(
        "objects",
        obj=Revealing(),
        raw=ANSWER.encode(),
        secret=Secret(ANSWER.encode()),
        plain=Plaintext.from_text(ANSWER),
        inside=[Revealing(), {"deep": Revealing()}],
        members={ANSWER},
    )
    output = stream.getvalue()
    assert_no_canary(output)
    for rendered in ("<Revealing>", "<bytes>", "<set>"):
        assert rendered in output
    if log_format == "json":
        (record,) = records(stream)
        assert record["obj"] == "<Revealing>"
        assert record["plain"] == "<Plaintext>"
        assert record["inside"] == ["<Revealing>", {"deep": "<Revealing>"}]


def test_an_object_as_the_event_is_rendered_by_type_name() -> None:
    stream = configured()
    structlog.get_logger("intake").info(Revealing())
    (record,) = records(stream)
    assert record["event"] == "<Revealing>"


# Exceptions.


def test_format_exception_has_type_and_frames_but_no_message() -> None:
    exc = caught()
    exc.add_note(f"note: {ANSWER}")
    rendered = format_exception(exc)
    assert_no_canary(rendered)
    assert rendered.splitlines()[-1] == "builtins.ValueError"
    assert "in caught" in rendered
    assert "in fails_holding_plaintext" in rendered
    assert f'File "{__file__}", line ' in rendered
    assert "could not store" not in rendered  # no message, not even its fixed part
    assert "raise ValueError" not in rendered  # no source lines


@pytest.mark.parametrize("log_format", FORMATS)
def test_logged_exceptions_show_type_and_frames_but_neither_message_nor_locals(
    log_format: str,
) -> None:
    stream = configured(log_format)
    log = structlog.get_logger("intake")
    answer = ANSWER
    try:
        fails_holding_plaintext(answer)
    except ValueError as exc:
        log.exception("handler failed")
        log.error("handler failed, explicit", exc_info=exc)  # noqa: TRY400
        log.error("handler failed, tuple", exc_info=(type(exc), exc, exc.__traceback__))  # noqa: TRY400
        logging.getLogger("x").exception("stdlib handler failed")
        logging.getLogger("x").error("stdlib with exc", exc_info=exc)  # noqa: TRY400
    output = stream.getvalue()
    assert_no_canary(output)
    assert output.count("builtins.ValueError") == 5
    assert output.count("in fails_holding_plaintext") == 5
    assert "could not store" not in output
    assert "answer =" not in output
    assert "we saved" not in output
    if log_format == "json":
        assert all("exception" in record for record in records(stream))
        assert "exc_info" not in output


@pytest.mark.parametrize("log_format", FORMATS)
def test_chained_exceptions_show_both_types(log_format: str) -> None:
    stream = configured(log_format)
    log = structlog.get_logger("intake")
    try:
        try:
            fails_holding_plaintext(ANSWER)
        except ValueError as exc:
            raise KeyError(ANSWER) from exc
    except KeyError:
        log.exception("explicit cause")
    try:
        try:
            fails_holding_plaintext(ANSWER)
        except ValueError:
            raise LookupError(ANSWER)  # noqa: B904  # the implicit context is the point
    except LookupError:
        log.exception("implicit context")
    output = stream.getvalue()
    assert_no_canary(output)
    explicit, implicit = output.split("implicit context")
    assert explicit.index("builtins.ValueError") < explicit.index("builtins.KeyError")
    assert implicit.index("builtins.ValueError") < implicit.index("builtins.LookupError")
    assert output.count("The above led to the following:") == 2


def test_suppressed_context_is_not_shown() -> None:
    try:
        try:
            fails_holding_plaintext(ANSWER)
        except ValueError:
            raise KeyError(ANSWER) from None
    except KeyError as exc:
        rendered = format_exception(exc)
    assert "ValueError" not in rendered
    assert rendered.endswith("builtins.KeyError")


def test_a_cyclic_exception_chain_terminates() -> None:
    first, second = ValueError(ANSWER), KeyError(ANSWER)
    first.__cause__, second.__cause__ = second, first
    rendered = format_exception(first)
    assert rendered.count("builtins.") == 2
    assert_no_canary(rendered)


# Third-party loggers.


@pytest.mark.parametrize(
    "name",
    [
        "httpx",
        "httpcore",
        "httpcore.connection",
        "telegram",
        "telegram.ext",
        "telegram.ext.Application",
        "telegram.Bot",
        "sqlalchemy",
        "sqlalchemy.engine",
        "sqlalchemy.engine.Engine",
        "sqlalchemy.pool",
    ],
)
def test_noisy_loggers_are_held_at_warning_even_at_debug(name: str) -> None:
    stream = configured("json", "DEBUG")
    logger = logging.getLogger(name)
    assert logger.getEffectiveLevel() >= logging.WARNING
    logger.info("HTTP Request: POST https://api.telegram.org/bot%s/getUpdates", TOKEN)
    logger.debug("update %s", {"message": {"text": ANSWER, "from": {"id": USER_ID}}})
    assert stream.getvalue() == ""
    logger.warning("still shown")
    assert [r["event"] for r in records(stream)] == ["still shown"]


def test_our_own_debug_logs_pass_at_debug() -> None:
    stream = configured("json", "DEBUG")
    structlog.get_logger("intake").debug("shown")
    assert [r["event"] for r in records(stream)] == ["shown"]


def test_aiohttp_access_log_is_disabled() -> None:
    stream = configured("json", "DEBUG")
    access = logging.getLogger("aiohttp.access")
    assert access.disabled
    assert not access.propagate
    access.error('203.0.113.7 [29/Nov/2026] "GET /reports/%s HTTP/1.1" 200', ANSWER)
    assert stream.getvalue() == ""


# Process-wide hooks.


@pytest.mark.parametrize("log_format", FORMATS)
def test_sys_excepthook_uses_the_safe_renderer(log_format: str) -> None:
    stream = configured(log_format)
    exc = caught()
    sys.excepthook(type(exc), exc, exc.__traceback__)
    output = stream.getvalue()
    assert_no_canary(output)
    assert "uncaught exception" in output
    assert "builtins.ValueError" in output
    assert "in fails_holding_plaintext" in output


@pytest.mark.parametrize("log_format", FORMATS)
def test_threading_excepthook_uses_the_safe_renderer(log_format: str) -> None:
    stream = configured(log_format)
    exc = caught()
    threading.excepthook(
        threading.ExceptHookArgs([type(exc), exc, exc.__traceback__, threading.current_thread()])
    )
    output = stream.getvalue()
    assert_no_canary(output)
    assert "uncaught exception in thread" in output
    assert "builtins.ValueError" in output
    assert "in fails_holding_plaintext" in output


def test_an_exception_in_a_real_thread_is_rendered_safely() -> None:
    stream = configured()
    worker = threading.Thread(target=fails_holding_plaintext, args=(ANSWER,), name=ANSWER)
    worker.start()
    worker.join()
    output = stream.getvalue()
    assert_no_canary(output)
    assert "uncaught exception in thread" in output
    assert "builtins.ValueError" in output


@pytest.mark.parametrize("log_format", FORMATS)
async def test_asyncio_exception_handler_logs_no_message_text(log_format: str) -> None:
    stream = configured(log_format)
    loop = asyncio.get_running_loop()
    asyncio_exception_handler(
        loop,
        {
            "message": f"Task exception was never retrieved: {ANSWER}",
            "exception": caught(),
            "task": Revealing(),
            "future": Revealing(),
        },
    )
    asyncio_exception_handler(loop, {"message": f"Unclosed connection {ANSWER}"})
    output = stream.getvalue()
    assert_no_canary(output)
    assert output.count("unhandled error in event loop") == 2
    assert output.count("builtins.ValueError") == 1
    assert "Revealing" not in output


async def failing_coroutine(answer: str) -> None:
    await asyncio.sleep(0)
    fails_holding_plaintext(answer)


async def test_a_never_retrieved_task_exception_is_rendered_safely() -> None:
    stream = configured()
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(asyncio_exception_handler)
    try:
        task = loop.create_task(failing_coroutine(ANSWER))
        await asyncio.wait([task])  # waits without retrieving the exception
        del task
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
    output = stream.getvalue()
    assert_no_canary(output)
    assert "unhandled error in event loop" in output
    assert "builtins.ValueError" in output


# In a real process.


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("log_format", FORMATS)
def test_an_uncaught_exception_in_a_process_is_rendered_safely(log_format: str) -> None:
    done = run_python(
        """
        import sys
        from intake_bot.logging import configure_logging

        configure_logging(sys.argv[1], "INFO")

        def handler(answer):
            reply = "saved " + answer
            raise ValueError("bad " + answer + reply)

        handler(sys.argv[2])
        """,
        log_format,
        ANSWER,
    )
    assert done.returncode == 1
    assert_no_canary(done.stdout + done.stderr, "process output")
    assert "uncaught exception" in done.stderr
    assert "builtins.ValueError" in done.stderr
    assert "in handler" in done.stderr


def test_harden_process_disables_core_dumps_and_sets_a_private_umask(tmp_path: Path) -> None:
    done = run_python(
        """
        import json, os, resource, sys

        # Start from a permissive state, so that the result shows harden_process at work.
        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,) * 2)
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
        os.umask(0o022)
        before = resource.getrlimit(resource.RLIMIT_CORE)

        from intake_bot.hygiene import harden_process

        harden_process()
        after = resource.getrlimit(resource.RLIMIT_CORE)
        umask = os.umask(0o077)
        with open(os.path.join(sys.argv[1], "probe"), "w") as handle:
            handle.write("x")
        mode = os.stat(os.path.join(sys.argv[1], "probe")).st_mode & 0o777
        print(json.dumps({"before": before, "after": after, "umask": umask, "mode": mode}))
        """,
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert tuple(result["after"]) == (0, 0)
    assert result["umask"] == 0o077
    assert result["mode"] == 0o600


# Known gaps: each test states the expected behaviour and fails until it is fixed.


def test_unraisable_exceptions_are_rendered_safely() -> None:
    done = run_python(
        """
        import gc, sys
        from intake_bot.logging import configure_logging

        configure_logging("json", "INFO")

        class Draft:
            def __init__(self, answer):
                self.answer = answer
            def __del__(self):
                raise ValueError("could not wipe " + self.answer)

        Draft(sys.argv[1])
        gc.collect()
        """,
        ANSWER,
    )
    assert done.returncode == 0, done.stderr
    assert "ValueError" in done.stderr
    assert_no_canary(done.stdout + done.stderr, "process output")


@pytest.mark.parametrize("trigger", ["bytes-key", "closed-stream"])
def test_a_failing_log_handler_does_not_print_the_raw_event(
    trigger: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = configured("json")
    log = structlog.get_logger("intake")
    if trigger == "bytes-key":
        # Report and key ids are bytes: a dict keyed by them cannot be JSON-encoded.
        log.info("sealed", text=ANSWER, user_id=USER_ID, keys={b"\x01" * 16: 1})
    else:
        stream.close()
        log.info("received", text=ANSWER, user_id=USER_ID)
    assert_no_canary(capsys.readouterr().err, "stderr")
    if not stream.closed:
        assert_no_canary(stream.getvalue())


def test_a_telegram_message_logged_under_a_neutral_key_is_redacted() -> None:
    stream = configured()
    message = {
        "message_id": 7,
        "from": {"id": USER_ID, "is_bot": False, "first_name": "A", "username": "u"},
        "chat": {"id": USER_ID, "type": "private"},
        "caption": ANSWER,
        "location": {"latitude": 40.409264, "longitude": 49.867092},
        "document": {"file_id": f"BQACAgIAAxkBAAI-CANARY-{TAG}", "file_name": "x.mp4"},
    }
    log = structlog.get_logger("intake")
    log.info("incoming", data=message)
    log.info("incoming photo", caption=ANSWER)
    output = stream.getvalue()
    assert_no_canary(output)
    assert "49.867092" not in output


def test_preserved_process_state_undoes_configure_logging() -> None:
    """The helper every logging test relies on really restores the process."""
    root = logging.getLogger()
    before = (
        root.handlers[:],
        root.level,
        logging.getLogger("httpx").level,
        logging.getLogger("aiohttp.access").disabled,
        sys.excepthook,
        threading.excepthook,
        structlog.is_configured(),
        tempfile.tempdir,
    )
    with preserved_process_state():
        configure_logging("json", "DEBUG", stream=io.StringIO())
        tempfile.tempdir = "/nonexistent"
        assert sys.excepthook is not before[4]
    after = (
        root.handlers[:],
        root.level,
        logging.getLogger("httpx").level,
        logging.getLogger("aiohttp.access").disabled,
        sys.excepthook,
        threading.excepthook,
        structlog.is_configured(),
        tempfile.tempdir,
    )
    assert after == before

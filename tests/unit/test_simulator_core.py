"""The simulator's pure parts: entity offsets, parameter coercion, markup checks, image
headers, the update queue's long-polling rules, the clock and the file store.

No HTTP here; the update queue runs on the test's event loop.
"""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

import pytest

from intake_bot.simulator.clock import Clock
from intake_bot.simulator.entities import command_entities, utf16_len
from intake_bot.simulator.errors import SimulatorError
from intake_bot.simulator.files import FileStore, extension_for
from intake_bot.simulator.markup import find_button, parse_reply_markup
from intake_bot.simulator.media import image_size
from intake_bot.simulator.params import Params
from intake_bot.simulator.updates import FIRST_UPDATE_ID, UpdateQueue
from intake_bot.simulator.wakeup import Wakeup

# -- entities -------------------------------------------------------------------------------


def test_command_offsets_count_utf16_code_units() -> None:
    # The emoji is one code point but two UTF-16 units; Azerbaijani letters are one each.
    text = "🙂 şikayət /start@intake_test_bot now"
    (entity,) = command_entities(text)
    assert entity == {"type": "bot_command", "offset": 11, "length": 22}
    assert text.index("/") == 10  # in code points; the emoji is two UTF-16 units
    assert utf16_len("🙂") == 2


@pytest.mark.parametrize(
    ("text", "commands"),
    [
        ("/start", ["/start"]),
        ("/start payload", ["/start"]),
        ("please /help me", ["/help"]),
        ("a/b not a command", []),
        ("/usr/bin is a path", []),
        ("/", []),
        ("/" + "x" * 33, []),
        ("/stop, then /go", ["/stop", "/go"]),
    ],
)
def test_command_detection(text: str, commands: list[str]) -> None:
    found = [
        text.encode("utf-16-le")[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode(
            "utf-16-le"
        )
        for e in command_entities(text)
    ]
    assert found == commands


# -- parameters -----------------------------------------------------------------------------


def test_params_take_form_strings_and_json_values_alike() -> None:
    form = Params(
        {
            "chat_id": "7000000001",
            "protect_content": "true",
            "reply_markup": '{"remove_keyboard": true}',
            "latitude": "40.5",
        }
    )
    typed = Params(
        {
            "chat_id": 7000000001,
            "protect_content": True,
            "reply_markup": {"remove_keyboard": True},
            "latitude": 40.5,
        }
    )
    for p in (form, typed):
        assert p.integer("chat_id") == 7000000001
        assert p.flag("protect_content") is True
        assert p.json("reply_markup") == {"remove_keyboard": True}
        assert p.number("latitude") == 40.5
        assert p.integer("missing") is None
        assert p.flag("missing") is False


@pytest.mark.parametrize(
    ("getter", "value"),
    [
        ("integer", "12a"),
        ("integer", True),
        ("integer", 1.5),
        ("flag", "yes"),
        ("number", "nan"),
        ("number", "inf"),
        ("json", "{not json"),
        ("text", {"a": 1}),
        ("base64", "***"),
    ],
)
def test_params_refuse_bad_values_with_400(getter: str, value: object) -> None:
    with pytest.raises(SimulatorError) as refused:
        getattr(Params({"field": value}), getter)("field")
    assert refused.value.status == 400
    assert refused.value.description.startswith("Bad Request: ")


# -- markup ---------------------------------------------------------------------------------


def _inline(**button: Any) -> dict[str, Any]:
    return {"inline_keyboard": [[{"text": "B", **button}]]}


@pytest.mark.parametrize(
    "markup",
    [
        _inline(callback_data="x"),
        _inline(url="https://example.org"),
        {"keyboard": [["Bəli", {"text": "Xeyr"}]], "one_time_keyboard": True},
        {"remove_keyboard": True},
        {"force_reply": True},
    ],
)
def test_valid_markup_is_kept_as_sent(markup: dict[str, Any]) -> None:
    assert parse_reply_markup(markup) == markup


@pytest.mark.parametrize(
    ("markup", "detail"),
    [
        (_inline(), "Text buttons are unallowed"),
        (_inline(callback_data="x", url="https://example.org"), "Text buttons are unallowed"),
        (_inline(callback_data="x" * 65), "BUTTON_DATA_INVALID"),
        (_inline(callback_data="ə" * 33), "BUTTON_DATA_INVALID"),  # 66 bytes in UTF-8
        ({"inline_keyboard": [{"text": "not a row"}]}, "rows must be arrays"),
        ({"keyboard": [[{"no_text": 1}]]}, "keyboard button"),
        ({"remove_keyboard": False}, "can't parse reply keyboard markup"),
        ("[]", "can't parse reply keyboard markup"),
    ],
)
def test_invalid_markup_is_refused_like_telegram(markup: object, detail: str) -> None:
    with pytest.raises(SimulatorError, match=detail) as refused:
        parse_reply_markup(markup)
    assert refused.value.status == 400


def test_buttons_are_found_by_data_or_text() -> None:
    markup = {
        "inline_keyboard": [
            [{"text": "Link", "url": "https://example.org"}],
            [{"text": "Bəli", "callback_data": "yes"}, {"text": "Xeyr", "callback_data": "no"}],
        ]
    }
    assert find_button(markup, data="no", text=None) == {"text": "Xeyr", "callback_data": "no"}
    assert find_button(markup, data=None, text="Bəli") == {"text": "Bəli", "callback_data": "yes"}
    assert find_button(markup, data="maybe", text=None) is None
    assert find_button(markup, data=None, text="Link") is None  # not a callback button
    assert find_button({"keyboard": [["Bəli"]]}, data=None, text="Bəli") is None


# -- image headers and files ----------------------------------------------------------------


def test_image_size_reads_png_and_jpeg_headers() -> None:
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I4sII", 13, b"IHDR", 1600, 1200) + b"\0" * 8
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0" + b"\0" * 9
    sof0 = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, 480, 640) + b"\0" * 12
    jpeg = b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"
    assert image_size(png) == (1600, 1200)
    assert image_size(jpeg) == (640, 480)
    assert image_size(b"GIF89a" + b"\0" * 20) is None
    assert image_size(b"\xff\xd8\x00garbage-after-the-marker") is None


def test_file_paths_are_given_only_by_get_file_and_only_once() -> None:
    files = FileStore()
    stored = files.add(b"data", folder="documents", extension=".pdf")
    assert stored.file_path is None
    assert files.by_path("documents/file_1.pdf") is None
    path = files.reveal_path(stored)
    assert path == "documents/file_1.pdf"
    assert files.reveal_path(stored) == path
    assert files.by_path(path) is stored
    assert len(stored.file_unique_id) < len(stored.file_id)


@pytest.mark.parametrize(
    ("name", "mime", "expected"),
    [
        ("Protokol.PDF", None, "pdf"),
        ("no-extension", "image/png", "png"),
        ("weird.name.with spaces", None, "bin"),
        (None, None, "bin"),
    ],
)
def test_extension_for(name: str | None, mime: str | None, expected: str) -> None:
    assert extension_for(name, mime, "bin") == expected


def test_the_clock_only_moves_forward() -> None:
    clock = Clock()
    start = clock.now()
    assert abs(start - time.time()) < 2
    assert clock.advance(49 * 3600) >= start + 49 * 3600
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


# -- the update queue -----------------------------------------------------------------------


async def _get(queue: UpdateQueue, **options: Any) -> list[int]:
    arguments: dict[str, Any] = {
        "offset": None,
        "limit": 100,
        "poll_seconds": 0.0,
        "allowed_updates": None,
    }
    arguments.update(options)
    return [update["update_id"] for update in await queue.get(**arguments)]


async def test_updates_stay_until_an_offset_confirms_them() -> None:
    queue = UpdateQueue(Wakeup())
    ids = [FIRST_UPDATE_ID + n for n in range(4)]
    assert [queue.push("message", {"n": n}) for n in range(4)] == ids
    assert await _get(queue, limit=2) == ids[:2]
    assert await _get(queue) == ids  # not confirmed yet: delivered again
    assert await _get(queue, offset=ids[2]) == ids[2:]
    assert await _get(queue, offset=-1) == ids[3:]  # keeps only the last one
    assert await _get(queue, offset=ids[3] + 1) == []
    assert queue.pending == 0


async def test_a_long_poll_returns_as_soon_as_an_update_arrives() -> None:
    queue = UpdateQueue(Wakeup())
    poll = asyncio.create_task(_get(queue, poll_seconds=10))
    await asyncio.sleep(0.05)
    assert not poll.done()
    started = time.monotonic()
    update_id = queue.push("message", {})
    assert await poll == [update_id]
    assert time.monotonic() - started < 0.5


async def test_a_newer_poll_ends_an_older_one_with_409() -> None:
    queue = UpdateQueue(Wakeup())
    older = asyncio.create_task(_get(queue, poll_seconds=10))
    await asyncio.sleep(0.01)
    newer = asyncio.create_task(_get(queue, poll_seconds=0.05))
    with pytest.raises(SimulatorError, match="terminated by other getUpdates request") as ended:
        await older
    assert ended.value.status == 409
    assert await newer == []


async def test_allowed_updates_persist_and_filter() -> None:
    queue = UpdateQueue(Wakeup())
    queue.push("callback_query", {})
    assert await _get(queue, allowed_updates=["message"]) == []  # the press is dropped
    assert queue.push("callback_query", {}) is None
    kept = queue.push("message", {})
    assert await _get(queue) == [kept]  # omitted: the previous setting holds
    assert await _get(queue, allowed_updates=[]) == [kept]  # empty: Telegram's default
    assert queue.push("callback_query", {}) is not None
    assert queue.push("chat_member", {}) is None  # not in the default


async def test_closing_releases_waiting_polls() -> None:
    queue = UpdateQueue(Wakeup())
    poll = asyncio.create_task(_get(queue, poll_seconds=10))
    await asyncio.sleep(0.01)
    queue.close()
    async with asyncio.timeout(0.5):
        assert await poll == []

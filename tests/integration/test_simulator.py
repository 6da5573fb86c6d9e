"""The Bot API simulator against the real python-telegram-bot ``Application``, over HTTP.

Each test starts the simulator on 127.0.0.1:0 and a real ``Application`` polling it, plays
a user through the control API and checks both sides: what PTB parsed and handed to the
handlers, and what the simulator's transcript recorded. No network, no mocks.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageOriginChannel,
    MessageOriginChat,
    MessageOriginHiddenUser,
    MessageOriginUser,
    Update,
)
from telegram.error import BadRequest, Forbidden
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    TypeHandler,
)

from intake_bot.simulator import AlbumItem, SimulatorClient, SimulatorServer, create_app
from intake_bot.simulator.client import SimulatorClientError

TOKEN = "123456789:AAE-simulated-intake-bot-token-0000"
DOWNLOAD_LIMIT = 64 * 1024
"""Small, so that the "file is too big" path needs no 20 MB upload."""

BotApp = Application[Any, Any, Any, Any, Any, Any]


def _bytes(size: int, seed: str = "evidence") -> bytes:
    return hashlib.shake_256(seed.encode()).digest(size)


def _png(width: int, height: int, size: int = 4096) -> bytes:
    """A PNG signature and IHDR with these dimensions, padded (not a decodable image)."""
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I4sII", 13, b"IHDR", width, height)
    return header + _bytes(size - len(header), "png")


@dataclass
class Recorder:
    """What the bot's handlers saw, for the test to wait on."""

    updates: asyncio.Queue[Update] = field(default_factory=asyncio.Queue)
    replies: list[Message] = field(default_factory=list)
    presses: list[str | None] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    """Exceptions in handlers and in polling: PTB only logs them, so they are collected."""

    async def next(self, accept: Callable[[Update], bool] = lambda _: True) -> Update:
        """The next update the bot received that ``accept`` takes (others are skipped)."""
        async with asyncio.timeout(5):
            while True:
                update = await self.updates.get()
                if accept(update):
                    return update


@pytest.fixture
async def server() -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer(create_app(TOKEN, download_limit=DOWNLOAD_LIMIT)) as running:
        yield running


@pytest.fixture
async def sim(server: SimulatorServer) -> AsyncIterator[SimulatorClient]:
    async with SimulatorClient(server.url) as client:
        yield client


@pytest.fixture
async def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def app(server: SimulatorServer, recorder: Recorder) -> AsyncIterator[BotApp]:
    """A real PTB Application polling the simulator: /start answers with a protected
    inline keyboard; a button press is answered and its message edited."""

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        recorder.updates.put_nowait(update)

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Başla", callback_data="begin")]])
        reply = await update.effective_message.reply_text(
            "Salam! Hesabatı başlayaq?", reply_markup=keyboard, protect_content=True
        )
        recorder.replies.append(reply)

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        recorder.presses.append(query.data)
        await query.answer("OK")
        if query.data == "begin":
            await query.edit_message_text("Başladıq.")

    application: BotApp = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(server.bot_api_url)
        .base_file_url(server.file_url)
        .build()
    )

    async def failed(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if context.error is not None:
            recorder.errors.append(context.error)

    application.add_handler(TypeHandler(Update, record), group=-1)
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CallbackQueryHandler(pressed))
    application.add_error_handler(failed)
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(
            poll_interval=0, timeout=1, error_callback=recorder.errors.append
        )
        try:
            yield application
        finally:
            await application.updater.stop()
            await application.stop()
    assert recorder.errors == []


async def _start(sim: SimulatorClient, user_id: int) -> tuple[int, dict[str, Any]]:
    """The user sends /start; returns its message id and the bot's reply (transcript)."""
    sent = await sim.send_text(user_id, "/start")
    (reply,) = await sim.wait_for_bot_messages(user_id, after=sent.message_id)
    return sent.message_id, reply


async def test_start_answers_with_a_protected_inline_keyboard(
    app: BotApp, sim: SimulatorClient, recorder: Recorder
) -> None:
    assert app.bot.username == "intake_test_bot"
    user = await sim.create_user("Aysel", username="aysel_m", language_code="az")

    sent = await sim.send_text(user["id"], "/start")
    assert sent.message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    (reply,) = await sim.wait_for_bot_messages(user["id"], after=sent.message_id)

    assert reply["direction"] == "out"
    assert reply["text"] == "Salam! Hesabatı başlayaq?"
    assert reply["protect_content"] is True
    assert reply["reply_markup"] == {
        "inline_keyboard": [[{"text": "Başla", "callback_data": "begin"}]]
    }
    (parsed,) = recorder.replies
    assert parsed.has_protected_content is True
    assert parsed.chat.id == user["id"]
    assert parsed.from_user is not None
    assert parsed.from_user.is_bot
    assert parsed.reply_markup is not None
    assert parsed.reply_markup.inline_keyboard[0][0].callback_data == "begin"
    update = await recorder.next()
    assert update.message is not None
    assert update.message.from_user is not None
    assert update.message.from_user.language_code == "az"


async def test_a_button_press_reaches_the_callback_handler(
    app: BotApp, sim: SimulatorClient, recorder: Recorder
) -> None:
    user = await sim.create_user("Rəşad")
    _, reply = await _start(sim, user["id"])

    press = await sim.press_button(user["id"], reply["message_id"], "begin")
    update = await recorder.next(lambda u: u.callback_query is not None)
    assert update.callback_query is not None
    assert update.callback_query.data == "begin"
    assert update.callback_query.chat_instance
    await sim.wait_idle()

    answer = await sim.callback_answer(press.query_id)
    assert answer["answered"] is True
    assert answer["text"] == "OK"
    transcript = await sim.transcript(user["id"])
    edited = transcript[-1]
    assert edited["text"] == "Başladıq."
    assert edited["edit_date"] is not None
    assert "reply_markup" not in edited["message"]  # an edit that omits it drops the keyboard

    # A forged press reaches the bot as well, which must treat the data as hostile.
    await sim.press_button(user["id"], reply["message_id"], "../admin", forge=True)
    forged = await recorder.next(lambda u: u.callback_query is not None)
    assert forged.callback_query is not None
    assert forged.callback_query.data == "../admin"
    with pytest.raises(SimulatorClientError) as refused:
        await sim.press_button(user["id"], reply["message_id"], "../admin")
    assert refused.value.status == 400  # the keyboard is gone: an honest client cannot


async def test_a_document_is_downloaded_via_get_file_and_an_http_stream(
    app: BotApp, server: SimulatorServer, sim: SimulatorClient, recorder: Recorder
) -> None:
    user = await sim.create_user("Leyla")
    content = _bytes(50_000)
    await sim.send_document(
        user["id"], content, file_name="protokol.pdf", mime_type="application/pdf", multipart=True
    )
    update = await recorder.next()
    assert update.message is not None
    document = update.message.document
    assert document is not None
    assert (document.file_name, document.mime_type) == ("protokol.pdf", "application/pdf")
    assert document.file_size == len(content)

    telegram_file = await app.bot.get_file(document.file_id)
    assert telegram_file.file_path is not None
    assert telegram_file.file_path.startswith(f"{server.file_url}{TOKEN}/documents/")
    assert telegram_file.file_path.endswith(".pdf")
    received = bytearray()
    async with (
        httpx.AsyncClient() as http,
        http.stream("GET", telegram_file.file_path) as response,
    ):
        assert response.status_code == 200
        async for chunk in response.aiter_bytes():
            received += chunk
    assert bytes(received) == content

    # The same through base64 in JSON.
    await sim.send_document(user["id"], b"%PDF-1.7 tiny", file_name="a.pdf")
    second = await recorder.next()
    assert second.message is not None
    assert second.message.document is not None
    assert second.message.document.file_size == 13


async def test_a_photo_arrives_in_several_sizes(
    app: BotApp, sim: SimulatorClient, recorder: Recorder
) -> None:
    user = await sim.create_user("Elvin")
    original = _png(1600, 1200)
    await sim.send_photo(user["id"], original, caption="Kamera")
    update = await recorder.next()
    assert update.message is not None
    sizes = update.message.photo
    assert [(s.width, s.height) for s in sizes] == [
        (90, 68),
        (320, 240),
        (800, 600),
        (1280, 960),
        (1600, 1200),
    ]
    assert [s.file_size for s in sizes] == sorted(s.file_size or 0 for s in sizes)
    assert len({s.file_unique_id for s in sizes}) == len(sizes)
    assert update.message.caption == "Kamera"
    largest = await app.bot.get_file(sizes[-1].file_id)
    assert bytes(await largest.download_as_bytearray()) == original


async def test_delete_messages_marks_them_deleted_in_the_transcript(
    app: BotApp, sim: SimulatorClient
) -> None:
    user = await sim.create_user("Nərgiz")
    start_id, reply = await _start(sim, user["id"])
    kept = await sim.send_text(user["id"], "this one stays")

    assert await app.bot.delete_messages(user["id"], [start_id, reply["message_id"], 999])
    flags = {m["message_id"]: m["deleted"] for m in await sim.transcript(user["id"])}
    assert flags == {start_id: True, reply["message_id"]: True, kept.message_id: False}
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await app.bot.delete_message(user["id"], start_id)


async def test_after_48_hours_a_message_cannot_be_deleted(
    app: BotApp, sim: SimulatorClient
) -> None:
    user = await sim.create_user("Tural")
    old = await sim.send_text(user["id"], "sent two days ago")
    older = await sim.send_text(user["id"], "also old")
    await sim.advance_clock(49 * 3600)

    with pytest.raises(BadRequest, match="Message can't be deleted for everyone"):
        await app.bot.delete_message(user["id"], old.message_id)
    assert await app.bot.delete_messages(user["id"], [old.message_id, older.message_id])
    assert not any(m["deleted"] for m in await sim.transcript(user["id"]))


async def test_get_file_of_a_file_over_the_download_limit_fails(
    app: BotApp, sim: SimulatorClient, recorder: Recorder
) -> None:
    user = await sim.create_user("Samir")
    await sim.send_document(user["id"], _bytes(DOWNLOAD_LIMIT + 1), file_name="video.mp4")
    update = await recorder.next()
    assert update.message is not None
    assert update.message.document is not None
    with pytest.raises(BadRequest, match="File is too big"):
        await app.bot.get_file(update.message.document.file_id)


async def test_an_album_arrives_as_several_updates_with_one_media_group_id(
    app: BotApp, sim: SimulatorClient, recorder: Recorder
) -> None:
    user = await sim.create_user("Günay")
    items = [AlbumItem("photo", _png(800, 600, 1000 + i)) for i in range(3)]
    sent = await sim.send_album(user["id"], items)

    updates = [await recorder.next() for _ in items]
    messages = [u.message for u in updates if u.message is not None]
    assert len(messages) == 3
    assert len({m.media_group_id for m in messages}) == 1
    assert messages[0].media_group_id is not None
    assert [m.message_id for m in messages] == [s.message_id for s in sent]
    assert len({u.update_id for u in updates}) == 3


async def test_every_other_kind_of_update_parses_in_ptb(
    app: BotApp, sim: SimulatorClient, recorder: Recorder
) -> None:
    user = await sim.create_user("Kamran", username="kamran")
    uid = user["id"]
    media = _bytes(2000, "media")
    checks: list[tuple[str, dict[str, Any], Callable[[Message], object]]] = [
        ("contact", {"phone_number": "+994501234567", "first_name": "Vəkil"},
         lambda m: m.contact and m.contact.phone_number == "+994501234567"),
        ("sticker", {"emoji": "😢"},
         lambda m: m.sticker and m.sticker.type == "regular" and not m.sticker.is_animated),
        ("location", {"latitude": 40.4093, "longitude": 49.8671},
         lambda m: m.location and round(m.location.latitude, 4) == 40.4093),
        ("poll", {"question": "Harada?", "options": ["Bakı", "Gəncə"]},
         lambda m: m.poll and [o.text for o in m.poll.options] == ["Bakı", "Gəncə"]),
        ("dice", {"emoji": "🎯"},
         lambda m: m.dice and m.dice.emoji == "🎯" and 1 <= m.dice.value <= 6),
        ("voice", {"data": media, "duration": 7},
         lambda m: m.voice and m.voice.mime_type == "audio/ogg"),
        ("audio", {"data": media, "title": "Səs"},
         lambda m: m.audio and m.audio.title == "Səs"),
        ("video", {"data": media, "caption": "/start the caption"},
         lambda m: m.video and m.caption_entities[0].type == "bot_command"),
        ("video_note", {"data": media},
         lambda m: m.video_note and m.video_note.length == 240),
        ("animation", {"data": media},
         lambda m: m.animation and m.document and m.animation.file_id == m.document.file_id),
        ("text", {"text": "fwd", "forward_origin": {"type": "user", "user_id": uid}},
         lambda m: isinstance(m.forward_origin, MessageOriginUser)),
        ("text", {"text": "fwd",
                  "forward_origin": {"type": "hidden_user", "sender_user_name": "Anonim"}},
         lambda m: isinstance(m.forward_origin, MessageOriginHiddenUser)),
        ("text", {"text": "fwd",
                  "forward_origin": {"type": "channel", "title": "Xəbərlər", "message_id": 7}},
         lambda m: isinstance(m.forward_origin, MessageOriginChannel)
         and m.forward_origin.message_id == 7),
        ("text", {"text": "fwd", "forward_origin": {"type": "chat", "title": "Qrup"}},
         lambda m: isinstance(m.forward_origin, MessageOriginChat)),
    ]  # fmt: skip
    for kind, fields, check in checks:
        sent = await sim.send(uid, kind, **fields)
        update = await recorder.next()
        assert update.message is not None
        assert update.message.message_id == sent.message_id
        assert check(update.message), sent.message

    first = await sim.send_text(uid, "Qardaşım tutulub")
    await recorder.next()
    await sim.edit_message(uid, first.message_id, text="Qardaşım dünən tutulub")
    edited = await recorder.next()
    assert edited.edited_message is not None
    assert edited.edited_message.text == "Qardaşım dünən tutulub"
    assert edited.edited_message.edit_date is not None


async def test_the_bot_leaves_a_group(
    app: BotApp, sim: SimulatorClient, recorder: Recorder
) -> None:
    user = await sim.create_user("Orxan")
    group = await sim.create_group("Fəallar", [user["id"]])
    await sim.send_text(user["id"], "salam hamıya", chat_id=group["id"])
    update = await recorder.next()
    assert update.effective_chat is not None
    assert update.effective_chat.type == "group"

    assert await app.bot.leave_chat(group["id"])
    state = await sim.chat_state(group["id"])
    assert state["bot_is_member"] is False
    service = state["messages"][-1]
    assert service["kind"] == "left_chat_member"
    left = Message.de_json(service["message"], app.bot).left_chat_member
    assert left is not None
    assert left.id == app.bot.id
    assert (await sim.send_text(user["id"], "hello?", chat_id=group["id"])).update_id is None
    with pytest.raises(Forbidden, match="bot is not a member of the group chat"):
        await app.bot.send_message(group["id"], "still here")


async def test_refusals_are_worded_like_telegram(
    app: BotApp, server: SimulatorServer, sim: SimulatorClient
) -> None:
    async with httpx.AsyncClient() as http:
        wrong = await http.post(f"{server.bot_api_url}123456789:wrong/getMe")
        unknown = await http.post(f"{server.bot_api_url}{TOKEN}/setWebhook")
    assert wrong.status_code == 401
    assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert unknown.status_code == 404
    assert unknown.json()["description"] == "Not Found: method not found"

    with pytest.raises(BadRequest, match="Chat not found"):
        await app.bot.send_message(424242, "hello")
    user = await sim.create_user("Zaur")
    _, reply = await _start(sim, user["id"])
    with pytest.raises(BadRequest, match="Message is not modified"):
        await app.bot.edit_message_text(
            reply["text"],
            chat_id=user["id"],
            message_id=reply["message_id"],
            reply_markup=InlineKeyboardMarkup.from_button(
                InlineKeyboardButton("Başla", callback_data="begin")
            ),
        )
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await app.bot.send_message(
            user["id"],
            "too long",
            reply_markup=InlineKeyboardMarkup.from_button(
                InlineKeyboardButton("x", callback_data="x" * 65)
            ),
        )
    await sim.set_blocked(user["id"])
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await app.bot.send_message(user["id"], "are you there?")


async def test_commands_are_stored_per_language(app: BotApp, sim: SimulatorClient) -> None:
    await app.bot.set_my_commands([("start", "Begin a report")])
    await app.bot.set_my_commands([("start", "Hesabata başla")], language_code="az")

    (command,) = await app.bot.get_my_commands(language_code="az")
    assert (command.command, command.description) == ("start", "Hesabata başla")
    stored = {c["language_code"]: c["commands"] for c in await sim.commands()}
    assert stored == {
        "": [{"command": "start", "description": "Begin a report"}],
        "az": [{"command": "start", "description": "Hesabata başla"}],
    }

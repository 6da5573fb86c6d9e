"""The simulator's HTTP surface in detail: request encodings, long polling, the control
API's waits, uploads and edits made by a bare PTB ``Bot``, and logging.

The full conversation with a polling ``Application`` is in ``test_simulator.py``; here
the Bot API is called directly (httpx, as PTB does, or PTB's ``Bot``) so that each rule
is checked on its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
)
from telegram.error import BadRequest

from intake_bot.simulator import SimulatorClient, SimulatorServer, create_app
from intake_bot.simulator.client import SimulatorClientError

TOKEN = "987654321:AAE-simulated-protocol-token-00000"
SECRET_TEXT = "Qardaşım Bayıl həbsxanasında döyülüb"


@pytest.fixture
async def server() -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer(create_app(TOKEN)) as running:
        yield running


@pytest.fixture
async def sim(server: SimulatorServer) -> AsyncIterator[SimulatorClient]:
    async with SimulatorClient(server.url) as client:
        yield client


@pytest.fixture
async def http(server: SimulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{server.bot_api_url}{TOKEN}/") as client:
        yield client


@pytest.fixture
async def bot(server: SimulatorServer) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=server.bot_api_url, base_file_url=server.file_url) as b:
        yield b


async def _call(http: httpx.AsyncClient, method: str, **options: Any) -> dict[str, Any]:
    response = await http.post(method, **options)
    body: dict[str, Any] = response.json()
    assert body["ok"] is (response.status_code == 200), body
    return body


async def test_json_form_and_query_parameters_are_equivalent(
    http: httpx.AsyncClient, sim: SimulatorClient
) -> None:
    user = await sim.create_user("Aynur")
    markup = {"inline_keyboard": [[{"text": "Bəli", "callback_data": "yes"}]]}
    as_json = await _call(
        http,
        "sendMessage",
        json={"chat_id": user["id"], "text": "json", "reply_markup": markup},
    )
    as_form = await _call(
        http,
        "sendmessage",  # method names are case-insensitive
        data={"chat_id": str(user["id"]), "text": "form", "reply_markup": json.dumps(markup)},
    )
    as_query = await _call(
        http, "SENDMESSAGE", params={"chat_id": user["id"], "text": "query", "protect_content": 1}
    )
    assert as_json["result"]["reply_markup"] == as_form["result"]["reply_markup"] == markup
    assert as_query["result"]["has_protected_content"] is True
    assert [m["message_id"] for m in await sim.transcript(user["id"])] == [1, 2, 3]


async def test_get_updates_long_polls_and_confirms_with_offset(
    http: httpx.AsyncClient, sim: SimulatorClient
) -> None:
    user = await sim.create_user("Fuad")
    poll = asyncio.create_task(_call(http, "getUpdates", json={"timeout": 10}, timeout=15))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    sent = await sim.send_text(user["id"], "/start")
    updates = (await poll)["result"]
    assert time.monotonic() - started < 1
    assert [u["update_id"] for u in updates] == [sent.update_id]
    assert updates[0]["message"]["text"] == "/start"

    again = await _call(http, "getUpdates", json={"timeout": 0})
    assert again["result"] == updates  # not confirmed yet
    assert sent.update_id is not None
    confirmed = await _call(http, "getUpdates", json={"offset": sent.update_id + 1})
    assert confirmed["result"] == []


async def test_a_second_poller_terminates_the_first_with_conflict(
    http: httpx.AsyncClient,
) -> None:
    first = asyncio.create_task(http.post("getUpdates", json={"timeout": 5}, timeout=10))
    await asyncio.sleep(0.1)
    await _call(http, "getUpdates", json={"timeout": 0})
    response = await first
    assert response.status_code == 409
    assert response.json()["description"].startswith("Conflict: terminated by other getUpdates")


async def test_shutdown_releases_a_waiting_long_poll() -> None:
    running = SimulatorServer(create_app(TOKEN))
    url = await running.start()
    async with httpx.AsyncClient() as client:
        poll = asyncio.create_task(
            client.post(f"{url}/bot{TOKEN}/getUpdates", json={"timeout": 30}, timeout=35)
        )
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await running.stop()
        assert time.monotonic() - started < 1
        assert (await poll).json() == {"ok": True, "result": []}


async def test_delete_webhook_can_drop_pending_updates(
    http: httpx.AsyncClient, sim: SimulatorClient
) -> None:
    user = await sim.create_user("Səbinə")
    await sim.send_text(user["id"], "old")
    assert (await _call(http, "getWebhookInfo"))["result"]["pending_update_count"] == 1
    await _call(http, "deleteWebhook", json={"drop_pending_updates": True})
    assert (await _call(http, "getUpdates"))["result"] == []


async def test_waits_time_out_instead_of_hanging(
    http: httpx.AsyncClient, sim: SimulatorClient
) -> None:
    user = await sim.create_user("Murad")
    with pytest.raises(TimeoutError, match="0 of 1"):
        await sim.wait_for_bot_messages(user["id"], max_wait=0.1)
    await sim.send_text(user["id"], "undelivered")
    with pytest.raises(TimeoutError, match="not idle"):
        await sim.wait_idle(quiet=0.05, max_wait=0.2)  # nobody fetched the update
    await _call(http, "getUpdates")
    await sim.wait_idle(quiet=0.05, max_wait=1)


async def test_a_chat_page_can_long_poll_the_transcript(
    http: httpx.AsyncClient, sim: SimulatorClient
) -> None:
    user = await sim.create_user("Nigar")
    version = (await sim.chat_state(user["id"]))["version"]
    changed = asyncio.create_task(sim.chat_state(user["id"], changed_after=version, max_wait=5))
    await asyncio.sleep(0.05)
    assert not changed.done()
    await _call(http, "sendChatAction", json={"chat_id": user["id"], "action": "typing"})
    state = await changed
    assert state["version"] > version
    assert state["last_action"] == "typing"


async def test_bot_uploads_replies_and_keyboards(bot: Bot, sim: SimulatorClient) -> None:
    user = await sim.create_user("Cavid")
    asked = await sim.send_text(user["id"], "/start")
    keyboard = ReplyKeyboardMarkup([["Bəli", "Xeyr"]], one_time_keyboard=True)
    question = await bot.send_message(
        user["id"],
        "Davam?",
        reply_markup=keyboard,
        reply_parameters=ReplyParameters(asked.message_id),
    )
    assert question.reply_markup is None  # only inline keyboards come back in a Message
    assert question.reply_to_message is not None
    assert question.reply_to_message.message_id == asked.message_id
    state = await sim.chat_state(user["id"])
    assert state["reply_keyboard"] == keyboard.to_dict()
    assert state["messages"][-1]["reply_markup"] == keyboard.to_dict()

    document = await bot.send_document(user["id"], b"receipt words", filename="receipt.txt")
    photo = await bot.send_photo(user["id"], b"\xff\xd8" + b"\0" * 64, caption="şəkil")
    await bot.send_message(user["id"], "Sağ olun", reply_markup=ReplyKeyboardRemove())
    assert document.document is not None
    assert document.document.file_name == "receipt.txt"
    assert await sim.file_content(document.document.file_id) == b"receipt words"
    assert photo.photo
    assert photo.caption == "şəkil"
    assert (await sim.chat_state(user["id"]))["reply_keyboard"] is None

    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(user["id"], "?", reply_parameters=ReplyParameters(999))
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await bot.send_document(user["id"], "https://example.org/file.pdf")


async def test_edits_callback_answers_and_markup_changes(bot: Bot, sim: SimulatorClient) -> None:
    user = await sim.create_user("Lalə")
    keyboard = InlineKeyboardMarkup.from_button(InlineKeyboardButton("Bəli", callback_data="y"))
    message = await bot.send_message(user["id"], "Sual", reply_markup=keyboard)

    press = await sim.press_button(user["id"], message.message_id, button_text="Bəli")
    assert press.callback_query["data"] == "y"
    assert await bot.answer_callback_query(press.query_id, text="Qəbul")
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(press.query_id)

    edited = await bot.edit_message_reply_markup(user["id"], message.message_id)
    assert not isinstance(edited, bool)
    assert edited.reply_markup is None
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(user["id"], message.message_id)

    mine = await sim.send_text(user["id"], "user text")
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("x", chat_id=user["id"], message_id=mine.message_id)
    await bot.delete_message(user["id"], message.message_id)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", chat_id=user["id"], message_id=message.message_id)

    # A forged press on the deleted message arrives as an inaccessible message.
    forged = await sim.press_button(user["id"], message.message_id, "y", forge=True)
    parsed = CallbackQuery.de_json(forged.callback_query, bot)
    assert parsed.message is not None
    assert not parsed.message.is_accessible  # PTB's reading of date 0
    assert parsed.message.message_id == message.message_id
    with pytest.raises(SimulatorClientError) as refused:
        await sim.press_button(user["id"], message.message_id, "y")
    assert refused.value.status == 409


async def test_delete_messages_takes_at_most_100_ids(bot: Bot, sim: SimulatorClient) -> None:
    user = await sim.create_user("Vüsal")
    with pytest.raises(BadRequest, match="Too many message identifiers"):
        await bot.delete_messages(user["id"], list(range(1, 102)))
    assert await bot.delete_messages(user["id"], list(range(1, 101)))


async def test_control_api_refusals(sim: SimulatorClient) -> None:
    user = await sim.create_user("Həsən")
    with pytest.raises(SimulatorClientError, match="unknown kind") as unknown:
        await sim.send(user["id"], "hologram")
    assert unknown.value.status == 400
    with pytest.raises(SimulatorClientError) as missing:
        await sim.send_text(7, "nobody")
    assert missing.value.status == 404
    with pytest.raises(SimulatorClientError, match="needs file bytes"):
        await sim.send(user["id"], "photo")
    await sim.set_blocked(user["id"])
    with pytest.raises(SimulatorClientError, match="blocked") as blocked:
        await sim.send_text(user["id"], "hi")
    assert blocked.value.status == 409


async def test_nothing_is_logged_with_content_or_token(
    caplog: pytest.LogCaptureFixture, bot: Bot, sim: SimulatorClient
) -> None:
    caplog.set_level(logging.DEBUG)
    user = await sim.create_user("Günel")
    await sim.send_text(user["id"], SECRET_TEXT)
    await bot.get_updates()
    await bot.send_message(user["id"], SECRET_TEXT)
    with pytest.raises(BadRequest):
        await bot.send_message(424242, SECRET_TEXT)
    # PTB's and httpx's own debug logs hold both (the app silences them); ours hold neither.
    ours = [r for r in caplog.records if not r.name.startswith(("telegram", "httpx", "httpcore"))]
    assert not [r for r in ours if r.name.startswith("aiohttp.access")]
    for record in ours:
        assert SECRET_TEXT not in record.getMessage()
        assert TOKEN not in record.getMessage()

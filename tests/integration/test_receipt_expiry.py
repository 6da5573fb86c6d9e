"""Receipt messages nobody confirmed are deleted before Telegram's 48 hours run out."""

from __future__ import annotations

import time

import httpx
import pytest
from telegram import Bot
from telegram.request import HTTPXRequest

from intake_bot.bootstrap import open_app
from intake_bot.config import Settings
from intake_bot.questionnaire.engine import Engine
from intake_bot.questionnaire.loader import load_default
from intake_bot.simulator.app import create_app
from intake_bot.simulator.client import SimulatorClient
from intake_bot.simulator.runner import SimulatorServer
from intake_bot.telegram.app import limits_from
from intake_bot.telegram.conversation import RECEIPT_KEPT_S, Conversation
from intake_bot.telegram.strings import Strings

TOKEN = "123456789:AAE-receiptExpiryTestToken000000000"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_unconfirmed_receipts_are_deleted_after_46_hours(settings: Settings) -> None:
    async with (
        SimulatorServer(create_app(TOKEN)) as server,
        SimulatorClient(server.url) as client,
        open_app(settings) as app,
        httpx.AsyncClient() as http,
    ):
        bot = Bot(
            TOKEN,
            base_url=server.bot_api_url,
            base_file_url=server.file_url,
            request=HTTPXRequest(),
        )
        async with bot:
            conversation = Conversation(
                app=app,
                engine=Engine(load_default()),
                strings=Strings.load(),
                context=lambda: pytest.fail("no draft context is needed"),
                limits=limits_from(settings),
                http=http,
            )
            user = await client.create_user("Nigar")
            old = await bot.send_message(user["id"], "receipt shown long ago")
            new = await bot.send_message(user["id"], "receipt shown just now")
            now = time.monotonic()
            conversation._receipts += [
                (user["id"], old.message_id, now - RECEIPT_KEPT_S - 1),
                (user["id"], new.message_id, now - 60),
            ]
            await conversation.expire_receipts(bot, now)
            deleted = {m["message_id"]: m["deleted"] for m in await client.transcript(user["id"])}
            assert deleted == {old.message_id: True, new.message_id: False}
            # Once deleted, a receipt is forgotten: the next round deletes nothing more.
            assert [r[1] for r in conversation._receipts] == [new.message_id]

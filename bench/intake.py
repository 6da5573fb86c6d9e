"""Benchmark: many reporters answering at once, against the real bot on the simulator.

Measures answers per second and the time from an answer to the bot's next message
(p50/p99) for the intake bot, and, in the same run and on the same simulator, for a bare
python-telegram-bot echo bot (same polling, same HTTP stack, no database or crypto):
the ratio is what intake's own work costs. Prints figures; asserts nothing.

    .venv/bin/python bench/intake.py [--reporters 200] [--answers 15] [--postgres]

The intake bot runs with the production Argon2id profile for receipts off the hot path
(no reporter submits here) and ``insecure-test`` for the one staff key made at init.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
from telegram import Update
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from intake_bot.bootstrap import open_app
from intake_bot.config import load_settings
from intake_bot.crypto import Secret
from intake_bot.services import installation
from intake_bot.simulator.app import create_app
from intake_bot.simulator.client import SimulatorClient
from intake_bot.simulator.runner import SimulatorServer
from intake_bot.telegram.app import run_bot

TOKEN = "123456789:AAE-benchmarkTokenForTheSimulatorOnly0"  # noqa: S105  # simulator only
JsonDict = dict[str, Any]


def _buttons(message: JsonDict) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [
        b["callback_data"]
        for row in markup.get("inline_keyboard", [])
        for b in row
        if "callback_data" in b
    ]


async def _intake_reporter(client: SimulatorClient, answers: int, latencies: list[float]) -> int:
    """One reporter: /start, English, then ``answers`` steps (skip, or the first option)."""
    user = await client.create_user("Bench")
    uid = user["id"]
    sent = await client.send_text(uid, "/start")
    [prompt] = await client.wait_for_bot_messages(uid, after=sent.message_id, count=1, max_wait=60)
    await client.press_button(uid, prompt["message_id"], "L:en")
    latest = await client.wait_for_bot_messages(
        uid, after=prompt["message_id"], count=2, max_wait=60
    )
    done = 0
    for _ in range(answers):
        message = next(m for m in reversed(latest) if _buttons(m))
        data = _buttons(message)
        choice = next((d for d in data if d.startswith("S:")), None) or next(
            (d for d in data if d.startswith("A:")), None
        )
        if choice is None:
            break
        started = time.perf_counter()
        await client.press_button(uid, message["message_id"], choice)
        latest = await client.wait_for_bot_messages(
            uid, after=message["message_id"], count=1, max_wait=60
        )
        latencies.append(time.perf_counter() - started)
        done += 1
    return done


async def _echo_reporter(client: SimulatorClient, answers: int, latencies: list[float]) -> int:
    user = await client.create_user("Bench")
    uid = user["id"]
    after = 0
    for index in range(answers):
        started = time.perf_counter()
        sent = await client.send_text(uid, f"answer {index}")
        [reply] = await client.wait_for_bot_messages(
            uid, after=max(after, sent.message_id), count=1, max_wait=60
        )
        latencies.append(time.perf_counter() - started)
        after = reply["message_id"]
    return answers


async def _load(
    client: SimulatorClient,
    reporters: int,
    answers: int,
    reporter: Callable[[SimulatorClient, int, list[float]], Awaitable[int]],
) -> tuple[int, float, list[float]]:
    latencies: list[float] = []
    started = time.perf_counter()
    counts = await asyncio.gather(*(reporter(client, answers, latencies) for _ in range(reporters)))
    return sum(counts), time.perf_counter() - started, latencies


async def _echo_bot(server: SimulatorServer, stop: asyncio.Event) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_chat is not None:
            await context.bot.send_message(update.effective_chat.id, "echo", protect_content=True)

    application = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(server.bot_api_url)
        .base_file_url(server.file_url)
        .concurrent_updates(256)
        .build()
    )
    application.add_handler(MessageHandler(filters.ALL, echo))
    application.add_handler(CallbackQueryHandler(echo))
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(allowed_updates=Update.ALL_TYPES)
        await stop.wait()
        await application.updater.stop()
        await application.stop()


def _row(
    name: str, answers: int, seconds: float, latencies: list[float]
) -> tuple[float, float, float]:
    rate = answers / seconds
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(f"{name:<10} {answers:>8} {seconds:>8.1f} {rate:>10.1f} {p50:>9.1f} {p99:>9.1f}")
    return rate, p50, p99


async def _postgres_database() -> tuple[str, str]:
    name = f"intake_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    await admin.close()
    return name, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def _drop_postgres(name: str) -> None:
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def main(reporters: int, answers: int, postgres: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    env = {
        "INTAKE_DATA_DIR": str(work / "data"),
        "INTAKE_RUNTIME_DIR": str(work / "runtime"),
        "INTAKE_KDF_PROFILE": "insecure-test",
        "INTAKE_LOG_LEVEL": "WARNING",
        "INTAKE_RATE_BURST": "100000",
        "INTAKE_RATE_PER_MINUTE": "6000000",
        "INTAKE_MAX_OPEN_DRAFTS": str(reporters * 2),
    }
    pg_name = None
    if postgres:
        pg_name, env["INTAKE_DATABASE_URL"] = await _postgres_database()
    database = "PostgreSQL" if postgres else "SQLite"
    print(f"intake bot benchmark: {reporters} reporters x {answers} answers, {database}")
    print(
        f"{'bot':<10} {'answers':>8} {'seconds':>8} {'answers/s':>10} {'p50 ms':>9} {'p99 ms':>9}"
    )
    try:
        async with SimulatorServer(create_app(TOKEN)) as server:
            settings = replace(
                load_settings(env),
                telegram_token=Secret(TOKEN.encode()),
                telegram_api_url=server.url,
            )
            async with open_app(settings) as app, SimulatorClient(server.url) as client:
                await installation.initialise(
                    app, "bench", Secret(b"correct horse battery staple orbit")
                )
                stop = asyncio.Event()
                bot = asyncio.create_task(run_bot(app, stop))
                await asyncio.sleep(0.5)
                intake = _row("intake", *await _load(client, reporters, answers, _intake_reporter))
                stop.set()
                await bot
            async with SimulatorClient(server.url) as client:
                stop = asyncio.Event()
                echo_task = asyncio.create_task(_echo_bot(server, stop))
                await asyncio.sleep(0.5)
                echo = _row("echo", *await _load(client, reporters, answers, _echo_reporter))
                stop.set()
                await echo_task
        print()
        print(f"throughput ratio intake/echo: {intake[0] / echo[0]:.2f}")
        print(f"p50 latency ratio intake/echo: {intake[1] / echo[1]:.2f}")
        print(f"p99 latency ratio intake/echo: {intake[2] / echo[2]:.2f}")
    finally:
        if pg_name:
            await _drop_postgres(pg_name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reporters", type=int, default=200)
    parser.add_argument("--answers", type=int, default=15)
    parser.add_argument("--postgres", action="store_true", help="run intake on PostgreSQL")
    options = parser.parse_args()
    asyncio.run(main(options.reporters, options.answers, options.postgres))

"""Running the real bot (python-telegram-bot over HTTP) against the simulator, in-process.

Used by the end-to-end tests: an installation in a temp dir, the simulator on
127.0.0.1:0, the bot polling it, and a client that plays reporters.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from intake_bot.bootstrap import App, open_app
from intake_bot.config import Settings
from intake_bot.crypto import Secret
from intake_bot.ephemeral import load_or_create
from intake_bot.questionnaire.model import Question, Questionnaire, QuestionType
from intake_bot.services import drafts, installation
from intake_bot.services.drafts import DraftContext, OpenDraft
from intake_bot.services.keyring import read_pin
from intake_bot.simulator.app import create_app
from intake_bot.simulator.client import SimulatorClient
from intake_bot.simulator.runner import SimulatorServer
from intake_bot.telegram.app import run_bot

TOKEN = "123456789:AAE-e2eTestTokenForTheSimulatorOnly00"
ADMIN_PASSWORD = Secret(b"correct horse battery staple orbit")

JsonDict = dict[str, Any]


@dataclass
class BotRun:
    """A running bot; ``restart`` stops and starts it again on the same data."""

    app: App
    settings: Settings
    client: SimulatorClient
    server: SimulatorServer
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def halt(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)

    async def restart(self) -> None:
        await self.halt()
        self.stop = asyncio.Event()
        self.task = await _start_bot(self.app, self.stop)


async def _start_bot(app: App, stop: asyncio.Event) -> asyncio.Task[None]:
    """Start the bot and return once it polls (its start-up sweep done)."""
    ready = asyncio.Event()
    task = asyncio.create_task(run_bot(app, stop, ready))
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiting}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiting.cancel()
        task.result()  # raises what stopped the bot
        raise RuntimeError("the bot stopped at start")
    if not ready.is_set():
        raise TimeoutError("the bot did not start within 30 s")
    return task


@contextlib.asynccontextmanager
async def running_bot(settings: Settings, **overrides: Any) -> AsyncIterator[BotRun]:
    """An initialised installation, the simulator and the bot, torn down afterwards."""
    async with SimulatorServer(create_app(TOKEN)) as server:
        configured = replace(
            settings,
            telegram_token=Secret(TOKEN.encode()),
            telegram_api_url=server.url,
            **({"rate_burst": 100_000, "rate_per_minute": 6_000_000} | overrides),
        )

        async with open_app(configured) as app:
            await installation.initialise(app, "amina", ADMIN_PASSWORD)
            async with SimulatorClient(server.url) as client:
                stop = asyncio.Event()
                task = await _start_bot(app, stop)
                run = BotRun(app, configured, client, server, stop, task)
                try:
                    yield run
                finally:
                    if not run.task.done():
                        await run.halt()


async def load_draft(run: BotRun, user_id: int) -> OpenDraft | None:
    """A reporter's open draft as the running bot reads it (with the same boot secret)."""
    settings = run.settings
    boot = load_or_create(settings.runtime_dir, dt.datetime.now(dt.UTC).date())
    with ThreadPoolExecutor(max_workers=1) as pool:
        ctx = DraftContext(
            read_pin(settings.signing_key_pin), boot, settings.kdf_profile.receipt, pool
        )
        async with run.app.sessions() as session:
            return await drafts.load(session, ctx, boot.handles(user_id))


COMPACT = {
    "safety": ["notice", "urgent", "urgent_details"],
    "event": ["violations", "started", "ongoing"],
    "evidence": ["evidence_files"],
}
"""The sections and questions of the default questionnaire kept by :func:`compact_questionnaire`:
one of each type (notice, single, text, multi, date, yes/no, files), one condition."""


def compact_questionnaire(
    path: Path,
    keep: Mapping[str, Sequence[str]] = COMPACT,
    max_length: Mapping[str, int] | None = None,
) -> Path:
    """Write a copy of the default questionnaire cut down to ``keep`` (same texts and
    translations), with ``max_length`` set per question id; returns ``path``."""
    source = resources.files("intake_bot.questionnaire").joinpath("data/default.yaml")
    data = yaml.safe_load(source.read_text("utf-8"))
    sections = []
    for section in data["sections"]:
        if section["id"] not in keep:
            continue
        questions = [dict(q) for q in section["questions"] if q["id"] in keep[section["id"]]]
        for question in questions:
            if question["id"] in (max_length or {}):
                question["max_length"] = (max_length or {})[question["id"]]
        sections.append({**section, "questions": questions})
    compact = {**data, "id": f"{data['id']}-compact", "sections": sections}
    path.write_text(yaml.safe_dump(compact, allow_unicode=True, sort_keys=False), "utf-8")
    return path


class Reporter:
    """A simulated reporter: sends, presses, and reads what the bot said."""

    def __init__(self, client: SimulatorClient, user: JsonDict) -> None:
        self.client = client
        self.user = user
        self.id: int = user["id"]
        self.seen = 0

    @classmethod
    async def create(
        cls, client: SimulatorClient, name: str = "Leyla", lang: str | None = "az"
    ) -> Reporter:
        user = await client.create_user(name, username=f"{name.lower()}_canary", language_code=lang)
        return cls(client, user)

    async def settle(self) -> list[JsonDict]:
        """Wait until the bot is idle, then return its messages since the last call."""
        await self.client.wait_idle(quiet=0.15, max_wait=15)
        messages = [
            m
            for m in await self.client.transcript(self.id)
            if m["message_id"] > self.seen and m["direction"] == "out"
        ]
        everything = await self.client.transcript(self.id)
        if everything:
            self.seen = max(m["message_id"] for m in everything)
        return messages

    async def say(self, text: str) -> list[JsonDict]:
        await self.client.send_text(self.id, text)
        return await self.settle()

    async def press(self, message: JsonDict, data: str) -> list[JsonDict]:
        await self.client.press_button(self.id, message["message_id"], data)
        return await self.settle()


class SteadyReporter(Reporter):
    """A reporter whose :meth:`settle` first waits for the bot to answer in this chat.

    :meth:`Reporter.settle` waits for the whole simulator to be quiet for 0.15 s, which a
    busy machine can exceed between the bot fetching an update and its first call (it
    works on the database in between). Here, settling waits until the bot changed this
    chat since the last settle (sent or edited a message, or deleted one from either
    side), then for the quiet that finishes the answer.
    """

    def __init__(self, client: SimulatorClient, user: JsonDict, *, quiet: float = 0.15) -> None:
        super().__init__(client, user)
        self.quiet = quiet
        self.known: dict[int, str] = {}

    @staticmethod
    def _view(message: JsonDict) -> str:
        if message["direction"] == "in":
            return "deleted" if message["deleted"] else "live"
        keys = ("deleted", "text", "caption", "reply_markup")
        return json.dumps({key: message.get(key) for key in keys}, sort_keys=True)

    def _bot_changed(self, messages: list[JsonDict]) -> bool:
        for message in messages:
            view = self._view(message)
            before = self.known.get(message["message_id"])
            if message["direction"] == "out" and view != before:
                return True
            if message["direction"] == "in" and view == "deleted" != before:
                return True
        return False

    async def settle(
        self, *, change: bool = True, max_wait: float = 20.0, grace: float = 0.0
    ) -> list[JsonDict]:
        """The bot's new messages. With ``change=False`` an answer is not required: wait
        ``grace`` seconds for one, then only for the quiet."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (max_wait if change else grace)
        state = await self.client.chat_state(self.id)
        while not self._bot_changed(state["messages"]):
            left = deadline - loop.time()
            if left <= 0:
                if change:
                    raise TimeoutError(f"the bot did not answer within {max_wait} s")
                break
            state = await self.client.chat_state(
                self.id, changed_after=state["version"], max_wait=min(left, 5.0)
            )
        await self.client.wait_idle(quiet=self.quiet, max_wait=max_wait)
        messages = await self.client.transcript(self.id)
        new = [m for m in messages if m["message_id"] > self.seen and m["direction"] == "out"]
        self.known = {m["message_id"]: self._view(m) for m in messages}
        if messages:
            self.seen = max(m["message_id"] for m in messages)
        return new


def buttons(message: JsonDict) -> list[tuple[str, str]]:
    markup = message.get("reply_markup") or {}
    return [
        (b["text"], b["callback_data"])
        for row in markup.get("inline_keyboard", [])
        for b in row
        if "callback_data" in b
    ]


def last_with_buttons(messages: list[JsonDict]) -> JsonDict:
    return next(m for m in reversed(messages) if buttons(m))


def text_of(message: JsonDict) -> str:
    return str(message.get("text") or message.get("caption") or "")


class Walker:
    """Answers whatever question the bot asks, using the questionnaire to know its type.

    ``choices`` picks options by question id (a list of option ids for multi-choice);
    otherwise the first option is chosen, dates are typed, texts written, files sent.
    """

    def __init__(self, reporter: Reporter, questionnaire: Questionnaire) -> None:
        self.reporter = reporter
        self.questions = questionnaire.questions
        self.choices: dict[str, Any] = {}
        self.texts: dict[str, str] = {}
        self.files: dict[str, list[tuple[str, bytes]]] = {}
        self.asked: list[str] = []

    def question_of(self, message: JsonDict) -> Question | None:
        for _, data in buttons(message):
            parts = data.split(":")
            if parts[0] in "ATDSU" and len(parts) >= 2 and parts[0]:
                return self.questions[int(parts[1])]
        return None

    async def answer(self, messages: list[JsonDict]) -> list[JsonDict]:
        """Answer the question in ``messages``; returns the bot's next messages."""
        r = self.reporter
        message = last_with_buttons(messages)
        question = self.question_of(message)
        if question is None:
            raise AssertionError(f"no question in {[text_of(m)[:40] for m in messages]}")
        self.asked.append(question.id)
        qi = self.questions.index(question)
        wanted = self.choices.get(question.id)
        if question.type is QuestionType.NOTICE:
            return await r.press(message, f"A:{qi}:0")
        if question.type is QuestionType.YESNO:
            return await r.press(message, f"A:{qi}:{0 if wanted in (None, 'yes') else 1}")
        if question.type is QuestionType.SINGLE:
            ids = [o.id for o in question.options]
            return await r.press(message, f"A:{qi}:{ids.index(wanted) if wanted else 0}")
        if question.type is QuestionType.MULTI:
            ids = [o.id for o in question.options]
            latest = messages
            for option in wanted or [ids[0]]:
                latest = await r.press(message, f"T:{qi}:{ids.index(option)}") or latest
            return await r.press(message, f"D:{qi}")
        if question.type is QuestionType.DATE:
            return await r.say(wanted or "20.03.2023")
        if question.type is QuestionType.TEXT:
            await r.say(self.texts.get(question.id, f"answer to {question.id}"))
            return await r.press(message, f"D:{qi}")
        for name, data in self.files.get(question.id, []):
            await r.client.send_document(r.id, data, file_name=name)
            await r.settle()
        return await r.press(message, f"D:{qi}")

    async def to_review(self, messages: list[JsonDict], limit: int = 200) -> list[JsonDict]:
        """Answer until the summary with its Submit button appears."""
        for _ in range(limit):
            if any(data == "P" for m in messages for _, data in buttons(m)):
                return messages
            messages = await self.answer(messages)
        raise AssertionError("the questionnaire did not end")


__all__ = [
    "ADMIN_PASSWORD",
    "TOKEN",
    "BotRun",
    "Reporter",
    "SteadyReporter",
    "Walker",
    "buttons",
    "compact_questionnaire",
    "last_with_buttons",
    "load_draft",
    "running_bot",
    "text_of",
]

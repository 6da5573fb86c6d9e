"""Random sequences of updates through the real bot: it answers everything and never breaks.

Hypothesis plays reporters (a new simulated user for each example) who send any mix of
texts, commands, presses of the buttons the bot last showed, forged callback data,
documents, photos, voice notes, stickers, GIFs, dice, polls, locations, contacts,
forwarded messages and edits. The bot runs once per test function (on SQLite), with the
default questionnaire in one test and a compact copy (every question type, a few steps to
the summary, the change menu and the receipt) in the other. After each step:

* no update failed: the bot's JSON log has no "update failed", "handler error" or any other
  event at level error;
* every message the reporter sent got an answer (a message, an edit or a deletion), every
  press of a real button too, and every press (forged ones included) was answered with
  ``answerCallbackQuery`` so the reporter's client stops its spinner;

and after the sequence, /start still answers correctly: the language choice when the
reporter has no draft, "welcome back" and the current step when they have one.

Forged ``T:<q>:<o>`` (toggle) data is left out here: at a single-choice question it makes the
update fail, a known bug with its own expected-failure test in ``test_bot_bad_input.py``.
With ``T`` allowed in :data:`MUTATION_KINDS` these tests find that bug within a few dozen
examples, which shows that the sequences reach real states of the conversation.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from canary import preserved_process_state
from harness import (
    BotRun,
    JsonDict,
    SteadyReporter,
    buttons,
    compact_questionnaire,
    load_draft,
    running_bot,
    text_of,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake_bot.config import Settings
from intake_bot.logging import configure_logging
from intake_bot.telegram.strings import Strings

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

STRINGS = Strings.load()
ANSWER_WAIT = 15.0
"""Longest wait for the bot's answer to one update, in seconds."""

Action = tuple[str, object]


# --- what a reporter may do -----------------------------------------------------------------

texts = st.one_of(
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=40),
    st.sampled_from(
        [
            "20.03.2023",
            "2023",
            "03.2023",
            "31.02.2023",
            "01.01.2999",
            "1899",
            "Qardaşımı polis aparıb",
            "Брата задержали",
            "/",
            "٢٠.٠٣.٢٠٢٣",  # Arabic-Indic digits
            "\u200f\u202e",
            "x" * 4096,
        ]
    ),
).filter(lambda text: bool(text.strip()))
commands = st.sampled_from(
    [
        "/start",
        "/start",
        "/cancel",
        "/language",
        "/help",
        "/privacy",
        "/status",
        "/start@intake_bot",
        "/Cancel extra words",
        "/nonsense",
    ]
)
forged_data = st.one_of(
    st.text(min_size=1, max_size=70),
    st.builds(
        "{}:{}:{}".format,
        st.sampled_from("ADSUE"),
        st.integers(0, 99),
        st.integers(0, 12),
    ),
    st.builds("{}:{}".format, st.sampled_from("ADSUE"), st.integers(0, 99)),
    st.sampled_from(["P", "R", "B", "W", "C:y", "C:n", "L:az", "L:ru", "L:en", "L:xx", "X"]),
)
MUTATION_KINDS = "ADSUE"
"""Kinds a real button's data is changed to (T is left out: see the module docstring)."""
mutations = st.sampled_from(MUTATION_KINDS)
files = st.binary(min_size=1, max_size=3000)
actions: st.SearchStrategy[Action] = st.one_of(
    st.tuples(st.just("text"), texts),
    st.tuples(st.just("command"), commands),
    st.tuples(st.just("press"), st.tuples(st.just(True), st.integers(0, 10_000))),
    st.tuples(st.just("press"), st.tuples(st.just(True), st.integers(0, 10_000))),
    st.tuples(st.just("press"), st.tuples(st.just(False), st.integers(0, 10_000))),
    st.tuples(st.just("forge"), forged_data),
    st.tuples(st.just("mutate"), st.tuples(st.integers(0, 10_000), mutations, st.integers(-1, 2))),
    st.tuples(st.just("document"), files),
    st.tuples(st.just("photo"), files),
    st.tuples(st.just("voice"), files),
    st.tuples(st.just("edit"), texts),
    st.tuples(st.just("forward"), texts),
    st.tuples(
        st.sampled_from(["sticker", "animation", "dice", "poll", "location", "contact"]),
        st.none(),
    ),
)
sequences = st.lists(actions, min_size=1, max_size=10)
openings = st.sampled_from([None, "az", "ru", "en"])
"""Most sequences start inside a draft: /start and a language first (None: straight in)."""
languages = st.sampled_from([None, "az", "ru", "en", "de"])


FILE_FIELDS: dict[str, dict[str, Any]] = {
    "document": {"file_name": "Şəkil 1.pdf"},
    "photo": {"caption": "foto"},
    "voice": {"duration": 2},
}
NOISE_DATA = {"animation": b"GIF89a"}
NOISE_FIELDS: dict[str, dict[str, Any]] = {
    "sticker": {},
    "animation": {"file_name": "a.gif"},
    "dice": {"emoji": "🎯"},
    "poll": {"question": "?", "options": ["a", "b"]},
    "location": {"latitude": 40.4, "longitude": 49.8},
    "contact": {"phone_number": "+994501112233", "first_name": "X"},
}


# --- the bot ------------------------------------------------------------------------------


@dataclass
class Bot:
    run: BotRun
    log: io.StringIO


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    with preserved_process_state():
        configure_logging("json", "DEBUG", stream=stream)
        yield stream


@pytest.fixture
async def default_bot(settings: Settings, log_stream: io.StringIO) -> AsyncIterator[Bot]:
    async with running_bot(settings) as run:
        yield Bot(run, log_stream)


@pytest.fixture
async def compact_bot(
    settings: Settings, tmp_path: Path, log_stream: io.StringIO
) -> AsyncIterator[Bot]:
    questionnaire = compact_questionnaire(tmp_path / "questionnaire.yaml")
    async with running_bot(replace(settings, questionnaire=questionnaire)) as run:
        yield Bot(run, log_stream)


def errors_since(log: io.StringIO, offset: int) -> list[JsonDict]:
    events = [json.loads(line) for line in log.getvalue()[offset:].splitlines() if line.strip()]
    return [
        event
        for event in events
        if event.get("level") in ("error", "critical")
        or event.get("event") in ("update failed", "handler error")
    ]


# --- playing one sequence -----------------------------------------------------------------


class Player:
    """One simulated reporter doing one sequence of actions, checking each answer."""

    def __init__(self, bot: Bot, reporter: SteadyReporter) -> None:
        self.bot = bot
        self.client = bot.run.client
        self.reporter = reporter
        self.transcript: list[JsonDict] = []

    @property
    def id(self) -> int:
        return self.reporter.id

    def live(self, direction: str) -> list[JsonDict]:
        return [m for m in self.transcript if m["direction"] == direction and not m["deleted"]]

    async def act(self, kind: str, value: object) -> None:
        """Do one action and check that the bot answered it."""
        if kind == "press":
            assert isinstance(value, tuple)
            await self.press(*value)
        elif kind == "forge":
            assert isinstance(value, str)
            await self.forge(value)
        elif kind == "mutate":
            assert isinstance(value, tuple)
            await self.mutate(*value)
        else:
            await self.send(kind, value)
            await self.answered(kind)
        self.transcript = await self.client.transcript(self.id)

    async def answered(self, what: str) -> None:
        try:
            await self.reporter.settle(max_wait=ANSWER_WAIT)
        except TimeoutError:
            raise AssertionError(f"the bot did not answer {what}") from None

    async def send(self, kind: str, value: object) -> None:
        client, user = self.client, self.id
        if kind in ("text", "command", "edit", "forward"):
            assert isinstance(value, str)
            mine = [m for m in self.live("in") if m["kind"] == "text"]
            if kind == "edit" and mine:
                await client.edit_message(user, mine[-1]["message_id"], text=value)
            elif kind == "forward":
                origin = {"type": "channel", "title": "Xəbər kanalı", "username": "xeber"}
                await client.send_text(user, value, forward_origin=origin)
            else:
                await client.send_text(user, value)
        elif kind in ("document", "photo", "voice"):
            assert isinstance(value, bytes)
            await client.send(user, kind, data=value, **FILE_FIELDS[kind])
        else:
            await client.send(user, kind, data=NOISE_DATA.get(kind), **NOISE_FIELDS[kind])

    async def press(self, latest: bool, choice: int) -> None:
        """Press a button of the bot's latest message with buttons, or of any live message
        (or send /start if there is none)."""
        shown = [message for message in self.live("out") if buttons(message)]
        available = [
            (message, data)
            for message in (shown[-1:] if latest else shown)
            for _, data in buttons(message)
        ]
        if not available:
            await self.send("command", "/start")
            await self.answered("/start")
            return
        message, data = available[choice % len(available)]
        pressed = await self.client.press_button(self.id, message["message_id"], data)
        await self.answered(f"a press of {data!r}")
        await self.callback_answered(pressed.query_id, data)

    async def forge(self, data: str) -> None:
        """Press forged data on the bot's latest message, live or deleted (or skip)."""
        targets = [m for m in self.transcript if m["direction"] == "out"]
        if not targets:
            return
        pressed = await self.client.press_button(
            self.id, targets[-1]["message_id"], data, forge=True
        )
        await self.callback_answered(pressed.query_id, data)
        # Most forged presses get an answer, a few (W on a deleted message) get none.
        await self.reporter.settle(change=False, max_wait=ANSWER_WAIT, grace=1.0)

    async def callback_answered(self, query_id: str, data: str) -> None:
        """Until the bot answered the press (its first call for a press, after loading the
        draft)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ANSWER_WAIT
        while not (await self.client.callback_answer(query_id))["answered"]:
            assert loop.time() < deadline, f"the press of {data!r} was not answered"
            await asyncio.sleep(0.02)

    async def mutate(self, choice: int, kind: str, delta: int) -> None:
        """Forge data close to a real button's: another kind, a neighbouring option."""
        available = [data for message in self.live("out") for _, data in buttons(message)]
        real = available[choice % len(available)].split(":") if available else ["A", "0"]
        if not real[-1].isdigit():
            real = ["A", "0"]
        question = real[1] if len(real) > 1 else "0"
        option = int(real[2]) + delta if len(real) > 2 else delta
        data = f"{kind}:{question}:{option}" if kind == "A" else f"{kind}:{question}"
        await self.forge(data)

    async def check_start(self) -> None:
        """/start answers as it should for whether the reporter has a draft."""
        draft = await load_draft(self.bot.run, self.id)
        await self.client.send_text(self.id, "/start")
        try:
            messages = await self.reporter.settle(max_wait=ANSWER_WAIT)
        except TimeoutError:
            raise AssertionError("the bot did not answer the final /start") from None
        if draft is None:
            assert [text_of(m) for m in messages] == [STRINGS("en", "language_prompt")]
            assert [d for _, d in buttons(messages[0])] == ["L:az", "L:ru", "L:en"]
        else:
            assert len(messages) >= 2
            assert text_of(messages[0]) == STRINGS(draft.language, "resumed")
            assert buttons(messages[-1]), "the current step has its buttons"


async def play(
    bot: Bot, sequence: list[Action], language_code: str | None, opening: str | None
) -> None:
    offset = len(bot.log.getvalue())
    user = await bot.run.client.create_user(
        "Fuzz", last_name="Reporter", username=None, language_code=language_code
    )
    player = Player(bot, SteadyReporter(bot.run.client, user, quiet=0.1))
    if opening is not None:
        sequence = [("command", "/start"), ("forge", f"L:{opening}"), *sequence]
    for number, (kind, value) in enumerate(sequence):
        await player.act(kind, value)
        assert errors_since(bot.log, offset) == [], f"after action {number}: {kind}"
    await player.check_start()
    assert errors_since(bot.log, offset) == []


FUZZ = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    print_blob=True,
)


@FUZZ
@given(sequence=sequences, language_code=languages, opening=openings)
async def test_random_updates_with_the_default_questionnaire(
    default_bot: Bot, sequence: list[Action], language_code: str | None, opening: str | None
) -> None:
    await play(default_bot, sequence, language_code, opening)


@FUZZ
@given(sequence=sequences, language_code=languages, opening=openings)
async def test_random_updates_with_a_compact_questionnaire(
    compact_bot: Bot, sequence: list[Action], language_code: str | None, opening: str | None
) -> None:
    await play(compact_bot, sequence, language_code, opening)

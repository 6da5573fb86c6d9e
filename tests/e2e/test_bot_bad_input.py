"""Promise 8 on the reporter's side: bad input gets a short, translated answer and loses nothing.

The real bot (python-telegram-bot over HTTP) runs against the Bot API simulator on SQLite.
Each test plays reporters who send what a questionnaire cannot take (stickers, locations,
contacts, polls, edits, stale or forged buttons, files where text is wanted, too much of
anything, group chats, floods) and checks three things:

* the bot answers with exactly the expected string of ``intake_bot/telegram/data/
  strings.<lang>.yaml``, in the reporter's language (each refusal in two languages);
* the draft (read back with the running bot's boot secret) is exactly as before: same
  question, same answers, same collected parts;
* the next valid answer is accepted.

The questionnaire is a compact copy of the default one (:func:`harness.compact_questionnaire`:
the same questions, texts and translations) holding one question of each type, so that each
is a few steps away: notice, single choice, text, multiple choice, date, yes/no and files.
Its text question has a ``max_length`` of 3000: the default's 20,000 cannot be exceeded
through Telegram, which caps a message at 4096 characters (the simulator refuses more).

Every test also checks the bot's log (JSON, DEBUG): no "update failed", no "handler error",
no event at level error, unless the test is an expected failure.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from canary import Canary, preserved_process_state, scan_text, scan_tree
from harness import (
    ADMIN_PASSWORD,
    BotRun,
    JsonDict,
    SteadyReporter,
    Walker,
    buttons,
    compact_questionnaire,
    last_with_buttons,
    load_draft,
    running_bot,
    text_of,
)
from sqlalchemy import func, select

from intake_bot.config import Settings
from intake_bot.crypto import PayloadKind
from intake_bot.logging import configure_logging
from intake_bot.questionnaire.engine import Engine, State
from intake_bot.questionnaire.loader import load_file
from intake_bot.questionnaire.model import Questionnaire
from intake_bot.services import keyring, reports
from intake_bot.services.drafts import OpenDraft
from intake_bot.simulator.client import Sent
from intake_bot.storage.models import Attachment, Report, ReportState
from intake_bot.telegram.render import Renderer
from intake_bot.telegram.strings import Strings

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

STRINGS = Strings.load()
TEXT_LIMIT = 3000
"""``max_length`` of the compact questionnaire's text question (below Telegram's 4096)."""
SHORT = 400
"""An error answer is one message of at most this many characters."""
QUIET = 0.1
"""Seconds without a bot call that end an answer (once the bot has started answering)."""
FORGED = {
    "A:9999:1": "err_stale_button",
    "X": "err_stale_button",
    "L:xx": "err_stale_button",
    "A:1:" + "9" * 62: "err_stale_button",  # 66 bytes: more than Telegram's 64
    "💥" * 17: "err_stale_button",  # 17 characters, 68 bytes
    "Ünïcødé:ß:∞": "err_stale_button",
    "A:1:0\u200f": "err_stale_button",
    "A:١:٣": "err_stale_button",  # noqa: RUF001  # Arabic-Indic digits; no option 3
    "A:1:7": "err_stale_button",
    "A:-1:0": "err_stale_button",
    "A:1:0:0": "err_stale_button",
    "E:1": "err_stale_button",
    "P": "err_stale_button",
    "R": "err_stale_button",
    "C:x": "err_stale_button",
    "S:1": "err_required",
}
"""Forged callback data pressed at the (required, single-choice) urgency question, and the
answer each must get."""


# --- the bot and its log ------------------------------------------------


def log_errors(stream: io.StringIO) -> list[JsonDict]:
    """Events of the bot's JSON log that mean an update was not handled cleanly."""
    events = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [
        event
        for event in events
        if event.get("level") in ("error", "critical")
        or event.get("event") in ("update failed", "handler error")
    ]


@pytest.fixture
def log_stream(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """The bot's log as in production (JSON, DEBUG), checked for errors afterwards."""
    stream = io.StringIO()
    with preserved_process_state():
        configure_logging("json", "DEBUG", stream=stream)
        yield stream
    if request.node.get_closest_marker("xfail") is None:
        assert log_errors(stream) == []


@pytest.fixture
def compact_settings(settings: Settings, tmp_path: Path) -> Settings:
    return replace(
        settings,
        questionnaire=compact_questionnaire(
            tmp_path / "questionnaire.yaml", max_length={"urgent_details": TEXT_LIMIT}
        ),
    )


@dataclass
class Scene:
    """A running bot with the compact questionnaire, and what tests need to talk to it."""

    run: BotRun
    log: io.StringIO
    questionnaire: Questionnaire
    renderer: Renderer

    def index(self, question_id: str) -> int:
        return self.renderer.index[question_id]

    async def chat(self, lang: str, *, language_code: str | None = None) -> Chat:
        user = await self.run.client.create_user(
            f"Reporter-{lang}", language_code=language_code or lang
        )
        return Chat(self, SteadyReporter(self.run.client, user, quiet=QUIET), lang)

    def blob_files(self) -> list[Path]:
        root = self.run.app.blobs.root
        return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []

    async def attachments(self) -> int:
        async with self.run.app.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(Attachment)) or 0)


@pytest.fixture
async def scene(compact_settings: Settings, log_stream: io.StringIO) -> AsyncIterator[Scene]:
    async with running_bot(compact_settings, max_file_mb=1, max_report_files=2) as run:
        yield make_scene(run, log_stream)


def make_scene(run: BotRun, log: io.StringIO) -> Scene:
    assert run.settings.questionnaire is not None
    questionnaire = load_file(run.settings.questionnaire)
    return Scene(run, log, questionnaire, Renderer(Engine(questionnaire), STRINGS))


Snapshot = tuple[str, dict[str, Any], tuple[Any, ...]]


class Chat:
    """One reporter in one language, with the checks every test makes."""

    def __init__(self, scene: Scene, reporter: SteadyReporter, lang: str) -> None:
        self.scene = scene
        self.reporter = reporter
        self.lang = lang
        self.client = scene.run.client
        self.walker = Walker(reporter, scene.questionnaire)
        self.last: list[JsonDict] = []

    @property
    def id(self) -> int:
        return self.reporter.id

    def text(self, key: str, **params: Any) -> str:
        return STRINGS(self.lang, key, **params)

    # -- moving ---------------------------------------------------------------------

    async def begin(self) -> list[JsonDict]:
        """/start and choose the language: at the notice."""
        messages = await self.reporter.say("/start")
        self.last = await self.reporter.press(messages[-1], f"L:{self.lang}")
        assert text_of(self.last[0]) == self.text("language_set")
        return self.last

    async def go_to(self, question_id: str) -> JsonDict:
        """Answer with the walker's defaults until ``question_id`` is asked; its message."""
        if await load_draft(self.scene.run, self.id) is None:
            await self.begin()
        self.walker.choices.setdefault("urgent", "me")
        for _ in range(len(self.scene.questionnaire.questions) + 1):
            message = await self.question_message()
            question = self.walker.question_of(message)
            if question is not None and question.id == question_id:
                return message
            self.last = await self.walker.answer([message])
        raise AssertionError(f"{question_id} was never asked")

    async def question_message(self) -> JsonDict:
        """The bot's latest live message with buttons."""
        transcript = await self.client.transcript(self.id)
        live = [m for m in transcript if m["direction"] == "out" and not m["deleted"]]
        return last_with_buttons(live)

    # -- sending --------------------------------------------------------------------

    async def send(self, kind: str, *, data: bytes | None = None, **fields: Any) -> Sent:
        sent = await self.client.send(self.id, kind, data=data, **fields)
        self.last = await self.reporter.settle()
        return sent

    async def say(self, text: str) -> list[JsonDict]:
        self.last = await self.reporter.say(text)
        return self.last

    async def press(self, message: JsonDict, data: str, *, forge: bool = False) -> JsonDict:
        """Press a button; returns the simulator's record of how the bot answered the query."""
        pressed = await self.client.press_button(self.id, message["message_id"], data, forge=forge)
        self.last = await self.reporter.settle()
        return await self.client.callback_answer(pressed.query_id)

    # -- checking -------------------------------------------------------------------

    async def draft(self) -> OpenDraft:
        draft = await load_draft(self.scene.run, self.id)
        assert draft is not None, "the reporter has no open draft"
        return draft

    async def snapshot(self) -> Snapshot:
        state = State.from_json((await self.draft()).engine)
        return state.position, dict(state.answers), state.pending

    def answered(self, key: str, **params: Any) -> None:
        """The bot's answer to the last input was exactly the string ``key``, alone."""
        expected = self.text(key, **params)
        got = [text_of(m) for m in self.last]
        assert got == [expected], f"expected {key} in {self.lang}, got {got}"
        assert len(expected) <= SHORT
        assert not buttons(self.last[0])

    async def refused(self, key: str, before: Snapshot, **params: Any) -> None:
        """Answered with ``key``, and the draft is exactly as before."""
        self.answered(key, **params)
        assert await self.snapshot() == before

    async def wait_for(self, text: str, max_wait: float = 20.0) -> None:
        """Until the bot has sent ``text`` in this chat."""
        deadline = asyncio.get_running_loop().time() + max_wait
        state = await self.client.chat_state(self.id)
        while not any(text_of(m) == text for m in state["messages"]):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"the bot did not send {text[:40]!r}")
            state = await self.client.chat_state(
                self.id, changed_after=state["version"], max_wait=min(left, 5.0)
            )

    async def deleted(self, message_id: int) -> bool:
        transcript = await self.client.transcript(self.id)
        return any(m["message_id"] == message_id and m["deleted"] for m in transcript)

    def collects(self, question_id: str) -> None:
        """The bot took a part of a longer answer: its last message offers Done for
        ``question_id`` (whether it repeats the question or acknowledges the part)."""
        index = self.scene.index(question_id)
        assert self.last, "the bot did not answer"
        assert f"D:{index}" in [data for _, data in buttons(self.last[-1])]

    def asks(self, question_id: str) -> None:
        """The bot's last messages end with ``question_id``, in the reporter's language."""
        question = self.scene.questionnaire.question(question_id)
        assert question is not None
        text, _ = self.scene.renderer.question(question, self.lang)
        assert self.last, "the bot did not answer"
        assert text_of(self.last[-1]) == text
        assert self.walker.question_of(self.last[-1]) == question


def strings_differ(key: str, *langs: str) -> None:
    """The check in two languages means something: the catalogues differ for ``key``."""
    texts = {STRINGS(lang, key, limit=1, limit_mb=1, count=1) for lang in langs}
    assert len(texts) == len(langs), key


LANGS = ("az", "ru")
"""Every refusal is checked in these two languages (the catalogues differ for each key)."""


# --- unusable message kinds ---------------------------------------------------------------


async def test_stickers_gifs_dice_and_polls_are_refused(scene: Scene) -> None:
    strings_differ("err_sticker", *LANGS)
    strings_differ("err_poll", *LANGS)
    az, ru = [await scene.chat(lang) for lang in LANGS]
    await az.go_to("urgent_details")
    await az.say("first part")
    before = await az.snapshot()
    assert before[0] == "urgent_details"
    assert before[2] == ({"text": "first part"},)

    await az.send("sticker", emoji="😀")
    await az.refused("err_sticker", before)
    await az.send("sticker", is_animated=True)
    await az.refused("err_sticker", before)
    await az.send("animation", data=b"GIF89a" + os.urandom(300), file_name="funny.gif")
    await az.refused("err_sticker", before)
    await az.send("dice", emoji="🎲")
    await az.refused("err_sticker", before)
    await az.send("dice", emoji="🎰")
    await az.refused("err_sticker", before)
    await az.send("poll", question="Nə vaxt?", options=["bu gün", "sabah"])
    await az.refused("err_poll", before)
    assert scene.blob_files() == []  # nothing was downloaded for the GIF and the stickers
    await az.say("second part")
    assert (await az.snapshot())[2] == ({"text": "first part"}, {"text": "second part"})

    # At a question with buttons, in Russian.
    await ru.go_to("urgent")
    before = await ru.snapshot()
    await ru.send("animation", data=b"GIF89a", file_name="a.gif")
    await ru.refused("err_sticker", before)
    await ru.send("poll", question="Когда?", options=["сегодня", "завтра"], poll_type="quiz")
    await ru.refused("err_poll", before)
    await ru.press(await ru.question_message(), f"A:{scene.index('urgent')}:2")
    ru.asks("violations")  # "No": the details question is not shown


async def test_location_and_contact_are_deleted_and_never_stored(scene: Scene) -> None:
    strings_differ("err_location", *LANGS)
    strings_differ("err_contact", *LANGS)
    tag = 1_000_000 + secrets.randbelow(9_000_000)
    phone = f"+99450{tag}"
    latitude, longitude = f"40.4{tag}7", f"49.8{tag}3"  # printed as written by json
    canaries = [
        Canary("phone", phone),
        Canary("phone-digits", phone[1:]),
        Canary.of_int("phone-number", int(phone[1:])),
        Canary("contact-name", f"Kontakt{tag}"),
        Canary("latitude", latitude),
        Canary("longitude", longitude),
    ]
    for lang, question in zip(LANGS, ("urgent_details", "urgent"), strict=True):
        chat = await scene.chat(lang)
        canaries.append(Canary.of_int(f"user-id-{lang}", chat.id))
        await chat.go_to(question)
        before = await chat.snapshot()

        location = await chat.send("location", latitude=float(latitude), longitude=float(longitude))
        await chat.refused("err_location", before)
        assert await chat.deleted(location.message_id)

        contact = await chat.send(
            "contact", phone_number=phone, first_name=f"Kontakt{tag}", last_name="Ailə"
        )
        await chat.refused("err_contact", before)
        assert await chat.deleted(contact.message_id)

    # The next valid answer is taken.
    await chat.press(await chat.question_message(), f"A:{scene.index('urgent')}:1")
    chat.asks("urgent_details")

    # Neither the number nor the place is anywhere: database (and WAL), blobs, runtime dir,
    # log.
    result = scan_tree(scene.run.settings.data_dir.parent, canaries)
    result.extend(scan_text(scene.log.getvalue(), canaries, "log"))
    result.assert_clean()
    assert any(path.endswith((".db", ".db-wal")) for path in result.scanned)


async def test_an_edited_message_is_answered_and_not_picked_up(scene: Scene) -> None:
    strings_differ("err_edited", *LANGS)
    az, ru = [await scene.chat(lang) for lang in LANGS]
    await az.go_to("urgent_details")
    first = await az.send("text", text="the first version")
    before = await az.snapshot()
    assert before[2] == ({"text": "the first version"},)
    await az.client.edit_message(az.id, first.message_id, text="the corrected version")
    az.last = await az.reporter.settle()
    await az.refused("err_edited", before)
    await az.press(await az.question_message(), f"D:{scene.index('urgent_details')}")
    assert (await az.snapshot())[1]["urgent_details"] == [{"text": "the first version"}]
    az.asks("violations")

    # At a question with buttons: the edit of a text that was refused is refused too.
    await ru.go_to("urgent")
    before = await ru.snapshot()
    typed = await ru.send("text", text="Да")
    await ru.refused("err_use_buttons", before)
    await ru.client.edit_message(ru.id, typed.message_id, text="Нет")
    ru.last = await ru.reporter.settle()
    await ru.refused("err_edited", before)


# --- buttons ------------------------------------------------------------------------------


async def test_a_button_of_an_earlier_question_is_refused(scene: Scene) -> None:
    strings_differ("err_stale_button", *LANGS)
    az, ru = [await scene.chat(lang) for lang in LANGS]
    urgent = await az.go_to("urgent")
    details = await az.go_to("urgent_details")
    await az.say("a part")
    before = await az.snapshot()
    assert before[1]["urgent"] == "me"

    # "No" on the urgency question's message, which still shows its buttons.
    answer = await az.press(urgent, f"A:{scene.index('urgent')}:2")
    assert answer["answered"]
    await az.refused("err_stale_button", before)
    # The current question's own buttons still work.
    await az.press(details, f"D:{scene.index('urgent_details')}")
    after = await az.snapshot()
    assert after[0] == "violations"
    assert after[1]["urgent"] == "me"
    assert after[1]["urgent_details"] == [{"text": "a part"}]

    # The notice's "I understand", two steps back, in Russian.
    notice = await ru.go_to("notice")
    await ru.go_to("urgent_details")
    before = await ru.snapshot()
    await ru.press(notice, "A:0:0")
    await ru.refused("err_stale_button", before)


async def test_forged_callback_data_is_refused(scene: Scene) -> None:
    chats = [await scene.chat(lang) for lang in LANGS]
    urgents = [await chat.go_to("urgent") for chat in chats]
    befores = [await chat.snapshot() for chat in chats]
    assert {before[0] for before in befores} == {"urgent"}
    for number, (data, key) in enumerate(FORGED.items()):
        chat, urgent, before = chats[number % 2], urgents[number % 2], befores[number % 2]
        answer = await chat.press(urgent, data, forge=True)
        assert answer["answered"], data
        await chat.refused(key, before)

    # Forged onto a message the bot deleted (Telegram then sends an inaccessible message).
    chat, urgent, before = chats[0], urgents[0], befores[0]
    location = await chat.send("location", latitude=1.5, longitude=2.5)
    assert await chat.deleted(location.message_id)
    await chat.press({"message_id": location.message_id}, "A:9999:1", forge=True)
    await chat.refused("err_stale_button", before)

    # The real button still works.
    await chat.press(urgent, f"A:{scene.index('urgent')}:0")
    chat.asks("urgent_details")
    assert (await chat.snapshot())[1] == {"notice": "ack", "urgent": "me"}


async def test_a_forged_toggle_at_a_single_choice_question_is_refused(scene: Scene) -> None:
    chat = await scene.chat("ru")
    urgent = await chat.go_to("urgent")
    before = await chat.snapshot()
    await chat.press(urgent, f"T:{scene.index('urgent')}:0", forge=True)
    assert [text_of(m) for m in chat.last] != [chat.text("err_internal")]
    assert log_errors(scene.log) == []
    await chat.refused("err_stale_button", before)


async def test_text_where_a_button_is_expected(scene: Scene) -> None:
    strings_differ("err_use_buttons", *LANGS)
    az, ru = [await scene.chat(lang) for lang in LANGS]
    for chat, question_id in (
        (az, "notice"),
        (az, "urgent"),
        (ru, "violations"),
        (ru, "ongoing"),
    ):
        await chat.go_to(question_id)
        before = await chat.snapshot()
        await chat.say("Bəli, mənim qardaşım")
        await chat.refused("err_use_buttons", before)
    # At the summary, too.
    await ru.go_to("evidence_files")
    ru.last = await ru.walker.answer([await ru.question_message()])
    assert any(data == "P" for _, data in buttons(ru.last[-1]))
    before = await ru.snapshot()
    await ru.say("submit please")
    await ru.refused("err_use_buttons", before)


# --- files and text in the wrong place ----------------------------------------------------


async def test_a_file_where_text_is_expected(scene: Scene) -> None:
    strings_differ("err_text_expected", *LANGS)
    az, ru = [await scene.chat(lang) for lang in LANGS]
    await az.go_to("urgent")
    before = await az.snapshot()
    await az.send("document", data=b"%PDF-1.4 x", file_name="a.pdf")
    await az.refused("err_use_buttons", before)

    await az.go_to("urgent_details")
    before = await az.snapshot()
    await az.send("document", data=b"%PDF-1.4 y", file_name="b.pdf", caption="a caption")
    await az.refused("err_text_expected", before)
    await az.send("photo", data=os.urandom(2000), caption="a caption")
    await az.refused("err_text_expected", before)
    await az.send("video", data=os.urandom(2000), file_name="v.mp4")
    await az.refused("err_text_expected", before)
    assert scene.blob_files() == []

    # A voice note IS part of a written answer.
    await az.send("voice", data=b"OggS" + os.urandom(2000), duration=4)
    assert [text_of(m) for m in az.last] == [az.text("received_part")]
    details = scene.index("urgent_details")
    assert [d for _, d in buttons(az.last[0])] == [f"D:{details}"]
    pending = (await az.snapshot())[2]
    assert len(pending) == 1
    assert pending[0]["voice"]["kind"] == "voice"
    assert pending[0]["voice"]["size"] == 2004
    assert len(scene.blob_files()) == 1
    await az.say("and in words")
    await az.press(await az.question_message(), f"D:{details}")
    answers = (await az.snapshot())[1]
    assert [p.get("text") for p in answers["urgent_details"]] == [None, "and in words"]

    # A date is written too, in Russian.
    await ru.go_to("started")
    before = await ru.snapshot()
    await ru.send("document", data=b"%PDF-1.4 z", file_name="c.pdf")
    await ru.refused("err_text_expected", before)
    await ru.send("voice", data=b"OggS" + os.urandom(100), duration=1)
    await ru.refused("err_text_expected", before)
    await ru.say("20.03.2023")
    answers = (await ru.snapshot())[1]
    assert answers["started"] == {"precision": "day", "value": "2023-03-20"}
    assert len(scene.blob_files()) == 1


async def test_text_where_a_file_is_expected(scene: Scene) -> None:
    strings_differ("err_file_expected", *LANGS)
    for lang in LANGS:
        chat = await scene.chat(lang)
        await chat.go_to("evidence_files")
        before = await chat.snapshot()
        await chat.say("the video is on my other phone")
        await chat.refused("err_file_expected", before)
    await chat.send("sticker")
    await chat.refused("err_sticker", before)
    await chat.send("document", data=b"evidence", file_name="protokol.pdf")
    assert [text_of(m) for m in chat.last] == [chat.text("received_file", count=1)]
    assert len((await chat.snapshot())[2]) == 1


@pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning")
async def test_a_file_over_the_size_limit_is_refused_and_nothing_is_stored(scene: Scene) -> None:
    strings_differ("err_file_too_big", *LANGS)
    assert scene.run.settings.max_file_mb == 1
    big = os.urandom(1_500_000)
    for lang, kind in zip(LANGS, ("document", "photo"), strict=True):
        chat = await scene.chat(lang)
        await chat.go_to("evidence_files")
        before = await chat.snapshot()
        await chat.send(kind, data=big, file_name="video.mp4")
        await chat.refused("err_file_too_big", before, limit_mb=1)
        assert scene.blob_files() == []
        assert await scene.attachments() == 0

    # Just under the limit is taken.
    await chat.send("document", data=os.urandom(2**20 - 1), file_name="short.mp4")
    assert [text_of(m) for m in chat.last] == [chat.text("received_file", count=1)]
    assert len(scene.blob_files()) == 1
    assert await scene.attachments() == 1


async def test_the_number_of_files_per_report_is_limited(scene: Scene) -> None:
    strings_differ("err_report_full", *LANGS)
    limit_mb = scene.run.settings.max_report_mb
    assert scene.run.settings.max_report_files == 2
    az, ru = [await scene.chat(lang) for lang in LANGS]
    await az.go_to("evidence_files")
    for count in (1, 2):
        await az.send("document", data=os.urandom(1000), file_name=f"{count}.pdf")
        assert [text_of(m) for m in az.last] == [az.text("received_file", count=count)]
    before = await az.snapshot()
    await az.send("document", data=os.urandom(1000), file_name="3.pdf")
    await az.refused("err_report_full", before, count=2, limit_mb=limit_mb)
    assert len(scene.blob_files()) == 2
    assert await scene.attachments() == 2
    await az.press(await az.question_message(), f"D:{scene.index('evidence_files')}")
    assert len((await az.snapshot())[1]["evidence_files"]) == 2

    # A voice note at the text question counts too, in Russian.
    await ru.go_to("urgent_details")
    await ru.send("voice", data=b"OggS" + os.urandom(100), duration=1)
    await ru.go_to("evidence_files")
    await ru.send("photo", data=os.urandom(1000))
    assert [text_of(m) for m in ru.last] == [ru.text("received_file", count=1)]
    before = await ru.snapshot()
    await ru.send("photo", data=os.urandom(1000))
    await ru.refused("err_report_full", before, count=2, limit_mb=limit_mb)
    assert len(scene.blob_files()) == 4


# --- where and how fast -------------------------------------------------------------------


async def test_a_group_chat_is_answered_once_and_left(scene: Scene) -> None:
    strings_differ("group_refused", *LANGS)
    for lang in LANGS:
        chat = await scene.chat(lang)
        group = await scene.run.client.create_group("Ailə", [chat.id])
        sent = await chat.client.send_text(chat.id, "/start", chat_id=group["id"])
        assert sent.update_id is not None
        await chat.client.wait_for_bot_messages(group["id"], after=sent.message_id, count=2)
        await chat.client.wait_idle(quiet=0.3)
        state = await chat.client.chat_state(group["id"])
        out = [m for m in state["messages"] if m["direction"] == "out"]
        assert [(m["kind"], text_of(m)) for m in out] == [
            ("text", chat.text("group_refused")),
            ("left_chat_member", ""),
        ]
        assert state["bot_is_member"] is False
        # The bot is gone: later messages never reach it.
        again = await chat.client.send_text(chat.id, "hello?", chat_id=group["id"])
        assert again.update_id is None
        # Nothing happened in the private chat, and no draft was opened.
        assert await chat.client.transcript(chat.id) == []
        assert await load_draft(scene.run, chat.id) is None


async def test_flooding_is_slowed_down_without_losing_what_was_saved(
    compact_settings: Settings, log_stream: io.StringIO
) -> None:
    strings_differ("err_slow_down", "ru", "az")
    async with running_bot(compact_settings, rate_burst=5, rate_per_minute=60) as run:
        scene = make_scene(run, log_stream)
        ru, az = await scene.chat("ru"), await scene.chat("az")
        await ru.go_to("urgent_details")  # 4 updates of the burst of 5
        await ru.say("saved before the flood")
        before = await ru.snapshot()
        assert before[2] == ({"text": "saved before the flood"},)

        flood = [f"flood {i}" for i in range(30)]
        for text in flood:
            await ru.client.send_text(ru.id, text)
        slow_down = ru.text("err_slow_down")
        await ru.wait_for(slow_down)
        await ru.client.wait_idle(quiet=1.2, max_wait=20)  # every flood update handled
        answers = [text_of(m) for m in await ru.reporter.settle(change=False)]
        assert answers.count(slow_down) == 1
        assert len(answers) < len(flood)

        # Saved before the flood: intact. Taken during it: whole parts, in order, no repeats.
        position, saved, pending = await ru.snapshot()
        assert (position, saved) == before[:2]
        assert pending[0] == {"text": "saved before the flood"}
        taken = [part["text"] for part in pending[1:]]
        assert taken == sorted(set(taken), key=flood.index)
        assert len(taken) < len(flood)

        # The bot answers again once the reporter slows down (a token per second).
        await asyncio.sleep(1.0)
        await ru.say("after the flood")
        ru.collects("urgent_details")
        assert (await ru.snapshot())[2][-1] == {"text": "after the flood"}

        # Another reporter is not slowed down by this one; their notice is in their language.
        await az.say("/start")
        assert [text_of(m) for m in az.last] == [az.text("language_prompt")]
        for _ in range(8):
            await az.client.send_text(az.id, "salam")
        await az.wait_for(az.text("err_slow_down"))


async def test_flood_messages_are_wiped_with_the_conversation(
    compact_settings: Settings, log_stream: io.StringIO
) -> None:
    async with running_bot(compact_settings, rate_burst=8, rate_per_minute=600) as run:
        scene = make_scene(run, log_stream)
        chat = await scene.chat("en")
        await chat.go_to("urgent_details")
        for i in range(20):
            await chat.client.send_text(chat.id, f"my brother was taken {i}")
        await chat.wait_for(chat.text("err_slow_down"))
        await chat.client.wait_idle(quiet=0.5, max_wait=20)
        await chat.reporter.settle(change=False)
        messages = await chat.say("/cancel")
        assert text_of(messages[-1]) == chat.text("cancel_confirm")
        await chat.press(messages[-1], "C:y")
        endings = [chat.text("cancelled"), chat.text("wiped")]
        assert [text_of(m) for m in chat.last] == endings
        transcript = await chat.client.transcript(chat.id)
        left = [text_of(m) for m in transcript if not m["deleted"] and text_of(m) not in endings]
        assert left == []


# --- commands -----------------------------------------------------------------------------


async def test_help_privacy_language_and_start_midway(scene: Scene) -> None:
    for lang, other in (("en", "ru"), ("ru", "az")):
        chat = await scene.chat(lang)
        await chat.go_to("urgent_details")
        await chat.say("a part written before the commands")
        before = await chat.snapshot()

        for command, key in (("/help", "help"), ("/privacy", "privacy")):
            await chat.say(command)
            assert [text_of(m) for m in chat.last] == [chat.text(key)]
            assert await chat.snapshot() == before

        # /language, then a new language: the current question again, in that language.
        await chat.say("/language")
        assert [text_of(m) for m in chat.last] == [chat.text("language_prompt")]
        assert [d for _, d in buttons(chat.last[0])] == ["L:az", "L:ru", "L:en"]
        await chat.press(chat.last[0], f"L:{other}")
        chat.lang = other
        assert text_of(chat.last[0]) == chat.text("language_set")
        assert len(chat.last) == 2
        chat.asks("urgent_details")
        assert [label for label, _ in buttons(chat.last[-1])] == [chat.text("button_done")]
        assert await chat.snapshot() == before
        assert (await chat.draft()).language == other

        # /start mid-way: welcome back, and the same question.
        await chat.say("/start")
        assert text_of(chat.last[0]) == chat.text("resumed")
        assert len(chat.last) == 2
        chat.asks("urgent_details")
        assert await chat.snapshot() == before

    # Unknown commands and commands addressed to the bot get the help.
    for command in ("/nonsense", "/HELP@intake_bot extra words"):
        await chat.say(command)
        assert [text_of(m) for m in chat.last] == [chat.text("help")]
    await chat.press(await chat.question_message(), f"D:{scene.index('urgent_details')}")
    answers = (await chat.snapshot())[1]
    assert answers["urgent_details"] == [{"text": "a part written before the commands"}]


async def test_anything_before_start_asks_for_start(scene: Scene) -> None:
    strings_differ("err_start_first", *LANGS)
    for lang in LANGS:
        chat = await scene.chat(lang)
        await chat.say("Salam, kömək lazımdır")
        chat.answered("err_start_first")
    await chat.send("document", data=b"doc", file_name="x.pdf")
    chat.answered("err_start_first")
    await chat.say("/cancel")
    chat.answered("cancel_nothing")
    await chat.send("sticker")
    chat.answered("err_sticker")
    bot_message = next(m for m in await chat.client.transcript(chat.id) if m["direction"] == "out")
    await chat.press(bot_message, "A:1:0", forge=True)
    chat.answered("err_start_first")
    assert await load_draft(scene.run, chat.id) is None
    assert scene.blob_files() == []

    await chat.say("/start")
    assert [text_of(m) for m in chat.last] == [chat.text("language_prompt")]


# --- text: too long, and every kind of character ------------------------------------------


async def test_text_over_the_questions_limit_is_refused(scene: Scene) -> None:
    strings_differ("err_too_long", *LANGS)
    for lang in LANGS:
        chat = await scene.chat(lang)
        await chat.go_to("urgent_details")
        await chat.say("kept")
        before = await chat.snapshot()
        await chat.say("ə" * (TEXT_LIMIT + 1))
        await chat.refused("err_too_long", before, limit=TEXT_LIMIT)
    await chat.say("ş" * TEXT_LIMIT)
    assert (await chat.snapshot())[2] == ({"text": "kept"}, {"text": "ş" * TEXT_LIMIT})


ODD_TEXTS = [
    "\u202eRTL override\u202c, \u200fright-to-left mark\u200e and עברית بالعربية",
    "👩\u200d👩\u200d👧 ZWJ family, 🏳️\u200d🌈, 👍🏽, 🇦🇿",
    "e\u0301 combining, Z\u0351\u0360a\u0337l\u035cg\u0489o, ə\u0308",
    "Əə Ğğ Iı İi Öö Üü Şş Çç: İlqar ağır vəziyyətdədir, ŞƏKİ, IĞDIR",
    "control \x01\x02\x07\x08\x0b\x0c\x0e\x1b[31m\x1f\x7f\u0085\u2028\u2029 and\ttab",
    "zero\u200bwidth\u200cnon\u200djoiner\u2060word\ufeffbom\u00adsoft",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 astral 𠜎 \U0010fffd private use \ue000",  # noqa: RUF001
    "Лейла: «избили в отделе» — 20.03.2023",
]
"""Texts that must be stored exactly as sent: not normalised, trimmed or re-encoded."""


async def test_odd_unicode_is_accepted_and_stored_exactly(scene: Scene) -> None:
    chat = await scene.chat("az")
    await chat.go_to("urgent_details")
    for text in ODD_TEXTS:
        await chat.say(text)
        chat.collects("urgent_details")
    assert (await chat.snapshot())[2] == tuple({"text": text} for text in ODD_TEXTS)
    await chat.press(await chat.question_message(), f"D:{scene.index('urgent_details')}")
    assert (await chat.snapshot())[1]["urgent_details"] == [{"text": t} for t in ODD_TEXTS]

    # Submitted, the report holds them exactly (read back as the key-holder).
    await chat.go_to("evidence_files")
    chat.last = await chat.walker.answer([await chat.question_message()])
    await chat.press(last_with_buttons(chat.last), "P")
    assert text_of(chat.last[0]) == chat.text("submitted")
    app = scene.run.app
    async with app.sessions() as session:
        ring = await keyring.unlock(
            session, "amina", ADMIN_PASSWORD, scene.run.settings.kdf_profile.floor
        )
        report_id = await session.scalar(
            select(Report.id).where(Report.state == ReportState.SUBMITTED.value)
        )
        assert report_id is not None
        dek = await reports.report_key(session, ring, report_id)
        payloads = await reports.read_payloads(session, dek, report_id)
    documents = [json.loads(p.reveal()) for kind, _, p in payloads if kind is PayloadKind.DOCUMENT]
    assert len(documents) == 1
    answers = {a["question"]: a["value"] for a in documents[0]["answers"]}
    assert answers["urgent_details"] == [{"text": text} for text in ODD_TEXTS]


async def test_a_text_part_is_acknowledged_like_a_voice_note(scene: Scene) -> None:
    """Was a bug (the whole question was sent again after every part): kept as a check."""
    for lang in LANGS:
        chat = await scene.chat(lang)
        await chat.go_to("urgent_details")
        details = scene.index("urgent_details")
        assert [d for _, d in buttons(await chat.question_message())] == [
            f"D:{details}",
            f"S:{details}",
        ]
        await chat.say("the first part of my answer")
        # The same answer a voice note gets: received_part, with Done (and no Skip, which
        # would lose the part).
        assert [text_of(m) for m in chat.last] == [chat.text("received_part")]
        assert [d for _, d in buttons(chat.last[0])] == [f"D:{details}"]


async def test_a_text_starting_with_a_slash_that_is_no_command_is_an_answer(
    scene: Scene,
) -> None:
    chat = await scene.chat("az")
    await chat.go_to("urgent_details")
    answer = "/ gecə saat 3-də gəldilər, qapını sındırdılar"
    await chat.say(answer)
    assert [text_of(m) for m in chat.last] != [chat.text("help")]
    assert (await chat.snapshot())[2] == ({"text": answer},)


async def test_refused_input_is_wiped_with_the_conversation(scene: Scene) -> None:
    """Promise 5 for the refusals: after /cancel, nothing of them is left in the chat."""
    chat = await scene.chat("ru")
    await chat.say("hello before start")
    chat.answered("err_start_first")
    urgent = await chat.go_to("urgent")
    await chat.say("Да")
    await chat.send("sticker")
    await chat.send("poll", question="?", options=["a", "b"])
    await chat.send("location", latitude=1.0, longitude=2.0)
    await chat.press(urgent, "A:9999:0", forge=True)
    await chat.go_to("urgent_details")
    typed = await chat.send("text", text="часть ответа")
    await chat.client.edit_message(chat.id, typed.message_id, text="исправлено")
    chat.last = await chat.reporter.settle()
    chat.answered("err_edited")
    await chat.send("document", data=b"%PDF", file_name="x.pdf")
    chat.answered("err_text_expected")
    await chat.press(urgent, f"A:{scene.index('urgent')}:2")
    chat.answered("err_stale_button")
    await chat.say("/help")

    await chat.say("/cancel")
    await chat.press(chat.last[-1], "C:y")
    endings = [chat.text("cancelled"), chat.text("wiped")]
    assert [text_of(m) for m in chat.last] == endings
    transcript = await chat.client.transcript(chat.id)
    left = [text_of(m) for m in transcript if not m["deleted"] and text_of(m) not in endings]
    assert left == []


async def test_an_answer_after_an_abandoned_status_check_is_saved(scene: Scene) -> None:
    chat = await scene.chat("ru")
    urgent = await chat.go_to("urgent")
    await chat.say("/status")
    assert [text_of(m) for m in chat.last] == [chat.text("status_prompt")]
    # The reporter goes on with the report instead, with the buttons ...
    await chat.press(urgent, f"A:{scene.index('urgent')}:0")
    chat.asks("urgent_details")
    # ... and writes the next answer.
    answer = await chat.send("text", text="Брата задержали вчера вечером")
    assert not await chat.deleted(answer.message_id)
    assert (await chat.snapshot())[2] == ({"text": "Брата задержали вчера вечером"},)

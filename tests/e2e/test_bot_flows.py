"""End-to-end flows of the reporter's side: the real bot (python-telegram-bot over HTTP)
against the Bot API simulator, on SQLite and on PostgreSQL.

Each test starts an installation (admin "amina"), the simulator and the bot in-process
(:func:`harness.running_bot`), plays one or two reporters through the conversation and
then checks what staff can read: the report decrypted with amina's keyring, its files,
its clear triage labels, and what is left in the chat on the reporter's phone.

The last tests pin down bugs found and fixed while writing these (each says which).

Timing: the harness's ``Reporter.settle`` waits for the whole simulator to be quiet for
0.15 s after every step, so a full questionnaire (79 questions, about 140 steps) takes
15 s. :class:`Chat` instead waits for exactly the message it needs in its own chat (the
bot processes one reporter's updates strictly in order, so no step can overtake the one
before): about 4 s, and it works with two reporters at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import re
import secrets
from collections.abc import AsyncIterator, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from harness import (
    ADMIN_PASSWORD,
    BotRun,
    JsonDict,
    Reporter,
    Walker,
    buttons,
    last_with_buttons,
    running_bot,
    text_of,
)

from intake_bot.bootstrap import App
from intake_bot.config import Settings
from intake_bot.crypto import PayloadKind, receipt_lookup_id
from intake_bot.ephemeral import FILE_NAME, load_or_create
from intake_bot.questionnaire.loader import load_default
from intake_bot.questionnaire.model import NO, YES, Question, Questionnaire, QuestionType
from intake_bot.services import drafts as draft_service
from intake_bot.services import keyring, reports
from intake_bot.services.drafts import DraftContext
from intake_bot.services.keyring import read_pin
from intake_bot.simulator.client import AlbumItem, SimulatorClient
from intake_bot.storage import drafts as draft_repo
from intake_bot.storage import reports as report_repo
from intake_bot.storage.models import ReportState
from intake_bot.storage.reports import ReportSummary

pytestmark = pytest.mark.slow

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""For checks of the conversation itself, where the database adds nothing."""

QUIET = 0.3
"""Seconds a chat must stay unchanged to count as settled (before looking at it)."""
WAIT = 20.0
"""Longest wait for any one answer of the bot."""

LANGUAGES = ("az", "ru", "en")
ALL_MODULES = [
    "arbitrary_arrest",
    "torture",
    "fabricated_charges",
    "surveillance",
    "blackmail",
    "death_in_custody",
    "threats_abroad",
]
"""Kinds of violation that between them show every module of section 6."""
SAMPLE_DATE = "20.03.2023"
SAMPLE_DATE_VALUE = {"precision": "day", "value": "2023-03-20"}

TEXTS = {
    "az": "Şəhid İlqar küçəsində çağırış vərəqəsi göstərmədən saxladılar; ğ ı ö ü ş ç ə İ",
    "ru": "Задержали у дома на улице Низами, ордер не показали; «ё» и «й» на месте",  # noqa: RUF001
    "en": "They took him outside his home on Nizami street without showing a warrant",
}
"""A free-text answer in each language (Azerbaijani with every letter it adds to Latin)."""

PDF = b"%PDF-1.7\n% protocol of the search\n" + bytes(range(256)) * 300 + b"\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(255, -1, -1)) * 150 + b"\xff\xd9"


# --- a faster reporter -----------------------------------------------------------------


class Chat(Reporter):
    """A :class:`harness.Reporter` that waits for exactly what it expects in its own chat.

    ``settle`` (used by :class:`harness.Walker`) waits until the bot has sent a new
    message with buttons: every step of the questionnaire ends with one (the next
    question, the question again after a part of an answer, the summary). A toggle gets
    no new message, so it does not wait: updates of one reporter are processed strictly
    in order, and the next press cannot overtake it. :meth:`expect` waits for a number of
    messages instead, and :meth:`quiet` until the chat stops changing. None of this needs
    the whole simulator to be idle, so several reporters can run at once.
    """

    def __init__(self, client: SimulatorClient, user: JsonDict) -> None:
        super().__init__(client, user)
        self.expect_reply = True

    @classmethod
    async def open(cls, client: SimulatorClient, name: str, hint: str | None) -> Chat:
        user = await client.create_user(name, username=f"{name.lower()}_e2e", language_code=hint)
        return cls(client, user)

    async def press(self, message: JsonDict, data: str) -> list[JsonDict]:
        self.expect_reply = not data.startswith("T:")
        return await super().press(message, data)

    async def settle(self) -> list[JsonDict]:
        if not self.expect_reply:
            self.expect_reply = True
            return []
        count = 1
        while True:
            found = await self.client.wait_for_bot_messages(
                self.id, after=self.seen, count=count, max_wait=WAIT
            )
            if any(buttons(m) for m in found):
                self.seen = max(m["message_id"] for m in found)
                return found
            count = len(found) + 1

    async def expect(self, count: int) -> list[JsonDict]:
        """The next ``count`` messages of the bot (after those already seen)."""
        found = await self.client.wait_for_bot_messages(
            self.id, after=self.seen, count=count, max_wait=WAIT
        )
        self.seen = max(m["message_id"] for m in found)
        return found

    async def press_expect(self, message: JsonDict, data: str, count: int) -> list[JsonDict]:
        await self.client.press_button(self.id, message["message_id"], data)
        return await self.expect(count)

    async def say_expect(self, text: str, count: int) -> list[JsonDict]:
        await self.client.send_text(self.id, text)
        return await self.expect(count)

    async def quiet(self) -> list[JsonDict]:
        """Wait until this chat has not changed for :data:`QUIET` seconds; the transcript."""
        state = await self.client.chat_state(self.id)
        while True:
            later = await self.client.chat_state(
                self.id, changed_after=state["version"], max_wait=QUIET
            )
            if later["version"] == state["version"]:
                messages: list[JsonDict] = state["messages"]
                return messages
            state = later


# --- catalogues --------------------------------------------------------------------------


@cache
def questionnaire() -> Questionnaire:
    return load_default()


@cache
def catalogue(lang: str) -> Mapping[str, str]:
    """The bot's own strings in one language, read from the data files."""
    base = resources.files("intake_bot.telegram").joinpath("data")
    loaded: dict[str, str] = yaml.safe_load(base.joinpath(f"strings.{lang}.yaml").read_text())
    return loaded


def say(lang: str, key: str, **params: Any) -> str:
    text = catalogue(lang)[key]
    return text.format(**params) if params else text


@cache
def _phrases(lang: str) -> frozenset[str]:
    """Every fixed piece of text the bot can show in one language."""
    pieces: set[str] = set()
    for text in catalogue(lang).values():
        pieces.update(p for p in re.split(r"\{[a-z_]+\}", text) if p.strip())
    for section in questionnaire().sections:
        pieces.add(section.title[lang])
    for question in questionnaire().questions:
        pieces.add(question.text[lang])
        if question.help:
            pieces.add(question.help[lang])
        pieces.update(option.label[lang] for option in question.options)
    return frozenset(pieces)


@cache
def foreign_phrases(lang: str) -> frozenset[str]:
    """Phrases of the other languages that ``lang`` does not share (long enough that
    finding one inside a message cannot be a coincidence)."""
    others = set().union(*(_phrases(other) for other in LANGUAGES if other != lang))
    return frozenset(p for p in others - _phrases(lang) if len(p.strip()) >= 12)


@cache
def wordlist() -> frozenset[str]:
    text = resources.files("diceware").joinpath("wordlists", "wordlist_en_eff.txt").read_text()
    return frozenset(line.split()[-1] for line in text.splitlines() if line.strip())


def receipt_words(code: str) -> list[str] | None:
    """``code`` split into EFF words (some of which contain a hyphen), or None."""
    tokens = code.split("-")

    def split(at: int) -> list[str] | None:
        if at == len(tokens):
            return []
        for width in (1, 2):
            word = "-".join(tokens[at : at + width])
            if at + width <= len(tokens) and word in wordlist():
                rest = split(at + width)
                if rest is not None:
                    return [word, *rest]
        return None

    return split(0)


# --- driving the conversation -----------------------------------------------------------


def question_in(walker: Walker, messages: list[JsonDict]) -> Question | None:
    """The question whose buttons are on the latest message with buttons, if any."""
    with_buttons = [m for m in messages if buttons(m)]
    return walker.question_of(with_buttons[-1]) if with_buttons else None


def index_of(question_id: str) -> int:
    return next(i for i, q in enumerate(questionnaire().questions) if q.id == question_id)


def at_review(messages: list[JsonDict]) -> bool:
    return any(data == "P" for m in messages for _, data in buttons(m))


async def begin(
    run: BotRun, name: str, lang: str, hint: str | None = None
) -> tuple[Chat, Walker, list[JsonDict]]:
    """A new reporter: /start, the language chosen; returns the messages with the notice."""
    chat = await Chat.open(run.client, name, hint)
    prompt = await chat.say("/start")
    assert [text_of(m) for m in prompt] == [say("en", "language_prompt")]
    assert ("English", "L:en") in buttons(prompt[0])
    messages = await chat.press(prompt[0], f"L:{lang}")
    assert text_of(messages[0]) == say(lang, "language_set")
    walker = Walker(chat, questionnaire())
    assert question_in(walker, messages) == questionnaire().question("notice")
    return chat, walker, messages


async def walk_until(walker: Walker, messages: list[JsonDict], question_id: str) -> list[JsonDict]:
    """Answer questions until ``question_id`` is asked."""
    for _ in range(200):
        question = question_in(walker, messages)
        if question is not None and question.id == question_id:
            return messages
        if at_review(messages):
            break
        messages = await walker.answer(messages)
    raise AssertionError(f"{question_id} was not asked; asked {walker.asked}")


async def skip_until(
    walker: Walker, messages: list[JsonDict], question_id: str | None = None
) -> list[JsonDict]:
    """Skip every question that may be skipped (answer the required ones) until
    ``question_id`` is asked, or to the summary."""
    for _ in range(200):
        if at_review(messages):
            if question_id is None:
                return messages
            break
        question = question_in(walker, messages)
        assert question is not None, [text_of(m)[:60] for m in messages]
        if question.id == question_id:
            return messages
        if question.required:
            messages = await walker.answer(messages)
        else:  # multiple choice has no Skip: Done with nothing chosen skips it
            skip = "D" if question.type is QuestionType.MULTI else "S"
            messages = await walker.reporter.press(
                last_with_buttons(messages), f"{skip}:{index_of(question.id)}"
            )
    raise AssertionError(f"did not reach {question_id or 'the summary'}")


def full_walker(walker: Walker, lang: str) -> Walker:
    """Choices that show every module and every follow-up question."""
    walker.choices.update(
        urgent="someone_else",
        role="relative",
        identity="org_only",
        contact_method="signal",
        country_now="abroad",
        violations=ALL_MODULES,
        abroad_reported="yes",
        complaints=["police", "echr"],
        torture_methods=["beating", "sleep_deprivation"],
        victim_sex="male",
        ongoing="no",
    )
    walker.texts.update({"event_account": TEXTS[lang], "reporter_name": "Leyla Əliyeva"})
    return walker


def expected_value(walker: Walker, question: Question) -> Any:
    """What the walker answered to ``question``, as the engine stores it."""
    wanted = walker.choices.get(question.id)
    if question.type is QuestionType.NOTICE:
        return "ack"
    if question.type is QuestionType.YESNO:
        return NO if wanted == "no" else YES
    if question.type is QuestionType.SINGLE:
        return wanted or question.options[0].id
    if question.type is QuestionType.MULTI:
        chosen = wanted or [question.options[0].id]
        return [o.id for o in question.options if o.id in chosen]
    if question.type is QuestionType.DATE:
        return SAMPLE_DATE_VALUE
    if question.type is QuestionType.TEXT:
        return [{"text": walker.texts.get(question.id, f"answer to {question.id}")}]
    raise AssertionError(f"no expected value for {question.id}")


@dataclass
class Evidence:
    """What the reporter sent at the evidence question."""

    files: list[tuple[str, bytes]] = field(default_factory=list)
    """(kind, bytes) in the order sent."""
    forward_text: str = ""


async def send_evidence(
    chat: Chat, walker: Walker, messages: list[JsonDict], lang: str
) -> tuple[list[JsonDict], Evidence]:
    """At the evidence question: a document, a photo, an album of three and a forwarded
    message, then Done. Returns the next question's messages."""
    question = question_in(walker, messages)
    assert question is not None
    assert question.id == "evidence_files"
    walker.asked.append(question.id)
    evidence = Evidence()
    client = chat.client

    await client.send_document(
        chat.id, PDF, file_name="protokol_şəki.pdf", mime_type="application/pdf", caption="axtarış"
    )
    evidence.files.append(("document", PDF))
    replies = await chat.settle()
    assert [text_of(m) for m in replies] == [say(lang, "received_file", count=1)]

    await client.send_photo(chat.id, JPEG, caption="göyərmə")
    evidence.files.append(("photo", JPEG))
    replies = await chat.settle()
    assert [text_of(m) for m in replies] == [say(lang, "received_file", count=2)]

    album = [
        AlbumItem("photo", JPEG[::-1]),
        AlbumItem("video", b"\x00\x00\x00\x18ftypmp42" + b"v" * 5000, mime_type="video/mp4"),
        AlbumItem("photo", JPEG + b"second"),
    ]
    await client.send_album(chat.id, album)
    evidence.files += [(item.kind, item.data) for item in album]
    replies = await chat.expect(3)
    assert [text_of(m) for m in replies] == [say(lang, "received_file", count=n) for n in (3, 4, 5)]

    evidence.forward_text = "Sən də qardaşın kimi içəri düşəcəksən."
    await client.send(
        chat.id,
        "text",
        text=evidence.forward_text,
        forward_origin={
            "type": "user",
            "user": {"id": 6_000_000_042, "first_name": "Rəşad", "username": "naməlum_42"},
        },
    )
    replies = await chat.settle()
    assert replies, "the forwarded message got no answer"
    # Done on the last message with the question's buttons.
    messages = await chat.press(last_with_buttons(replies), f"D:{index_of(question.id)}")
    return messages, evidence


# --- reading what staff see -------------------------------------------------------------


async def summaries(app: App) -> list[ReportSummary]:
    async with app.sessions() as session:
        return await report_repo.summaries(session)


async def only_report(app: App) -> ReportSummary:
    found = await summaries(app)
    assert len(found) == 1, found
    return found[0]


async def open_drafts(app: App) -> int:
    async with app.sessions() as session:
        return await draft_repo.count_drafts(session)


@dataclass
class Decrypted:
    """A report as a key-holder reads it."""

    payloads: list[tuple[PayloadKind, JsonDict]]
    files: dict[bytes, bytes]

    def of(self, kind: PayloadKind) -> list[JsonDict]:
        return [body for k, body in self.payloads if k is kind]

    def document(self) -> JsonDict:
        (document,) = self.of(PayloadKind.DOCUMENT)
        return document


async def read_as_amina(run: BotRun, report_id: bytes) -> Decrypted:
    """Unlock amina's keyring and decrypt every payload and attachment of a report."""
    app = run.app
    async with app.sessions() as session:
        ring = await keyring.unlock(
            session, "amina", ADMIN_PASSWORD, run.settings.kdf_profile.floor
        )
        dek = await reports.report_key(session, ring, report_id)
        payloads = [
            (kind, json.loads(plain.reveal()))
            for kind, _, plain in await reports.read_payloads(session, dek, report_id)
        ]
        attachments = await report_repo.attachments(session, report_id)
    files = {}
    for file_id in attachments:
        files[file_id] = b"".join(
            [piece async for piece in reports.read_file(app.blobs, dek, file_id)]
        )
    return Decrypted(payloads, files)


def blob_files(settings: Settings) -> list[Path]:
    root = settings.blob_dir
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def answers_of(document: JsonDict) -> dict[str, Any]:
    return {a["question"]: a["value"] for a in document["answers"]}


def parse_time(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    assert moment.utcoffset() == dt.timedelta(0), text
    return moment


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def submit(chat: Chat, messages: list[JsonDict], lang: str) -> tuple[str, JsonDict]:
    """Press Submit on the summary; returns the receipt code and the receipt message."""
    replies = await chat.press_expect(last_with_buttons(messages), "P", 3)
    texts = [text_of(m) for m in replies]
    assert len(replies) == 3, texts
    assert texts[0] == say(lang, "submitted")
    assert texts[2] == say(lang, "wiped")
    receipt = replies[1]
    code = texts[1].split("\n\n")[1]
    assert texts[1] == say(lang, "receipt", code=code)
    return code, receipt


@asynccontextmanager
async def draft_context(settings: Settings) -> AsyncIterator[DraftContext]:
    """What the bot's sweeper uses, rebuilt from the running bot's boot file."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        yield DraftContext(
            read_pin(settings.signing_key_pin),
            load_or_create(settings.runtime_dir, now().date()),
            settings.kdf_profile.receipt,
            pool,
        )
    finally:
        pool.shutdown(wait=True)


def live(transcript: Iterable[JsonDict]) -> list[JsonDict]:
    return [m for m in transcript if not m["deleted"]]


# --- the tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_full_report_in_each_language(settings: Settings, lang: str) -> None:
    """Every module, every follow-up, every kind of evidence, in one language; then
    everything a reporter and staff are promised about the submitted report."""
    hints = {"az": "ru", "ru": "en", "en": "az"}  # Telegram's language is only a hint
    async with running_bot(settings) as run:
        started_before = now()
        chat, walker, messages = await begin(run, "Leyla", lang, hints[lang])
        started_after = now()
        full_walker(walker, lang)
        messages = await walk_until(walker, messages, "evidence_files")
        messages, evidence = await send_evidence(chat, walker, messages, lang)
        messages = await walker.to_review(messages)

        shown = set(walker.asked)
        expected_shown = {q.id for q in questionnaire().questions} - {
            "self_profile",  # only for victims
            "whereabouts_confirmed",  # only for disappearances
            "charges_no_arrest",  # only without an arrest
        }
        assert shown == expected_shown, sorted(shown ^ expected_shown)
        assert len(walker.asked) == len(shown), "a question was asked twice"

        summary = "\n".join(text_of(m) for m in messages)
        assert summary.startswith(say(lang, "review_title"))
        assert TEXTS[lang] in summary
        assert say(lang, "review_files", count=6) in summary

        submitted_before = now()
        code, receipt = await submit(chat, messages, lang)
        submitted_after = now()

        # The receipt: six words, and a button that deletes it.
        words = receipt_words(code)
        assert words is not None, code
        assert len(words) == 6, code
        assert buttons(receipt) == [(say(lang, "button_written_down"), "W")]

        transcript = await chat.quiet()
        ids = [m["message_id"] for m in transcript]
        final = ids[-3:]
        assert [m["message_id"] for m in live(transcript)] == final
        assert all(m["direction"] == "out" for m in transcript if m["message_id"] in final)
        bot_messages = [m for m in transcript if m["direction"] == "out"]
        assert all(m["protect_content"] for m in bot_messages)
        assert sum(m["direction"] == "in" for m in transcript) > 20

        # The bot spoke the chosen language throughout (after the trilingual prompt).
        assert [text_of(m) for m in bot_messages[:2]] == [
            say("en", "language_prompt"),
            say(lang, "language_set"),
        ]
        allowed_buttons = _phrases(lang) | {say(lang, "button_written_down")}
        for message in bot_messages[1:]:
            for phrase in foreign_phrases(lang):
                assert phrase not in text_of(message), (phrase, text_of(message)[:80])
            for label, _ in buttons(message):
                bare = label.removeprefix("✓ ")
                assert bare in allowed_buttons or bare.endswith("…"), label

        await chat.client.press_button(chat.id, receipt["message_id"], "W")
        after = {m["message_id"]: m for m in await chat.quiet()}
        assert after[receipt["message_id"]]["deleted"]
        assert [m for m in after.values() if not m["deleted"]] == [
            after[final[0]],
            after[final[2]],
        ]

        # What staff see in the clear, and what amina decrypts.
        report = await only_report(run.app)
        assert report.state is ReportState.SUBMITTED
        assert report.urgent
        assert await open_drafts(run.app) == 0
        async with run.app.sessions() as session:
            lookup = receipt_lookup_id(code, run.settings.kdf_profile.receipt)
            assert await draft_repo.find_receipt(session, lookup) == report.id

        decrypted = await read_as_amina(run, report.id)
        assert decrypted.of(PayloadKind.ANSWER) == []
        assert decrypted.of(PayloadKind.DRAFT_STATE) == []
        document = decrypted.document()
        assert document["questionnaire"] == {
            "id": questionnaire().id,
            "version": questionnaire().version,
        }
        assert document["language"] == lang
        assert document["urgent"] is True
        assert started_before <= parse_time(document["started"]) <= started_after
        assert submitted_before <= parse_time(document["submitted"]) <= submitted_after

        answers = answers_of(document)
        assert list(answers) == walker.asked
        for qid in walker.asked:
            question = questionnaire().question(qid)
            assert question is not None
            if question.type is not QuestionType.FILES:
                assert answers[qid] == expected_value(walker, question), qid
        assert answers["event_account"] == [{"text": TEXTS[lang]}]

        # Evidence: five files in order, then the forwarded message with its origin.
        parts = answers["evidence_files"]
        assert len(parts) == 6
        refs = [part["file"] for part in parts[:5]]
        assert [(r["kind"], r["sha256"], r["size"]) for r in refs] == [
            (kind, hashlib.sha256(data).hexdigest(), len(data)) for kind, data in evidence.files
        ]
        assert [r["album"] for r in refs] == [False, False, True, True, True]
        assert refs[0]["name"] == "protokol_şəki.pdf"
        assert refs[0]["caption"] == "axtarış"
        forward = parts[5]["forward"]
        assert forward["text"] == evidence.forward_text
        assert forward["origin"]["type"] == "user"
        assert forward["origin"]["user"]["username"] == "naməlum_42"

        assert document["files"] == refs
        assert sorted(
            (r["sha256"], r["size"]) for r in decrypted.of(PayloadKind.MANIFEST)
        ) == sorted((r["sha256"], r["size"]) for r in refs)
        assert {bytes.fromhex(r["file"]) for r in refs} == set(decrypted.files)
        for ref in refs:
            assert (
                hashlib.sha256(decrypted.files[bytes.fromhex(ref["file"])]).hexdigest()
                == ref["sha256"]
            )
        assert sorted(decrypted.files.values()) == sorted(data for _, data in evidence.files)
        assert len(blob_files(run.settings)) == 5


async def test_change_an_answer_at_the_summary(settings: Settings) -> None:
    """The summary's "Change an answer": the new answer replaces the old one on the summary
    and in the report; adding a kind of violation walks through the module it shows (and
    nothing already answered), then returns to the summary."""
    async with running_bot(settings) as run:
        chat, walker, messages = await begin(run, "Nigar", "az")
        walker.choices.update(
            urgent="no", role="victim", identity="anonymous", violations=["fabricated_charges"]
        )
        walker.texts["place_city"] = "Bakı, Nəsimi rayonu"
        messages = await walker.to_review(messages)
        assert "Bakı, Nəsimi rayonu" in "\n".join(text_of(m) for m in messages)
        torture = [q for q in questionnaire().questions if q.section == "torture"]
        assert not set(walker.asked) & {q.id for q in torture}

        # A text answer.
        menu = await chat.press(last_with_buttons(messages), "R")
        assert [text_of(m) for m in menu] == [say("az", "review_choose")]
        choices = {data: label for label, data in buttons(menu[0])}
        place = questionnaire().question("place_city")
        assert place is not None
        assert choices[f"E:{index_of('place_city')}"] == place.text["az"]
        assert choices["B"] == say("az", "button_back_to_review")
        assert not any(f"E:{index_of(q.id)}" in choices for q in torture)
        messages = await chat.press(menu[0], f"E:{index_of('place_city')}")
        assert question_in(walker, messages) == place
        messages = await chat.say("Gəncə")
        messages = await chat.press(last_with_buttons(messages), f"D:{index_of('place_city')}")
        assert at_review(messages)
        summary = "\n".join(text_of(m) for m in messages)
        assert f"• {place.text['az']}\n→ Gəncə" in summary
        assert "Bakı, Nəsimi rayonu" not in summary

        # The kinds of violation: torture added, so its module is asked, then the summary.
        menu = await chat.press(last_with_buttons(messages), "R")
        violations = questionnaire().question("violations")
        assert violations is not None
        vi = index_of("violations")
        messages = await chat.press(menu[0], f"E:{vi}")
        labels = dict((data, label) for label, data in buttons(last_with_buttons(messages)))
        options = [o.id for o in violations.options]
        fabricated = options.index("fabricated_charges")
        assert labels[f"T:{vi}:{fabricated}"].startswith("✓ "), "the old choice is kept"
        await chat.press(last_with_buttons(messages), f"T:{vi}:{options.index('torture')}")
        messages = await chat.press(last_with_buttons(messages), f"D:{vi}")
        asked = len(walker.asked)
        messages = await walker.to_review(messages)
        assert walker.asked[asked:] == [q.id for q in torture]
        summary = "\n".join(text_of(m) for m in messages)
        for question in torture:
            assert question.text["az"] in summary

        await submit(chat, messages, "az")
        report = await only_report(run.app)
        answers = answers_of((await read_as_amina(run, report.id)).document())
        assert answers["place_city"] == [{"text": "Gəncə"}]
        assert answers["violations"] == ["torture", "fabricated_charges"]
        for question in torture:
            assert answers[question.id] == expected_value(walker, question), question.id


async def test_urgent_answer_is_visible_to_staff_at_once(settings: Settings) -> None:
    """Answering the urgency question with "Yes, someone else" marks the draft urgent in
    the clear at once, and staff can already read the answer, long before the reporter
    finishes."""
    async with running_bot(settings) as run:
        _, walker, messages = await begin(run, "Elvin", "ru")
        messages = await walker.answer(messages)  # the notice
        report = await only_report(run.app)
        assert (report.state, report.urgent, report.priority) == (
            ReportState.DRAFT,
            False,
            "normal",
        )

        walker.choices["urgent"] = "someone_else"
        messages = await walker.answer(messages)
        assert question_in(walker, messages) == questionnaire().question("urgent_details")
        report = await only_report(run.app)
        assert (report.state, report.urgent, report.priority) == (ReportState.DRAFT, True, "urgent")
        async with run.app.sessions() as session:
            urgent_first = await report_repo.summaries(session, state=ReportState.DRAFT)
        assert [r.id for r in urgent_first] == [report.id]
        answers = [body for body in (await read_as_amina(run, report.id)).of(PayloadKind.ANSWER)]
        assert {"question": "urgent", "value": "someone_else"} in answers


async def test_cancel_asks_first_then_erases_everything(settings: Settings) -> None:
    """/cancel: "No" continues with the same question; "Yes" deletes the report row, its
    payloads, its files' blobs and the conversation."""
    async with running_bot(settings) as run:
        chat, walker, messages = await begin(run, "Aysel", "en")
        walker.choices["urgent"] = "no"
        messages = await skip_until(walker, messages, "evidence_files")
        question = last_with_buttons(messages)
        await chat.client.send_document(chat.id, PDF, file_name="summons.pdf")
        await chat.settle()
        await chat.client.send_photo(chat.id, JPEG)
        await chat.settle()
        report = await only_report(run.app)
        assert len(blob_files(run.settings)) == 2

        confirm = await chat.say("/cancel")
        assert [text_of(m) for m in confirm] == [say("en", "cancel_confirm")]
        assert buttons(confirm[0]) == [
            (say("en", "button_cancel_confirm"), "C:y"),
            (say("en", "button_cancel_keep"), "C:n"),
        ]
        messages = await chat.press(confirm[0], "C:n")
        assert text_of(messages[0]) == say("en", "cancel_kept")
        assert text_of(messages[-1]) == text_of(question)
        assert question_in(walker, messages) == questionnaire().question("evidence_files")
        assert (await only_report(run.app)).id == report.id
        assert len(blob_files(run.settings)) == 2

        confirm = await chat.say("/cancel")
        final = await chat.press_expect(confirm[0], "C:y", 2)
        assert [text_of(m) for m in final] == [say("en", "cancelled"), say("en", "wiped")]
        assert await summaries(run.app) == []
        assert await open_drafts(run.app) == 0
        async with run.app.sessions() as session:
            assert await report_repo.payloads(session, report.id) == []
            assert await report_repo.attachments(session, report.id) == []
            assert await report_repo.sealed_keys(session, report.id) == {}
        assert blob_files(run.settings) == []
        transcript = await chat.quiet()
        assert [m["message_id"] for m in live(transcript)] == [m["message_id"] for m in final]


async def test_restart_resumes_where_the_reporter_stopped(settings: Settings) -> None:
    """The bot process stops and starts again (same boot secret): /start says it resumes,
    shows the same question, and the answers given before are in the report."""
    async with running_bot(settings) as run:
        chat, walker, messages = await begin(run, "Tural", "az")
        walker.choices.update(urgent="someone_else", role="witness", identity="public")
        walker.texts["reporter_name"] = "Tural Məmmədli"
        messages = await walk_until(walker, messages, "contact_method")
        waiting = last_with_buttons(messages)
        await chat.quiet()
        await run.restart()

        messages = await chat.say("/start")
        assert text_of(messages[0]) == say("az", "resumed")
        assert text_of(messages[-1]) == text_of(waiting)
        assert buttons(messages[-1]) == buttons(waiting)
        walker.choices["contact_method"] = "email"
        messages = await walker.answer(messages)
        messages = await skip_until(walker, messages)
        await submit(chat, messages, "az")

        report = await only_report(run.app)
        assert report.state is ReportState.SUBMITTED
        answers = answers_of((await read_as_amina(run, report.id)).document())
        assert answers["notice"] == "ack"
        assert answers["urgent"] == "someone_else"
        assert answers["role"] == "witness"
        assert answers["identity"] == "public"
        assert answers["reporter_name"] == [{"text": "Tural Məmmədli"}]
        assert answers["contact_method"] == "email"
        assert answers["contact_handle"] is None  # skipped after the restart


async def test_lost_boot_secret_makes_an_incomplete_report(settings: Settings) -> None:
    """A reboot (the boot file on tmpfs is gone): the bot can no longer open the draft, so
    at start it hands it to staff as an incomplete report; the reporter starts afresh."""
    async with running_bot(settings) as run:
        chat, walker, messages = await begin(run, "Kamran", "ru")
        walker.choices["urgent"] = "me"
        walker.texts["urgent_details"] = "Брата задержали вчера вечером в Баку"
        messages = await walk_until(walker, messages, "role")
        old_question = last_with_buttons(messages)
        await chat.quiet()
        before = await only_report(run.app)

        await run.halt()
        boot_file = run.settings.runtime_dir / FILE_NAME
        old_secret = boot_file.read_bytes()
        boot_file.unlink()
        await run.restart()

        # Nothing links the reporter to the draft any more: an old button is refused. (Its
        # answer also shows that the bot polls again, so its start-up sweep has run.)
        stale = await chat.press_expect(old_question, f"A:{index_of('role')}:0", 1)
        assert [text_of(m) for m in stale] == [say("en", "err_start_first")]
        assert boot_file.read_bytes() != old_secret

        report = await only_report(run.app)
        assert report.id == before.id
        assert (report.state, report.urgent) == (ReportState.INCOMPLETE, True)
        assert await open_drafts(run.app) == 0
        answers = {
            body["question"]: body["value"]
            for body in (await read_as_amina(run, report.id)).of(PayloadKind.ANSWER)
        }
        assert answers == {
            "notice": "ack",
            "urgent": "me",
            "urgent_details": [{"text": "Брата задержали вчера вечером в Баку"}],
        }

        # /start begins a fresh report.
        prompt = await chat.say("/start")
        assert [text_of(m) for m in prompt] == [say("en", "language_prompt")]
        await chat.press(prompt[0], "L:ru")
        states = sorted(r.state for r in await summaries(run.app))
        assert states == sorted([ReportState.INCOMPLETE, ReportState.DRAFT])


async def test_untouched_drafts_are_closed_after_24_hours(settings: Settings) -> None:
    """The sweeper: a draft without any answer is deleted after an hour, one with answers
    becomes an incomplete report after 24 hours, and both chats are handed back for
    wiping."""
    async with running_bot(settings) as run:
        answered, walker, messages = await begin(run, "Samir", "en")
        walker.choices["urgent"] = "no"
        messages = await walk_until(walker, messages, "role")
        empty, _, _ = await begin(run, "Ramil", "az")
        await answered.quiet()
        await empty.quiet()
        drafts_now = await summaries(run.app)
        assert [r.state for r in drafts_now] == [ReportState.DRAFT, ReportState.DRAFT]
        with_answers = [
            r.id for r in drafts_now if (await read_as_amina(run, r.id)).of(PayloadKind.ANSWER)
        ]
        assert len(with_answers) == 1
        (without_answers,) = [r.id for r in drafts_now if r.id not in with_answers]

        async with draft_context(run.settings) as ctx:

            async def sweep_at(hours: float) -> list[draft_service.ClosedDraft]:
                async with run.app.sessions() as session, session.begin():
                    return await draft_service.sweep(
                        session, ctx, run.app.blobs, now() + dt.timedelta(hours=hours)
                    )

            assert await sweep_at(0.5) == []
            assert await open_drafts(run.app) == 2
            # A draft without any answer only holds a place: it goes after an hour.
            first = await sweep_at(2)
            assert await open_drafts(run.app) == 1
            assert await sweep_at(23) == []
            closed = [*first, *await sweep_at(25)]
        assert [c.chat_id for c in closed] == [empty.id, answered.id]
        assert [c.language for c in closed] == ["az", "en"]
        for item in closed:
            sent = {m["message_id"] for m in await run.client.transcript(item.chat_id)}
            assert set(item.wipe) <= sent
            assert len(item.wipe) >= 3  # /start, the language prompt, the notice at least

        report = await only_report(run.app)
        assert (report.id, report.state) == (with_answers[0], ReportState.INCOMPLETE)
        assert await open_drafts(run.app) == 0
        answers = {
            body["question"]: body["value"]
            for body in (await read_as_amina(run, report.id)).of(PayloadKind.ANSWER)
        }
        assert answers == {"notice": "ack", "urgent": "no"}
        async with run.app.sessions() as session:
            assert await report_repo.payloads(session, without_answers) == []
            assert await report_repo.sealed_keys(session, without_answers) == {}

        prompt = await answered.say("/start")
        assert [text_of(m) for m in prompt] == [say("en", "language_prompt")]


async def test_two_reporters_at_once(settings: Settings) -> None:
    """Two reporters answering concurrently each get their own, correct report (answers,
    language, files and the urgent label all on the right one)."""
    async with running_bot(settings) as run:
        (a, walker_a, messages_a), (b, walker_b, messages_b) = await asyncio.gather(
            begin(run, "Gunel", "az"), begin(run, "Oleg", "ru")
        )
        walker_a.choices.update(urgent="no", role="victim", violations=["torture"])
        walker_a.texts["event_account"] = TEXTS["az"]
        walker_a.files["evidence_files"] = [("gunel.pdf", PDF)]
        walker_b.choices.update(
            urgent="someone_else", role="lawyer", violations=["surveillance", "blackmail"]
        )
        walker_b.texts["event_account"] = TEXTS["ru"]
        walker_b.files["evidence_files"] = [("oleg.jpg", JPEG), ("oleg-2.pdf", PDF[::-1])]
        review_a, review_b = await asyncio.gather(
            walker_a.to_review(messages_a), walker_b.to_review(messages_b)
        )
        (code_a, _), (code_b, _) = await asyncio.gather(
            submit(a, review_a, "az"), submit(b, review_b, "ru")
        )

        reports_now = await summaries(run.app)
        assert [r.state for r in reports_now] == [ReportState.SUBMITTED] * 2
        assert await open_drafts(run.app) == 0
        found: set[bytes] = set()
        for code, walker, lang in ((code_a, walker_a, "az"), (code_b, walker_b, "ru")):
            async with run.app.sessions() as session:
                lookup = receipt_lookup_id(code, run.settings.kdf_profile.receipt)
                report_id = await draft_repo.find_receipt(session, lookup)
            assert report_id is not None
            assert report_id not in found
            found.add(report_id)
            decrypted = await read_as_amina(run, report_id)
            document = decrypted.document()
            assert document["language"] == lang
            assert document["urgent"] is (walker is walker_b)
            assert {r.id: r.urgent for r in reports_now}[report_id] is (walker is walker_b)
            answers = answers_of(document)
            assert list(answers) == walker.asked
            assert answers["event_account"] == [{"text": TEXTS[lang]}]
            assert answers["violations"] == walker.choices["violations"]
            sent = [data for _, data in walker.files["evidence_files"]]
            assert [f["sha256"] for f in document["files"]] == [
                hashlib.sha256(data).hexdigest() for data in sent
            ]
            assert sorted(decrypted.files.values()) == sorted(sent)


def fixed_receipt_words(monkeypatch: pytest.MonkeyPatch, first: list[str]) -> None:
    """Make the bot's receipt codes start with ``first``, then words without a hyphen."""
    picks = iter(first)

    def choice(words: list[str]) -> str:
        return next(picks, None) or secrets.choice([w for w in words if "-" not in w])

    monkeypatch.setattr("intake_bot.crypto._receipt.secrets", SimpleNamespace(choice=choice))


async def quick_report(run: BotRun, name: str, lang: str) -> tuple[Chat, str]:
    """A report with only the required answers, submitted; the chat and its receipt code."""
    chat, walker, messages = await begin(run, name, lang)
    walker.choices["urgent"] = "me"
    messages = await skip_until(walker, messages)
    code, _ = await submit(chat, messages, lang)
    return chat, code


async def check_status(chat: Chat, typed: str, lang: str) -> str:
    """/status, then the code as typed: the code's message is deleted; the bot's answer."""
    prompt = await chat.say_expect("/status", 1)
    assert [text_of(m) for m in prompt] == [say(lang, "status_prompt")]
    sent = await chat.client.send_text(chat.id, typed)
    (answer,) = await chat.expect(1)
    transcript = {m["message_id"]: m for m in await chat.quiet()}
    assert transcript[sent.message_id]["deleted"], "the receipt code stays in the chat"
    return text_of(answer)


@SQLITE_ONLY
async def test_status_finds_the_report_by_its_receipt(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/status with the receipt code, typed loosely (capitals, spaces), finds the report;
    a wrong code does not. The message holding the code is deleted at once."""
    fixed_receipt_words(monkeypatch, [])
    async with running_bot(settings) as run:
        chat, code = await quick_report(run, "Lale", "ru")
        day = now().strftime("%d.%m.%Y")
        typed = "  " + code.replace("-", " ").upper()
        assert await check_status(chat, typed, "ru") == say("ru", "status_found", day=day)
        wrong = "-".join(reversed(code.split("-")))
        assert await check_status(chat, wrong, "ru") == say("ru", "status_not_found")


@SQLITE_ONLY
async def test_non_urgent_reporter_answers_dates_and_texts(settings: Settings) -> None:
    """A reporter who says nobody is in danger right now types dates and texts, and the
    draft stays not urgent. (Regression: Engine.is_urgent put every answer value in a
    set and raised TypeError on the first date or text answer of such a reporter.)"""
    async with running_bot(settings) as run:
        chat, walker, messages = await begin(run, "Farid", "en")
        walker.choices.update(urgent="no", role="victim", identity="anonymous")
        messages = await walk_until(walker, messages, "started")
        replies = await chat.say_expect(SAMPLE_DATE, 1)
        assert question_in(walker, replies) == questionnaire().question("ongoing")
        messages = await walk_until(walker, replies, "place_type")
        assert "place_city" in walker.asked
        report = await only_report(run.app)
        assert (report.state, report.urgent) == (ReportState.DRAFT, False)


@SQLITE_ONLY
async def test_a_part_of_a_text_answer_is_acknowledged(settings: Settings) -> None:
    """A written part of a longer answer gets "Saved. Send more, or press Done." (as a
    voice note does), not the whole question (title, text, help and hint) once more."""
    async with running_bot(settings) as run:
        chat, walker, messages = await begin(run, "Sevinc", "en")
        walker.choices["urgent"] = "someone_else"
        messages = await walk_until(walker, messages, "urgent_details")
        replies = await chat.say("My brother was taken from his flat last night.")
        assert [text_of(m) for m in replies] == [say("en", "received_part")]


@SQLITE_ONLY
async def test_an_old_cancel_confirmation_does_not_erase_the_report(settings: Settings) -> None:
    """After "No, continue", the earlier "Yes, delete everything" button must no longer
    erase the report (a reporter scrolling back could press it by mistake)."""
    async with running_bot(settings) as run:
        chat, walker, messages = await begin(run, "Ulvi", "en")
        walker.choices["urgent"] = "me"
        messages = await walk_until(walker, messages, "role")
        (confirm,) = await chat.say("/cancel")
        messages = await chat.press(confirm, "C:n")
        messages = await walker.answer(messages)  # the reporter goes on

        shown = {m["message_id"]: m for m in await chat.quiet()}[confirm["message_id"]]
        if not shown["deleted"] and ("C:y" in [data for _, data in buttons(shown)]):
            replies = await chat.press_expect(confirm, "C:y", 1)
            assert [text_of(m) for m in replies] == [say("en", "err_stale_button")]
        report = await only_report(run.app)
        assert report.state is ReportState.DRAFT


@SQLITE_ONLY
async def test_every_attachment_of_a_report_is_in_its_document(settings: Settings) -> None:
    """A reporter sends a file, then presses Skip: what was sent is kept (nothing a
    reporter sent is silently dropped), and each attachment staff get is listed in the
    document's files manifest."""
    async with running_bot(settings) as run:
        chat, walker, messages = await begin(run, "Ilkin", "en")
        walker.choices["urgent"] = "me"
        messages = await skip_until(walker, messages, "evidence_files")
        await chat.client.send_document(chat.id, JPEG, file_name="selfie-by-mistake.jpg")
        await chat.settle()
        messages = await chat.press(last_with_buttons(messages), f"S:{index_of('evidence_files')}")
        messages = await skip_until(walker, messages)
        summary = "\n".join(text_of(m) for m in messages)
        assert f"→ {say('en', 'review_files', count=1)}" in summary
        await submit(chat, messages, "en")

        report = await only_report(run.app)
        decrypted = await read_as_amina(run, report.id)
        listed = {bytes.fromhex(ref["file"]) for ref in decrypted.document()["files"]}
        assert set(decrypted.files) == listed

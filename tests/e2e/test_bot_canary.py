"""Promises 1 and 3 through the real bot: nothing a reporter says or is, in plaintext, anywhere.

On both databases, the real bot (python-telegram-bot over HTTP, against the Bot API
simulator) runs with logging as in production but at DEBUG (JSON, to a file), temporary
files directed into the test's directory, and a reporter whose Telegram first name, last
name, username and user id are canaries. The reporter

* completes a full report in Azerbaijani whose answers are canaries (Latin, Azerbaijani and
  Cyrillic text), with a voice note, a document whose bytes and file name are canaries, a
  photo with canary bytes and caption, a forwarded message from a canary user (id, name,
  username) and a forwarded channel post with a canary title;
* writes a second draft in Russian with canaries (an answer, a voice note, the name of a
  refused video) and cancels it;
* leaves a third draft open (drafts are encrypted too).

Then the bot is halted and everything is scanned for every canary in every encoding
``tests/canary.py`` knows (UTF-8 and NFD, UTF-16, JSON escapes, ``repr``, base64, hex, and
for ids the binary integer forms): the whole test directory (database, -wal, -shm, blobs,
pin, the runtime dir with the boot secret, the log file, the temp dir), the process's
stdout and stderr, and on PostgreSQL a ``pg_dump`` and, where the server's files are
readable (as root), the database's own files and the WAL written during the test. The bot
token must not be in any of it either. After the app is closed (SQLite then checkpoints its
WAL into the main file) the directory is scanned again.

That the scan finds what it looks for is shown twice: it finds canaries planted on purpose
where the bot writes (runtime dir, temp dir, log, an SQLite integer), and the key-holder
amina decrypts the report and finds every canary in it, the files byte for byte, while none
of the reporter's own identity is in it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import pytest
from canary import (
    Canary,
    ScanResult,
    pg_dump,
    preserved_process_state,
    scan_bytes,
    scan_file,
    scan_text,
    scan_tree,
)
from harness import (
    ADMIN_PASSWORD,
    TOKEN,
    BotRun,
    JsonDict,
    SteadyReporter,
    Walker,
    last_with_buttons,
    running_bot,
    text_of,
)
from sqlalchemy import select

from intake_bot.config import Settings
from intake_bot.crypto import PayloadKind
from intake_bot.ephemeral import FILE_NAME
from intake_bot.logging import configure_logging
from intake_bot.questionnaire.loader import load_default
from intake_bot.questionnaire.model import Questionnaire, QuestionType
from intake_bot.services import keyring, reports
from intake_bot.storage.models import Report, ReportState
from intake_bot.telegram.strings import Strings

STRINGS = Strings.load()
EVIDENCE_SIZE = 200_000
"""A document of several 64 KiB encryption chunks."""
IDENTITY = ("first-name", "last-name", "username", "user-id")
"""The reporter's own identity: never stored, not even inside the encryption."""


# --- canaries -----------------------------------------------------------------------------


class Canaries:
    """Fresh canaries for one test run, by name; the reporter's user id is added once known."""

    def __init__(self) -> None:
        tag = secrets.token_hex(4)
        self.tag = tag
        values = {
            "first-name": f"Gülnarə{tag}",
            "last-name": f"Məmmədova{tag}",
            "username": f"cnry_{tag}",
            "latin": f"CANARY-LATIN-{tag} they took my brother at the bus stop",
            "azerbaijani": f"Qardaşımı dayanacaqdan apardılar, İlqar ağır döyülüb {tag} ğ ı ö",
            "cyrillic": f"Брата забрали с остановки и избили в отделе {tag}",  # noqa: RUF001
            "reporter-name": f"Aysel Quliyeva {tag}",
            "contact": f"aysel.{tag}@example.org",
            "place": f"Sumqayıt, 5-ci mikrorayon {tag}",
            "perpetrators": f"Следователь из ГУБОП, майор {tag}",
            "voice-bytes": f"CANARY-VOICEBYTES-{tag}",
            "file-bytes": f"CANARY-FILEBYTES-{tag}",
            "file-name": f"CANARY-{tag}-protokol-şəkil.pdf",
            "photo-bytes": f"CANARY-PHOTOBYTES-{tag}",
            "caption": f"Polis bölməsində çəkilib {tag}",
            "forward-name": f"Rəşad{tag}",
            "forward-username": f"fwd_{tag}",
            "forward-text": f"Sabah səni də tutacağıq {tag}",
            "channel-title": f"Xəbər kanalı {tag}",
            "channel-text": f"Kanalda dərc olunan video {tag}",
            "cancelled-text": f"Черновик, который я удалю: шантаж видео {tag}",
            "cancelled-bytes": f"CANARY-CANCELLEDBYTES-{tag}",
            "cancelled-name": f"CANARY-{tag}-gizli-kamera.mp4",
            "open-text": f"Açıq qalan qaralama: gizli kamera {tag}",
            "bot-token": TOKEN,
            "bot-token-secret": TOKEN.split(":", 1)[1],
        }
        self.canaries = {name: Canary(name, value) for name, value in values.items()}
        forward_id = 5_000_000_000 + secrets.randbelow(10**9)
        self.canaries["forward-user-id"] = Canary.of_int("forward-user-id", forward_id)

    def add_user_id(self, user_id: int) -> None:
        self.canaries["user-id"] = Canary.of_int("user-id", user_id)

    def __getitem__(self, name: str) -> str:
        return self.canaries[name].value

    def number(self, name: str) -> int:
        number = self.canaries[name].integer
        assert number is not None
        return number

    def all(self) -> list[Canary]:
        return list(self.canaries.values())

    def identity(self) -> list[Canary]:
        return [self.canaries[name] for name in IDENTITY]


def evidence(marker: str, size: int) -> bytes:
    """Random bytes with the marker at the start, the end and every 4 KiB."""
    tag = marker.encode()
    data = bytearray(os.urandom(size))
    for at in [*range(0, size - len(tag), 4096), size - len(tag)]:
        data[at : at + len(tag)] = tag
    return bytes(data)


# --- the scan -----------------------------------------------------------------------------


async def postgres_paths(database_url: str, since: float) -> list[Path]:
    """The database's own directory and the WAL segments written since ``since`` (after a
    CHECKPOINT); none when the server's data directory is not readable (not root)."""
    parts = urlsplit(database_url)
    name = unquote(parts.path.lstrip("/"))
    conn = await asyncpg.connect(f"postgresql://{parts.netloc}/postgres")
    try:
        await conn.execute("CHECKPOINT")
        data_dir = Path(await conn.fetchval("SHOW data_directory"))
        oid = await conn.fetchval("SELECT oid FROM pg_database WHERE datname = $1", name)
    finally:
        await conn.close()
    if not os.access(data_dir, os.R_OK | os.X_OK):
        return []
    wal = sorted(
        path
        for path in (data_dir / "pg_wal").iterdir()
        if path.is_file() and path.stat().st_mtime >= since
    )
    return [data_dir / "base" / str(oid), *wal]


async def scan_installation(
    root: Path, canaries: list[Canary], database_url: str, since: float
) -> ScanResult:
    """Everything the installation may have written: every file under ``root`` and, on
    PostgreSQL, a dump, the database's files and the WAL written since ``since``."""
    result = scan_tree(root, canaries)
    if database_url.startswith("postgresql"):
        result.extend(scan_bytes(pg_dump(database_url), canaries, "pg_dump"))
        for path in await postgres_paths(database_url, since):
            result.extend(scan_tree(path, canaries) if path.is_dir() else scan_file(path, canaries))
    return result


@dataclass(frozen=True)
class Production:
    """Where the bot's log and temporary files go while the test runs."""

    log_file: Path
    temp_dir: Path


@pytest.fixture
def production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Production]:
    """Logging as in production but at DEBUG, to a file; temp files under ``tmp_path``."""
    log_file = tmp_path / "logs" / "bot.log"
    log_file.parent.mkdir()
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    with log_file.open("w", encoding="utf-8") as handle, preserved_process_state():
        configure_logging("json", "DEBUG", stream=handle)
        tempfile.tempdir = str(temp_dir)
        monkeypatch.setenv("TMPDIR", str(temp_dir))
        assert tempfile.gettempdir() == str(temp_dir)
        yield Production(log_file, temp_dir)
        for handler in logging.getLogger().handlers:
            handler.flush()


# --- the reporter -------------------------------------------------------------------------


class QuickWalker(Walker):
    """Answers what it was given answers for (texts, choices, files, ``extra`` actions run
    before Done) and skips every other optional question."""

    def __init__(
        self,
        reporter: SteadyReporter,
        questionnaire: Questionnaire,
        extra: dict[str, Callable[[], Awaitable[None]]] | None = None,
    ) -> None:
        super().__init__(reporter, questionnaire)
        self.steady = reporter
        self.extra = extra or {}

    async def answer(self, messages: list[JsonDict]) -> list[JsonDict]:
        message = last_with_buttons(messages)
        question = self.question_of(message)
        if question is None:
            raise AssertionError(f"no question in {[text_of(m)[:40] for m in messages]}")
        index = self.questions.index(question)
        if question.id in self.extra:
            self.asked.append(question.id)
            await self.extra[question.id]()
            if question.id in self.texts:
                await self.steady.say(self.texts[question.id])
            return await self.steady.press(message, f"D:{index}")
        given = (self.choices, self.texts, self.files)
        if question.required or any(question.id in answers for answers in given):
            return await super().answer(messages)
        self.asked.append(question.id)
        skip = "D" if question.type is QuestionType.MULTI else "S"
        return await self.steady.press(message, f"{skip}:{index}")


@dataclass
class Sent:
    """What the reporter sent as files, to compare with what staff decrypt."""

    voice: bytes
    document: bytes
    photo: bytes


async def full_report(run: BotRun, reporter: SteadyReporter, c: Canaries) -> Sent:
    """A complete report in Azerbaijani, every answer and file a canary, submitted."""
    client = run.client
    sent = Sent(
        voice=b"OggS" + evidence(c["voice-bytes"], 20_000),
        document=evidence(c["file-bytes"], EVIDENCE_SIZE),
        photo=evidence(c["photo-bytes"], 60_000),
    )

    async def voice() -> None:
        await client.send(reporter.id, "voice", data=sent.voice, duration=7)
        await reporter.settle()

    async def evidence_files() -> None:
        await client.send_document(reporter.id, sent.document, file_name=c["file-name"])
        await reporter.settle()
        await client.send_photo(reporter.id, sent.photo, caption=c["caption"])
        await reporter.settle()
        forwarded_user = {
            "type": "user",
            "user": {
                "id": c.number("forward-user-id"),
                "first_name": c["forward-name"],
                "username": c["forward-username"],
            },
        }
        await client.send_text(reporter.id, c["forward-text"], forward_origin=forwarded_user)
        await reporter.settle()
        channel = {"type": "channel", "title": c["channel-title"], "username": "xeber_kanali"}
        await client.send_text(reporter.id, c["channel-text"], forward_origin=channel)
        await reporter.settle()

    walker = QuickWalker(
        reporter,
        load_default(),
        {"urgent_details": voice, "evidence_files": evidence_files},
    )
    walker.choices.update(urgent="me", role="victim", identity="org_only", contact_method="email")
    walker.texts.update(
        urgent_details=c["azerbaijani"],
        reporter_name=c["reporter-name"],
        contact_handle=c["contact"],
        place_city=c["place"],
        event_account=c["latin"],
        perpetrator_details=c["perpetrators"],
        official_reason=c["cyrillic"],
    )
    messages = await reporter.say("/start")
    messages = await reporter.press(messages[-1], "L:az")
    messages = await walker.to_review(messages)
    for question_id in ("urgent_details", "reporter_name", "evidence_files", "official_reason"):
        assert question_id in walker.asked
    messages = await reporter.press(last_with_buttons(messages), "P")
    assert text_of(messages[0]) == STRINGS("az", "submitted")
    receipt = last_with_buttons(messages)
    await reporter.press(receipt, "W")  # "I have written it down": the receipt is deleted
    return sent


async def cancelled_draft(run: BotRun, reporter: SteadyReporter, c: Canaries) -> None:
    """A draft in Russian with a canary answer, a canary voice note and a refused video
    with a canary name, then /cancel."""
    messages = await reporter.say("/start")
    messages = await reporter.press(messages[-1], "L:ru")
    messages = await reporter.press(last_with_buttons(messages), "A:0:0")
    messages = await reporter.press(last_with_buttons(messages), "A:1:1")  # someone else
    await reporter.say(c["cancelled-text"])
    voice = b"OggS" + evidence(c["cancelled-bytes"], 30_000)
    await run.client.send(reporter.id, "voice", data=voice, duration=3)
    messages = await reporter.settle()
    assert text_of(messages[0]) == STRINGS("ru", "received_part")
    # A video at a text question is refused: its name must not be kept either.
    await run.client.send(reporter.id, "video", data=voice, file_name=c["cancelled-name"])
    messages = await reporter.settle()
    assert text_of(messages[0]) == STRINGS("ru", "err_text_expected")
    messages = await reporter.say("/cancel")
    messages = await reporter.press(messages[-1], "C:y")
    assert [text_of(m) for m in messages] == [STRINGS("ru", "cancelled"), STRINGS("ru", "wiped")]


async def open_draft(reporter: SteadyReporter, c: Canaries) -> None:
    """A draft in English with a canary answer, left open."""
    messages = await reporter.say("/start")
    messages = await reporter.press(messages[-1], "L:en")
    messages = await reporter.press(last_with_buttons(messages), "A:0:0")
    messages = await reporter.press(last_with_buttons(messages), "A:1:0")
    messages = await reporter.say(c["open-text"])
    assert last_with_buttons(messages)


# --- what staff read ----------------------------------------------------------------------


async def decrypted(run: BotRun) -> dict[str, list[tuple[PayloadKind, bytes]]]:
    """Every payload of every report, decrypted by the key-holder amina, by report state."""
    found: dict[str, list[tuple[PayloadKind, bytes]]] = {}
    async with run.app.sessions() as session:
        ring = await keyring.unlock(
            session, "amina", ADMIN_PASSWORD, run.settings.kdf_profile.floor
        )
        for report_id, state in (await session.execute(select(Report.id, Report.state))).all():
            dek = await reports.report_key(session, ring, report_id)
            payloads = await reports.read_payloads(session, dek, report_id)
            found.setdefault(state, []).extend((kind, p.reveal()) for kind, _, p in payloads)
    return found


async def file_bytes(run: BotRun, ref: JsonDict) -> bytes:
    async with run.app.sessions() as session:
        ring = await keyring.unlock(
            session, "amina", ADMIN_PASSWORD, run.settings.kdf_profile.floor
        )
        report_id = await session.scalar(
            select(Report.id).where(Report.state == ReportState.SUBMITTED.value)
        )
        assert report_id is not None
        dek = await reports.report_key(session, ring, report_id)
    file_id = bytes.fromhex(ref["file"])
    return b"".join([piece async for piece in reports.read_file(run.app.blobs, dek, file_id)])


async def check_what_staff_read(run: BotRun, c: Canaries, sent: Sent) -> None:
    """The canaries ARE stored, encrypted: amina reads each of them back exactly."""
    payloads = await decrypted(run)
    assert set(payloads) == {ReportState.SUBMITTED.value, ReportState.DRAFT.value}
    documents = [
        json.loads(data)
        for kind, data in payloads[ReportState.SUBMITTED.value]
        if kind is PayloadKind.DOCUMENT
    ]
    assert len(documents) == 1
    document = documents[0]
    assert document["language"] == "az"
    assert document["urgent"] is True
    answers: dict[str, Any] = {a["question"]: a["value"] for a in document["answers"]}
    texts = {
        question: [part.get("text") for part in value]
        for question, value in answers.items()
        if isinstance(value, list) and all(isinstance(part, dict) for part in value)
    }
    assert texts["urgent_details"] == [None, c["azerbaijani"]]  # the voice note, then text
    assert texts["reporter_name"] == [c["reporter-name"]]
    assert texts["contact_handle"] == [c["contact"]]
    assert texts["place_city"] == [c["place"]]
    assert texts["event_account"] == [c["latin"]]
    assert texts["perpetrator_details"] == [c["perpetrators"]]
    assert texts["official_reason"] == [c["cyrillic"]]

    voice: JsonDict = answers["urgent_details"][0]["voice"]
    document_ref, photo, by_user, by_channel = answers["evidence_files"]
    assert document_ref["file"]["name"] == c["file-name"]
    assert photo["file"]["caption"] == c["caption"]
    assert by_user["forward"]["text"] == c["forward-text"]
    assert by_user["forward"]["origin"]["user"] == {
        "id": c.number("forward-user-id"),
        "name": c["forward-name"],
        "username": c["forward-username"],
    }
    assert by_channel["forward"]["text"] == c["channel-text"]
    assert by_channel["forward"]["origin"]["chat"]["title"] == c["channel-title"]
    # The files, byte for byte, with their SHA-256 in the manifest.
    assert await file_bytes(run, voice) == sent.voice
    assert await file_bytes(run, document_ref["file"]) == sent.document
    assert await file_bytes(run, photo["file"]) == sent.photo
    assert sorted(ref["sha256"] for ref in document["files"]) == sorted(
        hashlib.sha256(data).hexdigest() for data in (sent.voice, sent.document, sent.photo)
    )

    # The open draft is readable by staff too (its key is sealed to the org key).
    draft = b"".join(data for _, data in payloads[ReportState.DRAFT.value])
    assert c["open-text"].encode() in draft

    # None of the reporter's own identity is in what staff read.
    everything = b"".join(data for items in payloads.values() for _, data in items)
    scan_bytes(everything, c.identity(), "decrypted reports").assert_clean()


# --- the tests ----------------------------------------------------------------------------


async def test_no_canary_anywhere_after_real_conversations(
    settings: Settings,
    tmp_path: Path,
    production: Production,
    capfd: pytest.CaptureFixture[str],
) -> None:
    since = time.time() - 1
    c = Canaries()
    async with running_bot(settings) as run:
        user = await run.client.create_user(
            c["first-name"], last_name=c["last-name"], username=c["username"], language_code="az"
        )
        c.add_user_id(user["id"])
        reporter = SteadyReporter(run.client, user)
        sent = await full_report(run, reporter, c)
        await cancelled_draft(run, reporter, c)
        await open_draft(reporter, c)
        await run.halt()

        await check_what_staff_read(run, c, sent)

        result = await scan_installation(tmp_path, c.all(), settings.database_url, since)
        captured = capfd.readouterr()
        result.extend(scan_text(captured.out + captured.err, c.all(), "stdout and stderr"))
        result.assert_clean()
        # What was scanned includes every place the installation writes to.
        scanned = set(result.scanned)
        musts = [production.log_file, settings.signing_key_pin, settings.runtime_dir / FILE_NAME]
        for must in musts:
            assert str(must) in scanned, must
        blobs = [p for p in scanned if p.startswith(str(run.app.blobs.root))]
        assert len(blobs) == 3  # voice, document, photo (the cancelled voice is gone)
        if settings.database_url.startswith("sqlite"):
            database = Path(settings.database_url.split("///", 1)[1])
            assert {str(database), f"{database}-wal"} <= scanned
        else:
            assert "pg_dump" in scanned

        # The log was written (at DEBUG): the bot's start and stop are in it.
        log = production.log_file.read_text("utf-8")
        events = [json.loads(line)["event"] for line in log.splitlines()]
        assert "bot running" in events
        assert "bot stopped" in events

        # Positive control: the same scan finds canaries where the bot could have put them.
        planted = {
            settings.runtime_dir / "planted": c["username"].encode("utf-16-le"),
            production.temp_dir / "planted": json.dumps(c["cyrillic"]).encode(),
        }
        for path, data in planted.items():
            path.write_bytes(data)
        again = await scan_installation(tmp_path, c.all(), settings.database_url, since)
        assert {(f.canary, f.where) for f in again.findings} == {
            ("username", str(settings.runtime_dir / "planted")),
            ("cyrillic", str(production.temp_dir / "planted")),
        }
        for path in planted:
            path.unlink()

    # Closed: SQLite has checkpointed its WAL into the database file. Still nothing.
    scan_tree(tmp_path, c.all()).assert_clean()


def test_the_scan_finds_canaries_planted_where_the_bot_writes(tmp_path: Path) -> None:
    """Positive control of :func:`scan_installation` on an installation-shaped tree."""
    c = Canaries()
    c.add_user_id(7_000_000_001)
    runtime = tmp_path / "runtime"
    blobs = tmp_path / "data" / "blobs" / "ab"
    for directory in (runtime, blobs, tmp_path / "logs", tmp_path / "tmp"):
        directory.mkdir(parents=True)
    (runtime / FILE_NAME).write_text(json.dumps({"boot": os.urandom(32).hex()}))
    (blobs / "ab01").write_bytes(os.urandom(70_000))
    database = tmp_path / "intake.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE t (n INTEGER, b BLOB)")
    conn.close()
    url = f"sqlite+aiosqlite:///{database}"

    def scan() -> set[str]:
        result = asyncio.run(scan_installation(tmp_path, c.all(), url, 0))
        return {finding.canary for finding in result.findings}

    assert scan() == set()
    with sqlite3.connect(database) as conn:
        conn.execute("INSERT INTO t VALUES (?, ?)", (c.number("user-id"), b"x"))
    conn.close()
    (tmp_path / "logs" / "bot.log").write_text(
        json.dumps({"event": "x", "text": c["azerbaijani"]}) + "\n", "utf-8"
    )
    (runtime / "x").write_bytes(c["first-name"].encode())
    (tmp_path / "tmp" / "tmpab12").write_bytes(evidence(c["file-bytes"], 10_000))
    (blobs / "ab02").write_bytes(TOKEN.encode())
    assert scan() == {
        "user-id",
        "azerbaijani",
        "first-name",
        "file-bytes",
        "bot-token",
        "bot-token-secret",
    }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_forwarded_message_of_the_reporters_own_keeps_no_identity(
    settings: Settings,
) -> None:
    c = Canaries()
    async with running_bot(settings) as run:
        user = await run.client.create_user(
            c["first-name"], last_name=c["last-name"], username=c["username"], language_code="en"
        )
        c.add_user_id(user["id"])
        reporter = SteadyReporter(run.client, user)
        messages = await reporter.say("/start")
        messages = await reporter.press(messages[-1], "L:en")
        messages = await reporter.press(last_with_buttons(messages), "A:0:0")
        messages = await reporter.press(last_with_buttons(messages), "A:1:0")
        # From Saved Messages: the reporter forwards what they wrote down earlier.
        mine = {"type": "user", "user_id": reporter.id}
        await run.client.send_text(reporter.id, c["latin"], forward_origin=mine)
        await reporter.settle()
        payloads = await decrypted(run)
    stored = b"".join(data for _, data in payloads[ReportState.DRAFT.value])
    assert c["latin"].encode() in stored
    scan_bytes(stored, c.identity(), "the decrypted draft").assert_clean()

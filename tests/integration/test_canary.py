"""Promise 1: nothing a reporter says is written in plaintext, and no content reaches the logs.

On both databases, a report full of unique canaries (answers in English, Azerbaijani and
Russian, a file, a file name, a Telegram user id, a username, a bot token) goes in through
the core API while logging is configured as in production (at DEBUG, in both formats) and
hostile log calls are made: exceptions whose message and locals hold plaintext, structlog
events with sensitive keys, httpx/telegram records carrying the token. Then every file the
installation wrote (database, WAL, blobs, pin, logs, temp dir), the log output, the
process's stdout/stderr and, on PostgreSQL, a ``pg_dump`` are scanned for every canary in
many encodings (see ``tests/canary.py``). The report is read back with a key-holder's
keyring to show that the canaries really were stored, encrypted.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import secrets
import sqlite3
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import canary
import pytest
import structlog
from canary import (
    Canary,
    ScanResult,
    pg_dump,
    preserved_process_state,
    scan_bytes,
    scan_pg_dump,
    scan_text,
    scan_tree,
)
from sqlalchemy import text

from intake_bot.bootstrap import App
from intake_bot.crypto import CHUNK_BYTES, PayloadKind, Plaintext, Secret
from intake_bot.logging import asyncio_exception_handler, configure_logging
from intake_bot.services import installation, keyring, reports
from intake_bot.storage import reports as report_repo
from intake_bot.storage.db import create_engine

FILE_SIZE = 3 * CHUNK_BYTES + 12_345
"""More than 200 KiB, three full encryption chunks and a partial one."""


@dataclass(frozen=True, slots=True)
class Canaries:
    """Fresh for each test, so nothing found can be left over from another run."""

    answer: Canary
    azerbaijani: Canary
    russian: Canary
    note: Canary
    file_bytes: Canary
    file_name: Canary
    user_id: Canary
    username: Canary
    token: Canary
    exception: Canary
    password: Canary

    @classmethod
    def fresh(cls) -> Canaries:
        tag = secrets.token_hex(4)
        user_id = 900_000_000_000 + secrets.randbelow(99_999_999_999)
        token_tail = secrets.token_hex(16)
        return cls(
            answer=Canary("answer", f"CANARY-ANSWER-{tag}"),
            azerbaijani=Canary(
                "azerbaijani", f"Qardaşımı polis döyüb, ağır xəstədir: şahid çağırın {tag} ğ ı ö ü"
            ),
            russian=Canary(
                "russian",
                f"Брата задержали у дома, подбросили наркотики {tag}",  # noqa: RUF001
            ),
            note=Canary("note", f"CANARY-NOTE-{tag}"),
            file_bytes=Canary("file-bytes", f"CANARY-FILEBYTES-{tag}"),
            file_name=Canary("file-name", f"CANARY-FILE-{tag}-kamera.mp4"),
            user_id=Canary.of_int("user-id", user_id),
            username=Canary("username", f"canary_reporter_{tag}"),
            token=Canary("bot-token", f"123456789:AAE-CANARYTOKEN{token_tail[:22]}"),
            exception=Canary("exception", f"CANARY-EXC-{tag}"),
            password=Canary("staff-password", f"lantern orbit canary {tag} quietly folds"),
        )

    def all(self) -> list[Canary]:
        return [
            self.answer,
            self.azerbaijani,
            self.russian,
            self.note,
            self.file_bytes,
            self.file_name,
            self.user_id,
            self.username,
            self.token,
            self.exception,
            self.password,
        ]


@pytest.fixture
def process_state() -> Iterator[None]:
    with preserved_process_state():
        yield


def evidence_file(marker: bytes) -> bytes:
    """Random bytes with the marker at the start, the end, every 4 KiB and straddling
    every 64 KiB encryption-chunk boundary."""
    data = bytearray(os.urandom(FILE_SIZE))
    offsets = [0, FILE_SIZE - len(marker)]
    offsets += range(4096, FILE_SIZE - len(marker), 4096)
    offsets += [k * CHUNK_BYTES - len(marker) // 2 for k in range(1, FILE_SIZE // CHUNK_BYTES + 1)]
    for at in offsets:
        data[at : at + len(marker)] = marker
    return bytes(data)


async def pieces(data: bytes, size: int = 10_007) -> AsyncIterator[bytes]:
    """An upload arriving in pieces that do not line up with the encryption chunks."""
    for start in range(0, len(data), size):
        await asyncio.sleep(0)
        yield data[start : start + size]


def handler_holding_plaintext(answer: str) -> None:
    """Stands in for a Telegram handler that fails while holding an answer."""
    reply = f"thank you, we saved: {answer}"
    raise ValueError(f"bad {answer} -> {reply}")


def emit_hostile_logs(c: Canaries) -> None:
    """Every way content could be handed to the logging system by mistake."""
    log = structlog.get_logger("intake.telegram")
    structlog.contextvars.bind_contextvars(user_id=c.user_id.integer, chat_id=c.user_id.integer)
    try:
        log.info(
            "answer received",
            text=c.answer.value,
            user_id=c.user_id.integer,
            username=c.username.value,
            file_name=c.file_name.value,
            answer=c.azerbaijani.value,
            details={"payload": c.russian.value, "nested": {"token": c.token.value}},
            url=f"https://api.telegram.org/bot{c.token.value}/sendMessage",
            note=f"token in free text: {c.token.value}",
            secret=Secret(c.password.value.encode()),
            plaintext=Plaintext.from_text(c.note.value),
        )
        try:
            handler_holding_plaintext(c.exception.value)
        except ValueError:
            log.exception("handler failed")
            logging.getLogger("x").exception("handler failed (stdlib)")
            # What python-telegram-bot does when no error handler is registered.
            logging.getLogger("telegram.ext.Application").exception(
                "No error handlers are registered, logging exception."
            )
        try:
            try:
                handler_holding_plaintext(c.russian.value)
            except ValueError as exc:
                raise RuntimeError(f"while saving {c.azerbaijani.value}") from exc
        except RuntimeError as exc:
            log.error("chained failure", exc_info=exc)  # noqa: TRY400  # the explicit form
            sys.excepthook(type(exc), exc, exc.__traceback__)
        url = f"https://api.telegram.org/bot{c.token.value}/getUpdates"
        # httpx logs each request at INFO (dropped) ...
        logging.getLogger("httpx").info('HTTP Request: POST %s "HTTP/1.1 200 OK"', url)
        # ... and its warnings still pass, with the token scrubbed.
        logging.getLogger("httpx").warning('HTTP Request: POST %s "HTTP/1.1 502 Bad Gateway"', url)
        logging.getLogger("telegram.ext.Updater").debug(
            "Processing update %s",
            {"message": {"from": {"id": c.user_id.integer}, "text": c.answer.value}},
        )
    finally:
        structlog.contextvars.clear_contextvars()


def emit_loop_error(c: Canaries) -> None:
    """An unhandled error in the event loop, as asyncio reports it."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(asyncio_exception_handler)
    try:
        try:
            handler_holding_plaintext(c.note.value)
        except ValueError as exc:
            loop.call_exception_handler(
                {"message": f"Task exception was never retrieved: {c.note.value}", "exception": exc}
            )
    finally:
        loop.set_exception_handler(previous)


def sqlite_path(database_url: str) -> Path | None:
    prefix = "sqlite+aiosqlite:///"
    return Path(database_url[len(prefix) :]) if database_url.startswith(prefix) else None


def read_all(paths: list[Path]) -> bytes:
    return b"".join(path.read_bytes() for path in paths if path.exists())


@pytest.mark.usefixtures("process_state")
@pytest.mark.parametrize("log_format", ["json", "console"])
async def test_no_canary_at_rest_in_logs_or_temp_files(
    app: App,
    tmp_path: Path,
    log_format: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = Canaries.fresh()
    settings = app.settings
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    log_file = log_dir / "intake.log"

    # Logging as in production, at the most verbose level, to a stream and to a file.
    stream = io.StringIO()
    configure_logging(log_format, "DEBUG", stream=stream)
    root = logging.getLogger()
    file_handler = logging.FileHandler(log_file, encoding="utf-8")
    file_handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(file_handler)
    # Temporary files land where they can be scanned.
    tempfile.tempdir = str(temp_dir)
    monkeypatch.setenv("TMPDIR", str(temp_dir))
    assert tempfile.gettempdir() == str(temp_dir)

    password = Secret(c.password.value.encode())
    await installation.initialise(app, "amina", password)
    pinned = keyring.read_pin(settings.signing_key_pin)

    answers = [c.answer.value, c.azerbaijani.value, c.russian.value]
    manifest = json.dumps(
        {"file_name": c.file_name.value, "caption": c.answer.value}, ensure_ascii=False
    )
    draft_state = json.dumps(
        {
            "user_id": c.user_id.integer,
            "chat_id": c.user_id.integer,
            "username": c.username.value,
            "bot_token": c.token.value,
            "file_name": c.file_name.value,
        }
    )
    document = json.dumps({"answers": answers, "files": [c.file_name.value]}, ensure_ascii=False)
    data = evidence_file(c.file_bytes.value.encode())
    async with app.sessions() as session, session.begin():
        report = await reports.start_report(session, pinned, urgent=True)
        for text in answers:
            await reports.save_payload(
                session, report, PayloadKind.ANSWER, Plaintext.from_text(text)
            )
        stored = await reports.save_file(session, app.blobs, report, pieces(data))
        await reports.save_payload(
            session, report, PayloadKind.MANIFEST, Plaintext.from_text(manifest)
        )
        await reports.save_payload(
            session, report, PayloadKind.DRAFT_STATE, Plaintext.from_text(draft_state)
        )
        document_slot = await reports.save_payload(
            session, report, PayloadKind.DOCUMENT, Plaintext.from_text(document[:40])
        )
        await reports.save_payload(
            session,
            report,
            PayloadKind.DOCUMENT,
            Plaintext.from_text(document[40:]),
            slot_id=document_slot,
            part=1,
        )
        await reports.save_payload(
            session, report, PayloadKind.NOTE, Plaintext.from_text(c.note.value)
        )
        await reports.save_payload(
            session, report, PayloadKind.MESSAGE, Plaintext.from_text(c.username.value)
        )
    expected = {*answers, manifest, draft_state, document[:40], document[40:]}
    expected |= {c.note.value, c.username.value}

    # The canaries really are stored: a key-holder reads every one of them back.
    async with app.sessions() as session:
        ring = await keyring.unlock(session, "amina", password, settings.kdf_profile.floor)
        dek = await reports.report_key(session, ring, report.report_id)
        read_back = await reports.read_payloads(session, dek, report.report_id)
        ciphertexts = [p.ciphertext for p in await report_repo.payloads(session, report.report_id)]
    got = b"".join([piece async for piece in reports.read_file(app.blobs, dek, stored.file_id)])
    assert {plaintext.text() for _, _, plaintext in read_back} == expected
    assert {kind for kind, _, _ in read_back} == set(PayloadKind)
    assert got == data
    assert stored.digest.size == len(data)
    assert len(ciphertexts) == 9

    emit_hostile_logs(c)
    emit_loop_error(c)
    for handler in root.handlers:
        handler.flush()
    file_handler.close()
    root.removeHandler(file_handler)

    output = stream.getvalue()

    # The scanned tree holds the installation: pin, blob, database (SQLite) and the logs.
    blob = app.blobs.path(stored.file_id)
    assert blob.stat().st_size == stored.blob_size > len(data)
    result = ScanResult()
    result.extend(scan_text(output, c.all(), "log stream"))
    captured = capfd.readouterr()
    result.extend(scan_text(captured.out + captured.err, c.all(), "stdout/stderr"))
    tree = scan_tree(tmp_path, c.all())
    result.extend(tree)
    for must in (settings.signing_key_pin, blob, log_file):
        assert str(must) in tree.scanned
    database = sqlite_path(settings.database_url)
    if database is not None:
        wal = database.with_name(database.name + "-wal")
        assert str(database) in tree.scanned
        assert str(wal) in tree.scanned
        # ... and the encrypted rows are in what was scanned.
        files = read_all([database, wal])
        assert report.report_id in files
        assert all(bytes(ct) in files for ct in ciphertexts)
    else:
        dump = pg_dump(settings.database_url)
        assert report.report_id.hex().encode() in dump
        assert all(bytes(ct).hex().encode() in dump for ct in ciphertexts)
        result.extend(scan_bytes(dump, c.all(), "pg_dump"))
    result.assert_clean()

    # The logs were written, and tell what happened without the content.
    # Same records in the file (stdlib records are time-stamped per handler).
    assert len(output.splitlines()) == len(log_file.read_text(encoding="utf-8").splitlines())
    for marker in (
        "answer received",
        "<redacted>",
        "bot<token>",
        "builtins.ValueError",
        "builtins.RuntimeError",
        "handler_holding_plaintext",
        "uncaught exception",
        "unhandled error in event loop",
        "telegram.ext.Application",
    ):
        assert marker in output, marker
    assert "Processing update" not in output  # python-telegram-bot's DEBUG is held back

    # Closing the engine checkpoints SQLite's WAL into the main file: scan again.
    await app.engine.dispose()
    scan_tree(tmp_path, c.all()).assert_clean()
    if database is not None:
        assert all(bytes(ct) in database.read_bytes() for ct in ciphertexts)


# Positive controls: the scanner finds a canary wherever the real test looks.


def test_scanner_finds_canaries_in_every_encoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = Canaries.fresh()
    monkeypatch.setattr(canary, "READ_BYTES", 4096)  # so each match straddles two reads
    tree = tmp_path / "data" / "blobs" / "ab"
    tree.mkdir(parents=True)
    (tmp_path / "data" / "clean").write_bytes(os.urandom(100_000))
    scan_tree(tmp_path, c.all()).assert_clean()

    # Each canary in each of its encodings, across a read boundary, in a hidden file.
    for probe in c.all():
        for label, pattern in probe.patterns().items():
            target = tree / f".tmp-{probe.name}-{label}"
            split = 3 * 4096 - len(pattern) // 2
            target.write_bytes(os.urandom(split) + pattern + os.urandom(100))
            result = scan_tree(tmp_path, [probe])
            # (an 8-byte integer encoding also holds the shortest one)
            hits = {f.encoding: f for f in result.findings if f.canary == probe.name}
            assert len(hits) == len(result.findings) >= 1
            assert hits[label].offset == split
            assert hits[label].where == str(target)
            with pytest.raises(AssertionError, match=probe.name):
                result.assert_clean()
            target.unlink()


def test_scanner_finds_the_forms_other_components_would_write(tmp_path: Path) -> None:
    c = Canaries.fresh()
    # A JSON log line (ensure_ascii escapes Azerbaijani and Russian) and a console line.
    line = json.dumps({"event": "x", "a": c.azerbaijani.value, "r": c.russian.value})
    found = {f.canary for f in scan_text(line, c.all(), "json").findings}
    assert found == {"azerbaijani", "russian"}
    printed = repr(c.azerbaijani.value.encode())  # b'Qarda\xc5\x9f...'
    assert [(f.canary, f.encoding) for f in scan_text(printed, c.all(), "repr").findings] == [
        ("azerbaijani", "bytes-repr")
    ]
    # A user id stored as an SQLite integer (variable-length big-endian) is found.
    db = tmp_path / "probe.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (n INTEGER, b BLOB)")
        conn.execute("INSERT INTO t VALUES (?, ?)", (c.user_id.integer, c.username.value.encode()))
    conn.close()
    found = {f.canary for f in scan_tree(tmp_path, c.all()).findings}
    assert found == {"user-id", "username"}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_pg_dump_scan_finds_plaintext_bytea(database_url: str) -> None:
    c = Canaries.fresh()
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (b bytea, n bigint, s text)"))
            await conn.execute(
                text("INSERT INTO t VALUES (:b, :n, :s)"),
                {"b": c.answer.value.encode(), "n": c.user_id.integer, "s": c.russian.value},
            )
    finally:
        await engine.dispose()
    found = {(f.canary, f.encoding) for f in scan_pg_dump(database_url, c.all()).findings}
    assert ("answer", "hex") in found  # bytea is dumped as hex
    assert ("user-id", "utf-8") in found  # bigint as decimal text
    assert ("russian", "utf-8") in found

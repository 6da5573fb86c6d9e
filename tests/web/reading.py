"""Helpers of the tests of reading and triaging reports (beside :mod:`harness`).

* Forms posted the way a browser posts them (the session's CSRF token from a page), with
  redirects left to the test.
* Drafts and incomplete reports written through :mod:`intake_bot.services.drafts`, as the
  bot writes them (answers in slots, the engine state, a manifest per file), and closed
  by the same sweeper that closes them in production.
* Real image bytes, rows scraped from the inbox, the audit log, and raw database edits.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import struct
import zlib
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update

from admin.state import COOKIE, STATE, AdminState
from intake_bot.bootstrap import App
from intake_bot.config import Settings
from intake_bot.crypto import PayloadKind, Plaintext
from intake_bot.ephemeral import load_or_create
from intake_bot.questionnaire.engine import State
from intake_bot.services import drafts
from intake_bot.services.drafts import DraftContext
from intake_bot.services.keyring import read_pin
from intake_bot.services.reports import (
    record_file,
    save_file,
    save_payload,
    start_report,
    store_file_blob,
)
from intake_bot.storage import audit
from intake_bot.storage.models import Report, ReportState

from .harness import FILES_QUESTION, TEXT_QUESTION, Member, csrf_of, login

Client = TestClient[Any, Any]
ROW = re.compile(r'<a href="/reports/([0-9a-f]{32})">')
NEXT = re.compile(r'<a href="(/\?[^"]*)">Next page</a>')
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG image (RGB, one colour)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\xc8\x20\x20" * width for _ in range(height)))
    return PNG_MAGIC + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def state_of(client: Client) -> AdminState:
    server = client.server
    assert isinstance(server, TestServer)
    return server.app[STATE]


async def text_of(client: Client, path: str) -> tuple[int, str]:
    response = await client.get(path, allow_redirects=False)
    return response.status, await response.text()


async def csrf(client: Client) -> str:
    """The signed-in session's CSRF token (every page with a form carries it)."""
    response = await client.get("/account/password")
    assert response.status == 200, response.status
    return csrf_of(await response.text())


async def post(
    client: Client, path: str, data: dict[str, str] | Sequence[tuple[str, str]] = ()
) -> ClientResponse:
    """Post a form as the signed-in member would (no redirect followed)."""
    fields = list(data.items()) if isinstance(data, dict) else list(data)
    fields.append(("csrf", await csrf(client)))
    return await client.post(path, data=fields, allow_redirects=False)


def rows(html: str) -> list[str]:
    """Report ids of an inbox page, in the order shown."""
    return ROW.findall(html)


def next_link(html: str) -> str | None:
    found = NEXT.search(html)
    return None if found is None else found.group(1).replace("&amp;", "&")


async def walk_inbox(client: Client, query: str = "") -> list[list[str]]:
    """Every page of the inbox from the first, following its "Next page" links."""
    pages: list[list[str]] = []
    path: str | None = "/" + (f"?{query}" if query else "")
    while path is not None:
        status, html = await text_of(client, path)
        assert status == 200, (path, status)
        pages.append(rows(html))
        path = next_link(html)
        assert len(pages) < 50, "the pages never end"
    return pages


async def set_day(app: App, report_id: bytes, day: dt.date) -> None:
    """Move a report to another day (reports made in one test all arrive today)."""
    async with app.sessions() as session, session.begin():
        await session.execute(update(Report).where(Report.id == report_id).values(created_on=day))


async def audit_entries(app: App, action: str | None = None) -> list[audit.Entry]:
    async with app.sessions() as session:
        found = await audit.entries(session, limit=100_000)
    return [e for e in found if action is None or e.action == action]


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 50_000):
        yield data[start : start + 50_000]


async def make_draft(
    app: App,
    settings: Settings,
    answers: dict[str, Any],
    *,
    files: Sequence[tuple[str, str, bytes]] = (),
    urgent: bool = False,
    close: bool = True,
    language: str = "ru",
) -> bytes:
    """A draft written through the draft service, as the bot writes one; with ``close``,
    closed by the sweeper (a day later) into an incomplete report. The sweeper closes every
    open draft: make the drafts a test keeps open after the closed ones."""
    pool = ThreadPoolExecutor(max_workers=1)
    now = dt.datetime.now(dt.UTC)
    ctx = DraftContext(
        read_pin(settings.signing_key_pin),
        load_or_create(settings.runtime_dir, now.date()),
        settings.kdf_profile.receipt,
        pool,
    )
    try:
        async with app.sessions() as session, session.begin():
            draft = await drafts.create(
                session, ctx, handle=secrets.token_bytes(32), chat_id=4242, language=language
            )
        draft.urgent = urgent
        draft.answers = dict(answers)
        position = "evidence_files" if files else "event_account"
        draft.engine = State(position=position, answers=dict(answers)).to_json()
        refs = []
        for name, mime, data in files:
            stored = await store_file_blob(app.blobs, draft.report, _chunks(data))
            refs.append(
                {
                    "file": stored.file_id.hex(),
                    "kind": "document",
                    "name": name,
                    "mime": mime,
                    "size": stored.digest.size,
                    "sha256": stored.digest.sha256,
                    "sent": now.isoformat(),
                    "received": now.isoformat(),
                    "caption": None,
                    "album": False,
                }
            )
            async with app.sessions() as session, session.begin():
                await record_file(session, app.blobs, draft.report, stored)
                await drafts.save_manifest(session, draft, refs[-1])
        async with app.sessions() as session, session.begin():
            await drafts.save(session, ctx, draft, list(answers))
        if close:
            async with app.sessions() as session, session.begin():
                closed = await drafts.sweep(session, ctx, app.blobs, now + dt.timedelta(hours=25))
            assert closed, "the sweeper did not close the draft"
    finally:
        pool.shutdown(wait=True)
    return draft.report.report_id


async def relogin(client: Client, app: App, member: Member) -> None:
    """End the client's session (if any) and log in as ``member``."""
    if client.session.cookie_jar.filter_cookies(client.make_url("/")).get(COOKIE) is not None:
        response = await post(client, "/logout")
        assert response.status == 303, response.status
    await login(client, app, member)


async def many_reports(app: App, specs: Sequence[tuple[bool, dt.date]]) -> list[bytes]:
    """Submitted reports (urgent, day) with a one-answer document, in one transaction:
    for tests that need many rows rather than realistic content."""
    pinned = read_pin(app.settings.signing_key_pin)
    made = []
    async with app.sessions() as session, session.begin():
        for index, (urgent, day) in enumerate(specs):
            report = await start_report(session, pinned, state=ReportState.SUBMITTED, urgent=urgent)
            document = {
                "questionnaire": {"id": "intake-default", "version": 1},
                "answers": [{"question": TEXT_QUESTION, "value": [{"text": f"report {index}"}]}],
                "files": [],
            }
            await save_payload(
                session, report, PayloadKind.DOCUMENT, Plaintext(json.dumps(document).encode())
            )
            await session.execute(
                update(Report).where(Report.id == report.report_id).values(created_on=day)
            )
            made.append(report.report_id)
    return made


async def rich_report(
    app: App,
    answers: Sequence[tuple[str, Any]],
    files: Sequence[tuple[str, str, bytes, dict[str, Any]]] = (),
    *,
    urgent: bool = False,
    language: str = "en",
) -> tuple[bytes, list[bytes]]:
    """Like :func:`harness.make_report`, with extra fields per file ref (a caption, a
    forward origin) as the bot records them; returns the report and file ids."""
    pinned = read_pin(app.settings.signing_key_pin)
    async with app.sessions() as session, session.begin():
        report = await start_report(session, pinned, state=ReportState.SUBMITTED, urgent=urgent)
        manifest, ids = [], []
        for name, mime, data, extra in files:
            stored = await save_file(session, app.blobs, report, _chunks(data))
            ids.append(stored.file_id)
            manifest.append(
                {
                    "file": stored.file_id.hex(),
                    "kind": "document",
                    "name": name,
                    "mime": mime,
                    "size": stored.digest.size,
                    "sha256": stored.digest.sha256,
                    "sent": "2026-11-01T10:00:00+00:00",
                    "received": "2026-11-01T10:00:01.250000+00:00",
                    "caption": None,
                    "album": False,
                    **extra,
                }
            )
        document = {
            "questionnaire": {"id": "intake-default", "version": 1},
            "language": language,
            "started": "2026-11-01T09:58:00.125000+00:00",
            "submitted": "2026-11-01T10:05:00.875000+00:00",
            "urgent": urgent,
            "answers": [{"question": qid, "section": "", "value": value} for qid, value in answers]
            + (
                [
                    {
                        "question": FILES_QUESTION,
                        "section": "evidence",
                        "value": [{"file": ref} for ref in manifest],
                    }
                ]
                if manifest
                else []
            ),
            "files": manifest,
        }
        await save_payload(
            session,
            report,
            PayloadKind.DOCUMENT,
            Plaintext(json.dumps(document, ensure_ascii=False).encode()),
        )
    return report.report_id, ids

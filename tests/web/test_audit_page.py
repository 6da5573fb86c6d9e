"""The audit page (admins): entries newest first in pages, verification of the hash chain
that names edits, deletions and a cut-off tail, the head signed at a key-holder's unlock,
and its export, which the CLI's verifier accepts."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import delete, func, insert, select, update

from intake_bot.bootstrap import App
from intake_bot.services import auditing
from intake_bot.services.errors import ServiceError
from intake_bot.storage import audit
from intake_bot.storage.models import AuditCheckpoint, AuditEntry, AuditHead, Role

from .harness import Member, add_member, login
from .reading import relogin, text_of

Client = TestClient[Any, Any]
ENTRY = re.compile(r"<tr><td>(\d+)</td>")
OLDER = re.compile(r'<a href="(/audit\?before=\d+)">')


def seqs(page: str) -> list[int]:
    return [int(seq) for seq in ENTRY.findall(page)]


def outcome(page: str) -> str:
    found = re.search(r'<p class="(?:done|error)" role="(?:status|alert)">(.*?)</p>', page)
    assert found is not None, "the page shows no verification result"
    return html.unescape(found.group(1))


async def add_entries(app: App, count: int) -> None:
    async with app.sessions() as session, session.begin():
        for n in range(count):
            await audit.append(session, actor="console", action="test.entry", details={"n": n})


async def checkpoint_seq(app: App) -> int:
    async with app.sessions() as session:
        found = await session.scalar(select(func.max(AuditCheckpoint.seq)))
    assert found is not None
    return int(found)


async def test_the_audit_page_lists_pages_and_exports_a_head_that_verifies(
    client: Client, app: App, first: Member
) -> None:
    zaur = await add_member(app, "zaur", [Role.ADMIN])
    await login(client, app, zaur)  # an admin, not a key-holder: nothing is signed
    status, page = await text_of(client, "/audit")
    assert status == 200
    assert "No head has been signed yet" in page
    assert (await client.get("/audit/head")).status == 404

    await add_entries(app, 230)
    await relogin(client, app, first)  # a key-holder's unlock signs the head
    signed = await checkpoint_seq(app)
    status, page = await text_of(client, "/audit")
    assert status == 200
    assert f"Last signed head: entry {signed}," in page
    newest = seqs(page)
    assert len(newest) == 100
    assert newest == list(range(newest[0], newest[0] - 100, -1))
    assert "<td>keys.unlock</td>" in page
    seen = list(newest)
    link = OLDER.search(page)
    while link is not None:
        status, page = await text_of(client, link.group(1))
        assert status == 200
        seen += seqs(page)
        link = OLDER.search(page)
    assert seen == list(range(newest[0], 0, -1))  # every entry once, newest first

    for forged in ("²", "-1", "abc", "9" * 30, "1e3", "%00"):
        status, page = await text_of(client, f"/audit?before={forged}")
        assert status == 200, forged
        assert len(seqs(page)) == 100, forged

    status, page = await text_of(client, "/audit?verify=1")
    assert status == 200
    assert re.fullmatch(r"The chain verifies: \d+ entries\.", outcome(page))

    exported = await client.get("/audit/head")
    assert exported.status == 200
    assert exported.headers["Content-Disposition"].startswith("attachment")
    head = auditing.SignedHead.from_json(await exported.text())
    assert head.seq == signed
    assert json.loads(await exported.text())["format"] == "intake-audit-head-v1"
    verified = await auditing.verify_log(app, head)
    assert verified.seq > head.seq

    await relogin(client, app, await add_member(app, "rustam", [Role.REVIEWER, Role.KEYHOLDER]))
    assert (await client.get("/audit", allow_redirects=False)).status == 403
    assert (await client.get("/audit/head", allow_redirects=False)).status == 403
    assert (await client.get("/audit?verify=1", allow_redirects=False)).status == 403


async def test_verification_names_edits_deletions_and_a_cut_tail(
    client: Client, app: App, first: Member
) -> None:
    await add_entries(app, 5)
    await login(client, app, first)
    signed = await checkpoint_seq(app)
    await add_entries(app, 5)

    async def verify() -> str:
        status, page = await text_of(client, "/audit?verify=1")
        assert status == 200
        return outcome(page)

    assert (await verify()).startswith("The chain verifies")

    # An edited entry (before the signed head, and after it).
    for edited in (3, signed + 2):
        async with app.sessions() as session, session.begin():
            row = await session.get(AuditEntry, edited)
            assert row is not None
            original = row.details
            await session.execute(
                update(AuditEntry).where(AuditEntry.seq == edited).values(details='{"n": 99}')
            )
        assert await verify() == f"The audit log does not verify: entry {edited} was altered"
        async with app.sessions() as session, session.begin():
            await session.execute(
                update(AuditEntry).where(AuditEntry.seq == edited).values(details=original)
            )
        assert (await verify()).startswith("The chain verifies")

    # A deleted entry in the middle.
    saved = await _rows(app, AuditEntry.seq == 4)
    async with app.sessions() as session, session.begin():
        await session.execute(delete(AuditEntry).where(AuditEntry.seq == 4))
    assert await verify() == "The audit log does not verify: entry 4 is missing"
    await _restore(app, saved)
    assert (await verify()).startswith("The chain verifies")

    # A forged signature on the signed head.
    async with app.sessions() as session, session.begin():
        checkpoint = await session.get(AuditCheckpoint, signed)
        assert checkpoint is not None
        good = checkpoint.signature
        checkpoint.signature = bytes([good[0] ^ 1]) + good[1:]
    assert await verify() == "The signed head does not verify against the pinned signing key."
    async with app.sessions() as session, session.begin():
        await session.execute(
            update(AuditCheckpoint).where(AuditCheckpoint.seq == signed).values(signature=good)
        )
    assert (await verify()).startswith("The chain verifies")

    # The tail cut off from the signed head on, and the head row moved back to match: the
    # chain alone is consistent, the signed head shows that entries are missing.
    async with app.sessions() as session, session.begin():
        kept = await session.get(AuditEntry, signed - 1)
        assert kept is not None
        await session.execute(delete(AuditEntry).where(AuditEntry.seq >= signed))
        await session.execute(
            update(AuditHead).where(AuditHead.id == 1).values(seq=kept.seq, hash=kept.hash)
        )
    assert await verify() == (
        "The audit log does not verify: entries up to the exported head are missing"
    )
    exported = await client.get("/audit/head")
    head = auditing.SignedHead.from_json(await exported.text())
    # The page's own "audit.view" entry now holds the signed head's number, with another
    # hash: still a log that does not verify against the export.
    with pytest.raises(ServiceError, match=rf"does not verify: entry {signed} differs from"):
        await auditing.verify_log(app, head)


async def _rows(app: App, where: Any) -> list[dict[str, Any]]:
    async with app.sessions() as session:
        found = await session.scalars(select(AuditEntry).where(where))
        return [
            {column.name: getattr(row, column.name) for column in AuditEntry.__table__.columns}
            for row in found
        ]


async def _restore(app: App, saved: list[dict[str, Any]]) -> None:
    async with app.sessions() as session, session.begin():
        await session.execute(insert(AuditEntry), saved)

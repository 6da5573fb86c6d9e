"""Helpers for the admin web tests: an installation, members, reports, and a client that
logs in the way a browser does (CSRF tokens from the forms, the TOTP code of the moment).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyotp
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from intake_bot.bootstrap import App
from intake_bot.crypto import PayloadKind, Plaintext, Secret
from intake_bot.services import accounts, installation
from intake_bot.services.keyring import read_pin
from intake_bot.services.reports import save_file, save_payload, start_report
from intake_bot.storage import staff as staff_repo
from intake_bot.storage.models import ReportState, Role, Staff

ADMIN = "amina"
ADMIN_PASSWORD = Secret(b"correct horse battery staple amina")
PASSWORD_TEXT = "vivid tundra lantern oboe 42"

TEXT_QUESTION = "event_account"
FILES_QUESTION = "evidence_files"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class Member:
    name: str
    password: str
    totp_secret: str
    roles: frozenset[Role]
    fingerprint: str | None = None
    recovery_codes: tuple[str, ...] = ()

    def code(self, at: dt.datetime | None = None) -> str:
        return pyotp.TOTP(self.totp_secret).at(at or dt.datetime.now(dt.UTC))


async def install(app: App) -> Member:
    """A new installation with its first member, admin and key-holder."""
    await installation.initialise(app, ADMIN, ADMIN_PASSWORD)
    async with app.sessions() as session:
        creds = await staff_repo.credentials(session, ADMIN)
    assert creds is not None
    return Member(
        ADMIN,
        ADMIN_PASSWORD.reveal().decode(),
        creds.totp_secret,
        frozenset({Role.ADMIN, Role.KEYHOLDER}),
    )


async def add_member(
    app: App, name: str, roles: Sequence[Role], password: str = PASSWORD_TEXT
) -> Member:
    """An enrolled member (through the service, the way ``intake users enrol`` does)."""
    invite = await accounts.add_member(app, name, roles)
    secret = accounts.new_totp_secret()
    done = await accounts.enrol(
        app,
        invite.token,
        Secret(f"{password} {name}".encode()),
        totp_secret=secret,
        totp_code=pyotp.TOTP(secret).now(),
    )
    return Member(
        name,
        f"{password} {name}",
        secret,
        frozenset(roles),
        done.key_fingerprint,
        done.recovery_codes,
    )


async def forget_used_codes(app: App, name: str) -> None:
    """Let the current TOTP code work again: a test logs in many times within 30 s, which
    the server rightly refuses (each code is accepted once)."""
    async with app.sessions() as session, session.begin():
        await session.execute(update(Staff).where(Staff.name == name).values(totp_last_step=None))


async def login(
    client: TestClient[Any, Any], app: App, member: Member, code: str | None = None
) -> None:
    """Log in through the two forms (with the current code, made usable); asserts it worked."""
    if code is None:
        await forget_used_codes(app, member.name)
    page = await client.get("/login")
    response = await client.post(
        "/login",
        data={"name": member.name, "password": member.password, "csrf": csrf_of(await page.text())},
    )
    assert response.status == 200, response.status
    assert response.url.path == "/login/code", response.url
    response = await client.post(
        "/login/code",
        data={"code": code or member.code(), "csrf": csrf_of(await response.text())},
    )
    assert response.status == 200, await response.text()
    assert response.url.path == "/", response.url


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 50_000):
        yield data[start : start + 50_000]


async def make_report(
    app: App,
    answers: Sequence[tuple[str, Any]] = (),
    *,
    files: Sequence[tuple[str, str, bytes]] = (),
    urgent: bool = False,
    language: str = "en",
) -> bytes:
    """A submitted report as the bot writes one: a document (with a file manifest) and
    the encrypted files. ``answers`` are (question id, value) of the default questionnaire."""
    pinned = read_pin(app.settings.signing_key_pin)
    async with app.sessions() as session, session.begin():
        report = await start_report(session, pinned, state=ReportState.SUBMITTED, urgent=urgent)
        manifest = []
        for name, mime, data in files:
            stored = await save_file(session, app.blobs, report, _chunks(data))
            manifest.append(
                {
                    "file": stored.file_id.hex(),
                    "kind": "document",
                    "name": name,
                    "mime": mime,
                    "size": stored.digest.size,
                    "sha256": stored.digest.sha256,
                    "sent": "2026-11-01T10:00:00+00:00",
                    "received": "2026-11-01T10:00:01+00:00",
                    "caption": None,
                    "album": False,
                }
            )
        document = {
            "questionnaire": {"id": "intake-default", "version": 1},
            "language": language,
            "started": "2026-11-01T09:58:00+00:00",
            "submitted": "2026-11-01T10:05:00+00:00",
            "urgent": urgent,
            "answers": [{"question": qid, "section": "", "value": value} for qid, value in answers]
            + (
                [
                    {
                        "question": FILES_QUESTION,
                        "section": "",
                        "value": [{"file": m} for m in manifest],
                    }
                ]
                if manifest
                else []
            ),
            "files": manifest,
        }
        await save_payload(
            session, report, PayloadKind.DOCUMENT, Plaintext(json.dumps(document).encode())
        )
    return report.report_id

"""Enrolment through the web: an admin makes a one-time link on /accounts (or the operator
with ``intake users add``); the member opens it, scans the QR code, sets their password
and confirms the second factor; recovery codes are shown once; a key-holder gets a key
pair whose fingerprint the page shows."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import re
from pathlib import Path

import pyotp
import pytest
import segno
from canary import Canary
from sqlalchemy import select, update

from intake_bot import cli
from intake_bot.bootstrap import App
from intake_bot.crypto import Secret, fingerprint, key_id
from intake_bot.services import ServiceError, accounts
from intake_bot.services.keyring import unlock
from intake_bot.storage import staff as staff_repo
from intake_bot.storage.models import Enrolment, Role, Staff, StaffKey, StaffState

from .harness import Member, csrf_of
from .support import (
    Client,
    FakeClock,
    Site,
    actions,
    audit_log,
    code_step,
    log_out,
    password_step,
    scan_database,
    sign_in,
)

GOOD = "juniper quarry velvet oboe 1977"
WEAK = "password123"
_LINK = re.compile(r"/enrol/([0-9a-f]{64})")
_SECRET = re.compile(r"<code>([A-Z2-7 ]{16,})</code>")
_QR = re.compile(r'<img src="(data:image/svg\+xml[^"]+)"')
_CODES = re.compile(r'<ul class="codes">(.*?)</ul>', re.S)
_FINGERPRINT = re.compile(r'<p class="fingerprint"><code>([^<]+)</code>')


@pytest.fixture
async def admin(site: Site, app: App, first: Member) -> Client:
    client = await site.client()
    await sign_in(client, app, first)
    return client


async def invite_on_the_web(admin: Client, name: str, roles: list[Role], password: str) -> str:
    """Add a member on /accounts; the token of the link the page shows."""
    page = await admin.get("/accounts")
    response = await admin.post(
        "/accounts",
        data=[
            ("csrf", csrf_of(await page.text())),
            ("name", name),
            *[("role", role.value) for role in roles],
            ("password", password),
        ],
    )
    text = await response.text()
    assert response.status == 200, text
    found = _LINK.search(text)
    assert found is not None, "the page shows no enrolment link"
    return found.group(1)


async def open_link(client: Client, token: str) -> tuple[str, str]:
    """GET the enrolment page: (its HTML, the TOTP secret it shows, without spaces)."""
    response = await client.get(f"/enrol/{token}")
    text = await response.text()
    assert response.status == 200, text
    found = _SECRET.search(text)
    assert found is not None, "the page shows no key"
    return text, found.group(1).replace(" ", "")


async def submit(
    client: Client,
    token: str,
    password: str,
    code: str,
    *,
    repeat: str | None = None,
) -> tuple[int, str]:
    page = await client.get(f"/enrol/{token}")
    response = await client.post(
        f"/enrol/{token}",
        data={
            "csrf": csrf_of(await page.text()),
            "password": password,
            "repeat": password if repeat is None else repeat,
            "code": code,
        },
    )
    return response.status, await response.text()


def recovery_codes(page: str) -> list[str]:
    block = _CODES.search(page)
    assert block is not None, "no recovery codes on the page"
    return re.findall(r"<code>([a-z2-7-]+)</code>", block.group(1))


async def state_of(app: App, name: str) -> StaffState | None:
    async with app.sessions() as session:
        member = await staff_repo.by_name(session, name)
    return None if member is None else member.state


async def test_an_admin_makes_a_link_and_a_key_holder_enrols_with_it(
    site: Site, admin: Client, app: App, first: Member, clock: FakeClock
) -> None:
    token = await invite_on_the_web(admin, "kamran", [Role.KEYHOLDER], first.password)
    assert await state_of(app, "kamran") is StaffState.PENDING
    accounts_page = await (await admin.get("/accounts")).text()
    assert "kamran" in accounts_page

    newcomer = await site.client("127.0.0.2")
    page, secret = await open_link(newcomer, token)
    assert "kamran" in page
    uri = accounts.otpauth_uri("kamran", secret)
    qr = _QR.search(page)
    assert qr is not None
    assert html.unescape(qr.group(1)) == segno.make(uri, error="m").svg_data_uri(
        scale=4, border=2
    ), "the QR code holds the otpauth address of the key shown beside it"

    code = pyotp.TOTP(secret).now()
    status, done = await submit(newcomer, token, GOOD, code)
    assert status == 200, done
    codes = recovery_codes(done)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    shown = _FINGERPRINT.search(done)
    assert shown is not None, "a key-holder sees their key's fingerprint"
    async with app.sessions() as session:
        member = await staff_repo.by_name(session, "kamran")
        assert member is not None
        assert member.state is StaffState.ACTIVE
        assert member.public_key is not None
        assert shown.group(1) == fingerprint(key_id(member.public_key))
        ring = await unlock(
            session, "kamran", Secret(GOOD.encode()), app.settings.kdf_profile.floor
        )
        assert ring.org_keys == {}, "no grants yet: a key-holder must grant the keys"
    assert ("amina", "staff.invite") in await actions(app)
    assert ("kamran", "staff.enrol") in await actions(app)

    kamran = Member("kamran", GOOD, secret, frozenset({Role.KEYHOLDER}))
    step = pyotp.TOTP(secret).timecode(dt.datetime.now(dt.UTC))
    response = await password_step(newcomer, "kamran", GOOD)
    assert response.status == 303
    again = await code_step(newcomer, code)
    assert again.status == 401, "the code typed at enrolment does not log in a second time"
    clock.advance(1)
    await sign_in(newcomer, app, kamran, code=pyotp.TOTP(secret).generate_otp(step + 1))


async def test_a_link_from_the_console_works_on_the_web(
    site: Site, app: App, first: Member
) -> None:
    args = cli.build_parser().parse_args(["users", "add", "rena", "--role", "reviewer", "--json"])
    doc, _text = await cli.cmd_users_add(app, args)
    assert isinstance(doc, dict)
    token = str(doc["token"])
    assert str(doc["link"]).endswith(f"/enrol/{token}")
    client = await site.client()
    _page, secret = await open_link(client, token)
    status, done = await submit(client, token, GOOD, pyotp.TOTP(secret).now())
    assert status == 200, done
    assert len(recovery_codes(done)) == 10
    assert _FINGERPRINT.search(done) is None, "a reviewer has no key pair"
    async with app.sessions() as session:
        member = await staff_repo.by_name(session, "rena")
    assert member is not None
    assert member.public_key is None
    assert member.roles == {Role.REVIEWER}
    step = pyotp.TOTP(secret).timecode(dt.datetime.now(dt.UTC))
    rena = Member("rena", GOOD, secret, frozenset({Role.REVIEWER}))
    await sign_in(client, app, rena, code=pyotp.TOTP(secret).generate_otp(step + 1))


REFUSALS = [
    ("weak", WEAK, WEAK, "now", "too weak"),
    ("weak with the name", "nigar nigar nigar", "nigar nigar nigar", "now", "too weak"),
    ("wrong code", GOOD, GOOD, "wrong", "does not match"),
    ("no code", GOOD, GOOD, "", "does not match"),
    ("passwords differ", GOOD, GOOD + " ", "now", "differ"),
]


async def test_refused_tries_keep_the_link_and_the_key_shown(
    site: Site, app: App, first: Member
) -> None:
    invite = await accounts.add_member(app, "nigar", [Role.KEYHOLDER])
    client = await site.client()
    _, secret = await open_link(client, invite.token)
    _, again = await open_link(client, invite.token)
    assert again == secret, "a reload shows the same key"
    other_browser = await site.client("127.0.0.3")
    _, elsewhere = await open_link(other_browser, invite.token)
    assert elsewhere == secret
    totp = pyotp.TOTP(secret)
    for label, password, repeat, code, message in REFUSALS:
        typed = {"now": totp.now(), "wrong": str((int(totp.now()) + 1) % 1_000_000).zfill(6)}
        status, page = await submit(
            client, invite.token, password, typed.get(code, code), repeat=repeat
        )
        assert status == 400, label
        assert message in page, label
        assert secret in page.replace(" ", ""), f"{label}: the same key is shown again"
        async with app.sessions() as session:
            assert await staff_repo.credentials(session, "nigar") is None, label
            assert await session.scalar(select(Enrolment.token_hash)) is not None, label
            row = await session.scalar(select(Staff).where(Staff.name == "nigar"))
            assert row is not None
            assert row.password_hash is None, label
            assert row.totp_secret is None, label
            assert row.state == StaffState.PENDING.value, label
            key_owners = (await session.scalars(select(StaffKey.staff_id))).all()
            assert key_owners == [row_id for row_id in key_owners if row_id != row.id], label
    assert ("nigar", "staff.enrol") not in await actions(app)
    status, page = await submit(client, invite.token, GOOD, totp.now())
    assert status == 200, page
    async with app.sessions() as session:
        creds = await staff_repo.credentials(session, "nigar")
    assert creds is not None
    assert creds.totp_secret == secret, "the key shown is the key kept"


async def test_a_link_works_once_and_not_after_it_expires(
    site: Site, app: App, first: Member
) -> None:
    invite = await accounts.add_member(app, "nigar", [Role.REVIEWER])
    client = await site.client()
    _, secret = await open_link(client, invite.token)
    status, _page = await submit(client, invite.token, GOOD, pyotp.TOTP(secret).now())
    assert status == 200
    assert (await client.get(f"/enrol/{invite.token}")).status == 404
    intruder = await site.client("127.0.0.4")
    login_page = await intruder.get("/login")
    response = await intruder.post(
        f"/enrol/{invite.token}",
        data={
            "csrf": csrf_of(await login_page.text()),
            "password": GOOD + " again",
            "repeat": GOOD + " again",
            "code": "123456",
        },
    )
    assert response.status == 404
    assert "unknown, used or expired" in await response.text()
    with pytest.raises(ServiceError):
        await accounts.enrol(app, invite.token, Secret(b"another fine passphrase 8812"))
    nigar = Member("nigar", GOOD, secret, frozenset({Role.REVIEWER}))
    step = pyotp.TOTP(secret).timecode(dt.datetime.now(dt.UTC))
    await sign_in(client, app, nigar, code=pyotp.TOTP(secret).generate_otp(step + 1))

    # An expired link.
    expired = await accounts.add_member(app, "farid", [Role.REVIEWER])
    other = await site.client("127.0.0.5")
    _, secret = await open_link(other, expired.token)
    async with app.sessions() as session, session.begin():
        await session.execute(
            update(Enrolment)
            .where(Enrolment.token_hash == accounts.token_hash(expired.token))
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    response = await other.get(f"/enrol/{expired.token}")
    assert response.status == 404
    assert "unknown, used or expired" in await response.text()
    login_page = await other.get("/login")
    response = await other.post(
        f"/enrol/{expired.token}",
        data={
            "csrf": csrf_of(await login_page.text()),
            "password": GOOD,
            "repeat": GOOD,
            "code": pyotp.TOTP(secret).now(),
        },
    )
    assert response.status == 404
    assert await state_of(app, "farid") is StaffState.PENDING
    with pytest.raises(ServiceError):
        await accounts.enrol(app, expired.token, Secret(GOOD.encode()))

    # Links that never were.
    for token in ("0" * 64, expired.token[:-1], "x"):
        assert (await other.get(f"/enrol/{token}")).status == 404

    # Two enrolments racing with one link: one wins, the other is refused.
    raced = await accounts.add_member(app, "rauf", [Role.KEYHOLDER])
    results = await asyncio.gather(
        accounts.enrol(app, raced.token, Secret(GOOD.encode())),
        accounts.enrol(app, raced.token, Secret(b"another fine passphrase 8812")),
        return_exceptions=True,
    )
    assert len([r for r in results if isinstance(r, accounts.Enrolled)]) == 1, results
    assert len([r for r in results if isinstance(r, ServiceError)]) == 1, results


async def test_recovery_codes_are_shown_once_and_each_logs_in_once(
    site: Site, app: App, first: Member, *, clock: FakeClock, database_url: str, tmp_path: Path
) -> None:
    invite = await accounts.add_member(app, "nigar", [Role.KEYHOLDER])
    client = await site.client()
    _, secret = await open_link(client, invite.token)
    status, page = await submit(client, invite.token, GOOD, pyotp.TOTP(secret).now())
    assert status == 200
    codes = recovery_codes(page)
    nigar = Member("nigar", GOOD, secret, frozenset({Role.KEYHOLDER}))

    # Stored as hashes only: no code is anywhere in the database or its files.
    found = await scan_database(
        app, database_url, tmp_path, [Canary(f"code{i}", code) for i, code in enumerate(codes)]
    )
    found.assert_clean()

    await sign_in(client, app, nigar, code=codes[0])
    await log_out(client)
    typed_loosely = codes[1].upper().replace("-", " ")
    await sign_in(client, app, nigar, code=typed_loosely)
    await log_out(client)
    for used in (codes[0], codes[1]):
        clock.advance(60)  # past the second-factor slow-down of the try before
        assert (await password_step(client, "nigar", GOOD)).status == 303
        refused = await code_step(client, used)
        assert refused.status == 401, "a recovery code logs in once"
    async with app.sessions() as session:
        row = await session.scalar(select(Staff.id).where(Staff.name == "nigar"))
        assert row is not None
        assert await staff_repo.recovery_codes_left(session, row) == 8
    oks = [e for e in await audit_log(app) if (e.actor, e.action) == ("nigar", "login.ok")]
    assert [e.details for e in oks] == [{"by": "recovery-code"}] * 2

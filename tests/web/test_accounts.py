"""Accounts and keys on the web: every change asks for the password again (a wrong one
changes nothing); disabling or re-enrolling a member ends their live sessions at once; a
key-holder grants the keys after comparing the grantee's fingerprint."""

from __future__ import annotations

import html
import re

import pyotp
import pytest

from intake_bot.bootstrap import App
from intake_bot.crypto import Secret
from intake_bot.services import keyring
from intake_bot.storage import keys as key_repo
from intake_bot.storage import staff as staff_repo
from intake_bot.storage.models import Role, StaffState

from .harness import TEXT_QUESTION, Member, add_member, csrf_of, make_report
from .support import (
    Client,
    FakeClock,
    Site,
    actions,
    audit_log,
    audit_seq,
    is_signed_in,
    password_step,
    sign_in,
    snapshot,
    text_of_error,
)

WRONG = "not my password at all 5521"
_LINK = re.compile(r"/enrol/([0-9a-f]{64})")


@pytest.fixture
async def admin(site: Site, app: App, first: Member) -> Client:
    client = await site.client()
    await sign_in(client, app, first)
    return client


async def post_form(
    client: Client, page: str, action: str, fields: list[tuple[str, str]]
) -> tuple[int, str]:
    """POST a form of ``page`` (its CSRF token) to ``action``; status and page text."""
    form_page = await client.get(page)
    response = await client.post(action, data=[("csrf", csrf_of(await form_page.text())), *fields])
    return response.status, html.unescape(await response.text())


async def member(app: App, name: str) -> staff_repo.StaffInfo | None:
    async with app.sessions() as session:
        return await staff_repo.by_name(session, name)


def without_audit(tables: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: rows for name, rows in tables.items() if name not in ("audit_log", "audit_head")}


async def grants_of(app: App, name: str) -> int:
    found = await member(app, name)
    assert found is not None
    async with app.sessions() as session:
        return len(await key_repo.org_grants(session, found.id))


async def test_adding_a_member_asks_for_the_password(
    site: Site, admin: Client, app: App, first: Member, clock: FakeClock
) -> None:
    before = await snapshot(app)
    status, page = await post_form(
        admin,
        "/accounts",
        "/accounts",
        [("name", "zaur"), ("role", "reviewer"), ("password", WRONG)],
    )
    assert status == 403
    assert text_of_error(page) == "Your password is wrong."
    assert await member(app, "zaur") is None
    assert without_audit(await snapshot(app)) == without_audit(before), (
        "nothing but the audit log changed"
    )
    assert (await audit_log(app))[-1].action == "reauth.failed"

    status, page = await post_form(
        admin,
        "/accounts",
        "/accounts",
        [("name", "zaur"), ("role", "reviewer"), ("password", first.password)],
    )
    assert status == 403, "a wrong password slows the next one down too"
    assert await member(app, "zaur") is None
    clock.advance(1)
    for fields in (
        [("name", "zaur"), ("password", first.password)],
        [("name", "not a name"), ("role", "reviewer"), ("password", first.password)],
        [("name", "amina"), ("role", "reviewer"), ("password", first.password)],
        [("name", "zaur"), ("role", "overlord"), ("password", first.password)],
    ):
        status, page = await post_form(admin, "/accounts", "/accounts", fields)
        assert status == 400, fields
        assert "Choose a free name" in text_of_error(page)
    assert await member(app, "zaur") is None

    seq = await audit_seq(app)
    status, page = await post_form(
        admin,
        "/accounts",
        "/accounts",
        [("name", "zaur"), ("role", "reviewer"), ("role", "admin"), ("password", first.password)],
    )
    assert status == 200
    assert _LINK.search(page) is not None
    added = await member(app, "zaur")
    assert added is not None
    assert added.state is StaffState.PENDING
    assert added.roles == {Role.REVIEWER, Role.ADMIN}
    assert await actions(app, seq) == [("amina", "reauth.ok"), ("amina", "staff.invite")]


async def test_disabling_a_member_ends_their_sessions_at_once(
    site: Site, admin: Client, app: App, first: Member, clock: FakeClock
) -> None:
    bob = await add_member(app, "bob", [Role.REVIEWER])
    browser = await site.client("127.0.0.2")
    await sign_in(browser, app, bob)
    second_tab = await site.client("127.0.0.3")
    await sign_in(second_tab, app, bob)

    before = without_audit(await snapshot(app))
    for action in ("/accounts/disable", "/accounts/reenrol"):
        status, page = await post_form(
            admin, "/accounts", action, [("name", "bob"), ("password", WRONG)]
        )
        assert status == 403
        assert text_of_error(page) == "Your password is wrong."
        clock.advance(60)
    assert without_audit(await snapshot(app)) == before, "a wrong password changes nothing"
    found = await member(app, "bob")
    assert found is not None
    assert found.state is StaffState.ACTIVE
    assert await is_signed_in(browser)
    clock.advance(1)

    status, page = await post_form(
        admin, "/accounts", "/accounts/disable", [("name", "amina"), ("password", first.password)]
    )
    assert status == 400
    assert text_of_error(page) == "You cannot do this to your own account."
    status, page = await post_form(
        admin, "/accounts", "/accounts/disable", [("name", "nobody"), ("password", first.password)]
    )
    assert status == 404

    seq = await audit_seq(app)
    status, page = await post_form(
        admin, "/accounts", "/accounts/disable", [("name", "bob"), ("password", first.password)]
    )
    assert status == 200
    assert "bob is disabled." in page
    assert not await is_signed_in(browser), "the next request of a disabled member goes nowhere"
    assert not await is_signed_in(second_tab)
    assert all(s.staff_id != found.id for s in site.state.sessions._sessions.values())
    assert await actions(app, seq) == [("amina", "reauth.ok"), ("amina", "staff.disable")]
    assert (await audit_log(app))[-1].target == "bob"
    assert (await password_step(browser, "bob", bob.password)).status == 401
    assert await is_signed_in(admin)


async def test_re_enrolling_a_key_holder_ends_their_sessions_and_their_keys(
    site: Site, admin: Client, app: App, first: Member, clock: FakeClock
) -> None:
    report = await make_report(app, [(TEXT_QUESTION, [{"text": "a beating in custody"}])])
    kamala = await add_member(app, "kamala", [Role.KEYHOLDER])
    assert kamala.fingerprint is not None
    await keyring.grant_keys(
        app, first.name, Secret(first.password.encode()), "kamala", kamala.fingerprint
    )
    browser = await site.client("127.0.0.2")
    await sign_in(browser, app, kamala)
    shown = await browser.get(f"/reports/{report.hex()}")
    assert "a beating in custody" in await shown.text()

    status, _ = await post_form(
        admin, "/accounts", "/accounts/reenrol", [("name", "kamala"), ("password", WRONG)]
    )
    assert status == 403
    assert await grants_of(app, "kamala") == 1
    assert await is_signed_in(browser)
    clock.advance(1)

    seq = await audit_seq(app)
    status, page = await post_form(
        admin, "/accounts", "/accounts/reenrol", [("name", "kamala"), ("password", first.password)]
    )
    assert status == 200
    link = _LINK.search(page)
    assert link is not None
    assert "must grant the keys again" in page
    assert not await is_signed_in(browser)
    assert await actions(app, seq) == [("amina", "reauth.ok"), ("amina", "staff.reenrol")]
    found = await member(app, "kamala")
    assert found is not None
    assert found.state is StaffState.PENDING
    assert found.public_key is None, "the old key pair is gone"
    assert await grants_of(app, "kamala") == 0
    assert (await password_step(browser, "kamala", kamala.password)).status == 401

    # The new link gives a new key pair.
    enrol_page = await browser.get(f"/enrol/{link.group(1)}")
    text = await enrol_page.text()
    secret = re.search(r"<code>([A-Z2-7 ]{16,})</code>", text)
    assert secret is not None
    new_password = "tamarind glacier umbra 4409"
    response = await browser.post(
        f"/enrol/{link.group(1)}",
        data={
            "csrf": csrf_of(text),
            "password": new_password,
            "repeat": new_password,
            "code": pyotp.TOTP(secret.group(1).replace(" ", "")).now(),
        },
    )
    assert response.status == 200
    fingerprint = re.search(r'<p class="fingerprint"><code>([^<]+)</code>', await response.text())
    assert fingerprint is not None
    assert fingerprint.group(1) != kamala.fingerprint


async def test_granting_keys_asks_for_the_password_and_the_fingerprint(
    site: Site, admin: Client, app: App, first: Member, clock: FakeClock
) -> None:
    report = await make_report(app, [(TEXT_QUESTION, [{"text": "a planted packet"}])])
    kamala = await add_member(app, "kamala", [Role.KEYHOLDER])
    assert kamala.fingerprint is not None
    browser = await site.client("127.0.0.2")
    await sign_in(browser, app, kamala)
    keys_page = await (await browser.get("/keys")).text()
    assert "You hold no keys in this session" in keys_page
    assert 'action="/keys/grant"' not in keys_page
    locked = await (await browser.get(f"/reports/{report.hex()}")).text()
    assert "a planted packet" not in locked

    mine = await (await admin.get("/keys")).text()
    assert 'action="/keys/grant"' in mine
    assert "<option>kamala</option>" in mine

    status, page = await post_form(
        admin,
        "/keys",
        "/keys/grant",
        [("grantee", "kamala"), ("fingerprint", kamala.fingerprint), ("password", WRONG)],
    )
    assert status == 400
    assert text_of_error(page) == "Your password is wrong."
    assert await grants_of(app, "kamala") == 0
    status, page = await post_form(
        admin,
        "/keys",
        "/keys/grant",
        [("grantee", "kamala"), ("fingerprint", kamala.fingerprint), ("password", first.password)],
    )
    assert status == 429, "a wrong password slows the next try down"
    assert await grants_of(app, "kamala") == 0
    clock.advance(1)

    wrong_print = "0000 " + kamala.fingerprint[5:]
    status, page = await post_form(
        admin,
        "/keys",
        "/keys/grant",
        [("grantee", "kamala"), ("fingerprint", wrong_print), ("password", first.password)],
    )
    assert status == 400
    assert "does not match kamala" in text_of_error(page)
    assert await grants_of(app, "kamala") == 0
    assert not [e for e in await audit_log(app) if e.action == "keys.grant"]

    status, page = await post_form(
        admin,
        "/keys",
        "/keys/grant",
        [
            ("grantee", "kamala"),
            ("fingerprint", kamala.fingerprint.lower().replace(" ", "-")),
            ("password", first.password),
        ],
    )
    assert status == 200, page
    granted = (
        "kamala now holds the organisation keys you hold (1 newly granted) and the signing key."
    )
    assert granted in page
    assert await grants_of(app, "kamala") == 1
    grant = [e for e in await audit_log(app) if e.action == "keys.grant"]
    assert [(e.actor, e.target) for e in grant] == [("amina", "kamala")]

    clock.advance(60)
    await sign_in(browser, app, kamala)
    assert "a planted packet" in await (await browser.get(f"/reports/{report.hex()}")).text()
    keys_page = await (await browser.get("/keys")).text()
    assert "You hold no keys in this session" not in keys_page

"""Sessions: the keys are unlocked only after the second factor and held only in the session
vault; they go at logout, after 15 idle minutes, at the 8-hour lifetime and at a restart.
A password change needs the current password and re-wraps the key-holder's key."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from admin.sessions import Stage, Ticket, unpack_keyring
from admin.state import COOKIE
from intake_bot.bootstrap import App
from intake_bot.crypto import SealedGrant, Secret
from intake_bot.services import ServiceError
from intake_bot.services.keyring import Keyring, read_pin, unlock
from intake_bot.storage.models import OrgKeyGrant

from .harness import TEXT_QUESTION, Member, csrf_of, forget_used_codes, make_report
from .support import (
    Client,
    FakeClock,
    Site,
    actions,
    audit_seq,
    code_step,
    is_signed_in,
    log_out,
    password_step,
    reachable_data,
    session_cookie,
    sign_in,
    text_of_error,
)

NEW_PASSWORD = "marble otter kiln saffron 2031"
IDLE = 15 * 60
LIFETIME = 8 * 3600


async def keyring_of(app: App, name: str, password: str) -> Keyring:
    async with app.sessions() as session:
        return await unlock(
            session,
            name,
            Secret(password.encode()),
            app.settings.kdf_profile.floor,
            read_pin(app.settings.signing_key_pin),
        )


def raw_keys(ring: Keyring) -> list[bytes]:
    found = [key.raw().reveal() for key in ring.org_keys.values()]
    if ring.signing is not None:
        found.append(ring.signing.seed().reveal())
    return found


async def replay(client: Client, cookie: str, path: str = "/") -> int:
    """GET ``path`` presenting a given session cookie (as a thief would); the status."""
    response = await client.get(
        path, headers={"Cookie": f"{COOKIE}={cookie}"}, allow_redirects=False
    )
    if response.status == 303:
        assert response.headers["Location"] == "/login"
    return response.status


async def test_keys_are_unlocked_after_the_second_factor_into_the_vault_only(
    site: Site, app: App, first: Member
) -> None:
    report = await make_report(app, [(TEXT_QUESTION, [{"text": "they searched the flat"}])])
    ring = await keyring_of(app, first.name, first.password)
    secrets_held = raw_keys(ring)
    assert len(secrets_held) == 2, "amina holds the org key and the signing key"
    store = site.state.sessions
    client = await site.client()
    before = await audit_seq(app)

    assert (await password_step(client, first.name, first.password)).status == 303
    assert ("amina", "keys.unlock") not in await actions(app, before)
    pending_ticket = Ticket.decode(session_cookie(client))
    assert pending_ticket is not None
    pending = store.get(pending_ticket)
    assert pending is not None
    assert pending.stage is Stage.SECOND_FACTOR
    held = store.open(pending_ticket, pending)
    assert held is not None
    assert held.reveal() == first.password.encode(), "between the steps: the password, sealed"
    for data in reachable_data(store):
        assert first.password.encode() not in data
        for raw in secrets_held:
            assert raw not in data

    await forget_used_codes(app, first.name)
    assert (await code_step(client, first.code())).status == 303
    assert ("amina", "keys.unlock") in await actions(app, before)
    ticket = Ticket.decode(session_cookie(client))
    assert ticket is not None
    assert ticket.session_id != pending_ticket.session_id, "a new session id after sign-in"
    assert store.get(pending_ticket) is None, "the password step's session is gone"
    assert len(store) == 1
    session = store.get(ticket)
    assert session is not None
    assert session.stage is Stage.SIGNED_IN
    opened = store.open(ticket, session)
    assert opened is not None
    assert raw_keys(unpack_keyring(opened)) == secrets_held, "the vault holds the keys"

    # ... sealed: no raw key, password, session id or vault key anywhere in the store.
    everything = reachable_data(store)
    assert session.vault in everything
    for item in everything:
        for raw in secrets_held:
            assert raw not in item
        assert first.password.encode() not in item
        assert ticket.session_id not in item
        assert ticket.vault_key.reveal() not in item
        assert session_cookie(client).encode() not in item

    page = await client.get(f"/reports/{report.hex()}")
    assert "they searched the flat" in await page.text()


async def test_sessions_end_after_15_idle_minutes_and_after_8_hours(
    site: Site, app: App, first: Member, clock: FakeClock
) -> None:
    assert site.state.sessions.idle == IDLE
    assert site.state.sessions.lifetime == LIFETIME
    client = await site.client()
    await sign_in(client, app, first)
    clock.advance(IDLE)
    assert await is_signed_in(client), "15 minutes to the second is still in time"
    clock.advance(IDLE + 1)
    assert not await is_signed_in(client)
    assert len(site.state.sessions) == 0, "the keys went with the session"

    await sign_in(client, app, first)
    busy = 0
    while busy + 14 * 60 < LIFETIME:
        clock.advance(14 * 60)
        busy += 14 * 60
        assert await is_signed_in(client), busy
    clock.advance(LIFETIME - busy + 1)
    assert not await is_signed_in(client), "however busy, 8 hours is the end"
    assert len(site.state.sessions) == 0

    # The step between password and code has five minutes.
    assert (await password_step(client, first.name, first.password)).status == 303
    clock.advance(301)
    response = await code_step(client, first.code())
    assert response.status == 303
    assert response.headers["Location"] == "/login"


async def test_logout_and_a_restart_end_sessions_and_drop_the_keys(
    site: Site, app: App, first: Member
) -> None:
    client = await site.client()
    await sign_in(client, app, first)
    replaced = session_cookie(client)
    await sign_in(client, app, first)
    cookie = session_cookie(client)
    assert cookie != replaced
    assert len(site.state.sessions) == 1, "signing in again ends the browser's old session"
    before = await audit_seq(app)
    await log_out(client)
    assert await actions(app, before) == [("amina", "logout")]
    assert len(site.state.sessions) == 0, "the session and its vault are gone"
    assert not await is_signed_in(client)
    thief = await site.client("127.0.0.3")
    assert await replay(thief, cookie) == 303, "the old cookie opens nothing"
    assert await replay(thief, replaced) == 303
    assert await replay(thief, cookie, "/keys") == 303

    # A restart: a new application over the same database knows no session.
    await sign_in(client, app, first)
    cookie = session_cookie(client)
    halfway = await site.client("127.0.0.2")
    assert (await password_step(halfway, first.name, first.password)).status == 303
    pending_cookie = session_cookie(halfway)

    restarted = Site(app)
    try:
        browser = await restarted.client()
        assert await replay(browser, cookie) == 303
        assert await replay(browser, cookie, "/accounts") == 303
        response = await browser.get(
            "/login/code",
            headers={"Cookie": f"{COOKIE}={pending_cookie}"},
            allow_redirects=False,
        )
        assert response.status == 303
        assert response.headers["Location"] == "/login"
        assert len(restarted.state.sessions) == 0
    finally:
        await restarted.close()


async def test_a_password_change_needs_the_current_one_and_rewraps_the_key(
    site: Site, app: App, first: Member, clock: FakeClock
) -> None:
    report = await make_report(app, [(TEXT_QUESTION, [{"text": "a night raid"}])])
    before_keys = raw_keys(await keyring_of(app, first.name, first.password))
    client, elsewhere = await site.client(), await site.client("127.0.0.2")
    await sign_in(client, app, first)
    await sign_in(elsewhere, app, first)
    before = await audit_seq(app)

    async def change(current: str, new: str, repeat: str | None = None) -> tuple[int, str]:
        page = await client.get("/account/password")
        response = await client.post(
            "/account/password",
            data={
                "csrf": csrf_of(await page.text()),
                "current": current,
                "new": new,
                "repeat": new if repeat is None else repeat,
            },
        )
        return response.status, await response.text()

    status, page = await change("wrong current password 77", NEW_PASSWORD)
    assert status == 400
    assert text_of_error(page) == "The current password is wrong."
    clock.advance(1)  # a wrong current password counts as a failed sign-in
    status, page = await change(first.password, NEW_PASSWORD, NEW_PASSWORD + "x")
    assert status == 400
    assert text_of_error(page) == "The two new passwords differ."
    status, page = await change(first.password, "amina2024")
    assert status == 400
    assert "too weak" in text_of_error(page)
    assert raw_keys(await keyring_of(app, first.name, first.password)) == before_keys
    assert ("amina", "staff.password-change") not in await actions(app, before)

    status, page = await change(first.password, NEW_PASSWORD)
    assert status == 200, page
    assert "Your password is changed." in page
    assert raw_keys(await keyring_of(app, first.name, NEW_PASSWORD)) == before_keys
    with pytest.raises(ServiceError):
        await keyring_of(app, first.name, first.password)
    assert ("amina", "staff.password-change") in await actions(app, before)
    assert await is_signed_in(client), "the session that changed it goes on"
    assert not await is_signed_in(elsewhere), "every other session of the member ends"

    await log_out(client)
    assert (await password_step(client, first.name, first.password)).status == 401
    clock.advance(2)  # the second failure for this name, after the wrong current password
    renewed = Member(first.name, NEW_PASSWORD, first.totp_secret, first.roles)
    await sign_in(client, app, renewed)
    shown = await client.get(f"/reports/{report.hex()}")
    assert "a night raid" in await shown.text(), "the new password unlocks the keys"


async def test_keys_that_do_not_open_are_told_and_audited(
    site: Site, app: App, first: Member
) -> None:
    """A grant altered in the database: the member signs in without keys, sees why, and
    the failure is in the audit log (not swallowed)."""
    report_id = await make_report(app, [(TEXT_QUESTION, [{"text": "a sealed account"}])])
    async with app.sessions() as session, session.begin():
        sealed = await session.scalar(select(OrgKeyGrant.sealed))
        assert sealed is not None
        damaged = bytes(sealed[:-1]) + bytes([sealed[-1] ^ 1])
        await session.execute(update(OrgKeyGrant).values(sealed=SealedGrant(damaged)))
    client = await site.client()
    before = await audit_seq(app)
    await sign_in(client, app, first)
    inbox = await (await client.get("/")).text()
    assert "Your keys could not be opened at sign-in" in inbox
    page = await (await client.get(f"/reports/{report_id.hex()}")).text()
    assert "a sealed account" not in page
    assert ("amina", "keys.unlock-failed") in await actions(app, before)
    assert ("amina", "keys.unlock") not in await actions(app, before)

"""The Keys page: the inventory, and revoke, rotate, re-wrap (a background task of the
admin process, resumable after a restart) and retire, each asking for the password again
(a wrong one changes nothing) and each audited; nothing that needs keys is offered to a
key-holder who holds none in this session, and nothing of it to anyone else."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import re

import pytest
from sqlalchemy import update

from admin import rewrap
from intake_bot.bootstrap import App
from intake_bot.crypto import SealedDataKey, Secret, fingerprint
from intake_bot.services import keyring
from intake_bot.storage import keys as key_repo
from intake_bot.storage.models import KeyJobKind, ReportKey, Role

from .harness import TEXT_QUESTION, Member, add_member, csrf_of, make_report
from .support import (
    Client,
    FakeClock,
    Site,
    actions,
    audit_log,
    audit_seq,
    is_signed_in,
    sign_in,
    snapshot,
    text_of_error,
)

WRONG = "not my password at all 5521"
KEY_FORMS = ("/keys/revoke", "/keys/rotate", "/keys/rewrap", "/keys/retire")


@pytest.fixture
async def amina(site: Site, app: App, first: Member) -> Client:
    client = await site.client()
    await sign_in(client, app, first)
    return client


async def keyholder(app: App, first: Member, name: str) -> Member:
    """An enrolled key-holder holding amina's keys."""
    member = await add_member(app, name, [Role.KEYHOLDER])
    assert member.fingerprint is not None
    await keyring.grant_keys(
        app, first.name, Secret(first.password.encode()), name, member.fingerprint
    )
    return member


async def post_form(client: Client, action: str, fields: list[tuple[str, str]]) -> tuple[int, str]:
    """POST a form of the Keys page (its CSRF token); status and page text (unescaped)."""
    form_page = await client.get("/keys")
    response = await client.post(action, data=[("csrf", csrf_of(await form_page.text())), *fields])
    return response.status, html.unescape(await response.text())


async def keys_page(client: Client) -> str:
    response = await client.get("/keys")
    assert response.status == 200, response.status
    return html.unescape(await response.text())


def without_audit(tables: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: rows for name, rows in tables.items() if name not in ("audit_log", "audit_head")}


async def current_key(app: App) -> bytes:
    async with app.sessions() as session:
        found = await key_repo.current_key_id(session)
    assert found is not None
    return found


def row_of(page: str, key: bytes) -> str:
    """The inventory row of one key (its cells, tags removed)."""
    found = re.search(
        rf"<tr class=\"key-\w+\"><td><code>{fingerprint(key)}</code>.*?</tr>", page, re.S
    )
    assert found is not None, fingerprint(key)
    return "|".join(
        cell.strip() for cell in re.sub(r"<[^>]+>", "|", found.group(0)).split("|") if cell.strip()
    )


async def reads(client: Client, report: bytes, text: str) -> bool:
    response = await client.get(f"/reports/{report.hex()}")
    assert response.status == 200
    return text in await response.text()


async def test_the_inventory_shows_every_key_and_who_holds_it(
    site: Site, amina: Client, app: App, first: Member
) -> None:
    await make_report(app, [(TEXT_QUESTION, [{"text": "a search without a warrant"}])])
    await make_report(app)
    await keyholder(app, first, "kamala")
    key = await current_key(app)

    page = await keys_page(amina)
    assert site.state.pinned.fingerprint in page
    cells = [c for c in row_of(page, key).split("|") if c]
    assert cells == [
        fingerprint(key),
        "current",
        dt.datetime.now(dt.UTC).date().isoformat(),
        "—",
        "2",
        "amina, kamala",
    ]
    for action in ("/keys/grant", "/keys/revoke", "/keys/rotate"):
        assert f'action="{action}"' in page
    assert "<option>kamala</option>" in page
    assert 'action="/keys/rewrap"' not in page, "nothing to re-wrap"
    assert "There is no previous key." in page
    assert "Re-wrapping:" not in page


async def test_nothing_that_needs_keys_without_keys_in_the_session(
    site: Site, amina: Client, app: App, first: Member, clock: FakeClock
) -> None:
    report = await make_report(app, [(TEXT_QUESTION, [{"text": "a night raid"}])])
    await keyholder(app, first, "farid")
    kamala = await add_member(app, "kamala", [Role.KEYHOLDER])  # enrolled, granted nothing
    browser = await site.client("127.0.0.2")
    await sign_in(browser, app, kamala)
    page = await keys_page(browser)
    assert "You hold no keys in this session" in page
    for action in ("/keys/grant", *KEY_FORMS):
        assert f'action="{action}"' not in page, action
    assert not await reads(browser, report, "a night raid")

    before = without_audit(await snapshot(app))
    for action, fields in (
        ("/keys/revoke", [("member", "farid")]),
        ("/keys/rotate", []),
        ("/keys/rewrap", []),
        ("/keys/retire", [("key", (await current_key(app)).hex())]),
    ):
        status, text = await post_form(browser, action, [*fields, ("password", kamala.password)])
        assert status == 403, action
        assert text_of_error(text) == "You hold no keys in this session: this needs a key-holder."
        clock.advance(60)
    assert without_audit(await snapshot(app)) == before
    assert site.state.rewrap is None


async def test_revoking_ends_the_members_access_and_offers_a_rotation(
    site: Site, amina: Client, app: App, first: Member, clock: FakeClock
) -> None:
    report = await make_report(app, [(TEXT_QUESTION, [{"text": "a planted packet"}])])
    kamala = await keyholder(app, first, "kamala")
    browser = await site.client("127.0.0.2")
    await sign_in(browser, app, kamala)
    assert await reads(browser, report, "a planted packet")

    before = without_audit(await snapshot(app))
    status, page = await post_form(
        amina, "/keys/revoke", [("member", "kamala"), ("password", WRONG)]
    )
    assert status == 403
    assert text_of_error(page) == "Your password is wrong."
    status, page = await post_form(
        amina, "/keys/revoke", [("member", "kamala"), ("password", first.password)]
    )
    assert status == 429, "a wrong password slows the next try down"
    assert without_audit(await snapshot(app)) == before, "nothing but the audit log changed"
    assert (await audit_log(app))[-1].action == "reauth.failed"
    assert await reads(browser, report, "a planted packet")
    clock.advance(1)

    for name in ("amina", "nobody", "rufat"):
        status, page = await post_form(
            amina, "/keys/revoke", [("member", name), ("password", first.password)]
        )
        assert status == 400, name
        assert text_of_error(page) == f"{name} holds no keys you can revoke."
    assert without_audit(await snapshot(app)) == before

    seq = await audit_seq(app)
    status, page = await post_form(
        amina, "/keys/revoke", [("member", "kamala"), ("password", first.password)]
    )
    assert status == 200, page
    assert "The keys of kamala are revoked" in page
    assert "may have kept copies of keys" in page
    # The rotation is offered first, above everything else.
    rotate_at = page.index('action="/keys/rotate"')
    assert rotate_at < page.index('<table class="keys">')
    assert '<section aria-labelledby="rotate-title" class="warning">' in page
    assert "Full re-encryption with new data keys is not available yet." in page
    assert await actions(app, seq) == [("amina", "reauth.ok"), ("amina", "keys.revoke")]
    assert (await audit_log(app))[-1].target == "kamala"

    assert not await is_signed_in(browser), "her session held the keys: it is over"
    await sign_in(browser, app, kamala)
    assert not await reads(browser, report, "a planted packet")
    assert "You hold no keys in this session" in await keys_page(browser)
    assert "amina, kamala" not in await keys_page(amina)


async def test_only_holder_cannot_be_revoked(
    site: Site, amina: Client, app: App, first: Member
) -> None:
    await keyholder(app, first, "kamala")
    seq = await audit_seq(app)
    # amina gives up her own grants directly in the database: kamala is the only holder.
    async with app.sessions() as session, session.begin():
        await key_repo.revoke(session, (await member_id(app, "amina")))
    status, page = await post_form(
        amina, "/keys/revoke", [("member", "kamala"), ("password", first.password)]
    )
    assert status == 400
    assert "kamala is the only holder of a key" in text_of_error(page)
    assert [a for _, a in await actions(app, seq)] == ["reauth.ok"]


async def member_id(app: App, name: str) -> bytes:
    from intake_bot.storage import staff as staff_repo  # noqa: PLC0415

    async with app.sessions() as session:
        found = await staff_repo.by_name(session, name)
    assert found is not None
    return found.id


async def test_rotate_rewrap_in_the_background_then_retire(
    site: Site, amina: Client, app: App, first: Member, clock: FakeClock
) -> None:
    texts = [f"statement number {i}" for i in range(3)]
    reports = [await make_report(app, [(TEXT_QUESTION, [{"text": t}])]) for t in texts]
    await keyholder(app, first, "kamala")
    old = await current_key(app)
    site.state.rewrap_batch = 1

    before = without_audit(await snapshot(app))
    status, page = await post_form(amina, "/keys/rotate", [("password", WRONG)])
    assert status == 403
    assert text_of_error(page) == "Your password is wrong."
    assert without_audit(await snapshot(app)) == before
    clock.advance(60)

    seq = await audit_seq(app)
    status, page = await post_form(amina, "/keys/rotate", [("password", first.password)])
    assert status == 200, page
    new = await current_key(app)
    assert new != old
    assert f"The new key {fingerprint(new)} is current" in page
    assert "3 reports still use the previous key" in page
    assert "Re-wrapping: 0 of 3 reports" in page
    assert 'action="/keys/rewrap"' in page
    assert "Start the re-wrap" in page
    assert await actions(app, seq) == [("amina", "reauth.ok"), ("amina", "keys.rotate")]
    cells = [c for c in row_of(page, old).split("|") if c]
    assert cells[1:] == ["previous", cells[2], "—", "3", "amina, kamala"]
    cells = [c for c in row_of(page, new).split("|") if c]
    assert cells[1] == "current"
    assert cells[3:] == ["—", "0", "amina, kamala"]
    # The session holds the new key at once: a report sealed to it opens.
    after = await make_report(app, [(TEXT_QUESTION, [{"text": "after the rotation"}])])
    assert await reads(amina, after, "after the rotation")

    # Retire: refused while reports depend on the key, and for the current key.
    status, page = await post_form(
        amina, "/keys/retire", [("key", old.hex()), ("password", first.password)]
    )
    assert status == 400
    assert text_of_error(page) == (
        f"Key {fingerprint(old)} cannot be retired: 3 reports still depend on it. "
        "Finish the re-wrap first."
    )
    status, page = await post_form(
        amina, "/keys/retire", [("key", new.hex()), ("password", first.password)]
    )
    assert status == 400
    assert text_of_error(page) == "The current key cannot be retired: rotate first."
    assert not [e for e in await audit_log(app) if e.action == "keys.retire"]

    # Re-wrap: a wrong password starts nothing.
    status, page = await post_form(amina, "/keys/rewrap", [("password", WRONG)])
    assert status == 403
    assert site.state.rewrap is None
    clock.advance(60)

    seq = await audit_seq(app)
    form_page = await amina.get("/keys")
    response = await amina.post(
        "/keys/rewrap",
        data={"csrf": csrf_of(await form_page.text()), "password": first.password},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/keys"
    run = site.state.rewrap
    assert run is not None
    assert run.task is not None
    assert run.actor == "amina"
    # One at a time per process.
    status, page = await post_form(amina, "/keys/rewrap", [("password", first.password)])
    assert status in (409, 400)  # running, or already finished and nothing left
    await run.task
    assert run.finished
    assert run.error is None
    assert (run.moved, run.left, run.done) == (3, 0, 3)

    page = await keys_page(amina)
    assert "Re-wrapping:" not in page
    assert "The re-wrap is finished: 3 reports were moved to the new key." in page
    assert 'action="/keys/rewrap"' not in page
    assert [c for c in row_of(page, old).split("|") if c][4] == "0"
    assert [a for _, a in await actions(app, seq)][:3] == [
        "reauth.ok",
        "keys.rewrap.start",
        "keys.rewrap",
    ]
    for report, text in zip(reports, texts, strict=True):
        assert await reads(amina, report, text)

    seq = await audit_seq(app)
    status, page = await post_form(amina, "/keys/retire", [("key", old.hex()), ("password", WRONG)])
    assert status == 403
    clock.advance(60)
    status, page = await post_form(
        amina, "/keys/retire", [("key", old.hex()), ("password", first.password)]
    )
    assert status == 200, page
    assert f"Key {fingerprint(old)} is retired" in page
    today = dt.datetime.now(dt.UTC).date().isoformat()
    cells = [c for c in row_of(page, old).split("|") if c]
    assert cells[1:] == ["retired", today, f"{today} by amina", "0", "—"]
    assert "There is no previous key." in page
    assert await actions(app, seq) == [
        ("amina", "reauth.failed"),
        ("amina", "reauth.ok"),
        ("amina", "keys.retire"),
    ]
    status, page = await post_form(
        amina, "/keys/retire", [("key", old.hex()), ("password", first.password)]
    )
    assert status == 400
    assert text_of_error(page) == f"Key {fingerprint(old)} is retired already."
    for report, text in zip(reports, texts, strict=True):
        assert await reads(amina, report, text)


async def test_a_restart_mid_way_leaves_the_job_open_and_the_button_resumes_it(
    app: App, first: Member, clock: FakeClock
) -> None:
    reports = [
        await make_report(app, [(TEXT_QUESTION, [{"text": f"account {i}"}])]) for i in range(8)
    ]
    site = Site(app, clock)
    try:
        amina = await site.client()
        await sign_in(amina, app, first)
        status, page = await post_form(amina, "/keys/rotate", [("password", first.password)])
        assert status == 200, page
        site.state.rewrap_batch = 1
        status, page = await post_form(amina, "/keys/rewrap", [("password", first.password)])
        assert status == 200, page
        run = site.state.rewrap
        assert run is not None
        assert run.task is not None
        for _ in range(100_000):  # until two batches are committed
            if run.done >= 2 or run.task.done():
                break
            await asyncio.sleep(0)
        assert not run.task.done(), "still running when the process stops"
    finally:
        await site.close()  # the application's cleanup stops the task between batches
    assert run.task.done()
    assert run.stopped
    assert not run.finished

    async with app.sessions() as session:
        [job] = await key_repo.open_jobs(session, KeyJobKind.REWRAP)
        left = await key_repo.depending_only_on(session, job.from_key_id)
    assert 2 <= job.done < 8
    assert job.done + left == 8

    clock.advance(60)
    restarted = Site(app, clock)
    try:
        amina = await restarted.client()
        await sign_in(amina, app, first)
        page = await keys_page(amina)
        assert f"Re-wrapping: {job.done} of 8 reports" in page
        assert "Resume the re-wrap" in page
        status, page = await post_form(amina, "/keys/rewrap", [("password", first.password)])
        assert status == 200
        run = restarted.state.rewrap
        assert run is not None
        assert run.task is not None
        await run.task
        assert run.finished
        assert run.error is None
        assert run.moved == 8 - job.done
        page = await keys_page(amina)
        assert "Re-wrapping:" not in page
        for i, report in enumerate(reports):
            assert await reads(amina, report, f"account {i}")
    finally:
        await restarted.close()
    async with app.sessions() as session:
        assert await key_repo.open_jobs(session, KeyJobKind.REWRAP) == []


async def test_a_failing_re_wrap_is_recorded_and_shown(
    site: Site, amina: Client, app: App, first: Member
) -> None:
    report = await make_report(app, [(TEXT_QUESTION, [{"text": "a confiscated phone"}])])
    old = await current_key(app)
    status, _ = await post_form(amina, "/keys/rotate", [("password", first.password)])
    assert status == 200
    async with app.sessions() as session, session.begin():
        await session.execute(
            update(ReportKey)
            .where(ReportKey.report_id == report, ReportKey.org_key_id == old)
            .values(sealed=SealedDataKey(b"\x00" * 80))
        )
    status, _ = await post_form(amina, "/keys/rewrap", [("password", first.password)])
    assert status == 200
    run = site.state.rewrap
    assert run is not None
    assert run.task is not None
    await run.task
    assert run.error is not None
    assert not run.finished
    page = await keys_page(amina)
    assert "The re-wrap stopped: a report key or the new key did not open or verify." in page
    assert "Re-wrapping: 0 of 1 reports" in page
    assert "Resume the re-wrap" in page
    failed = [e for e in await audit_log(app) if e.action == "keys.rewrap.failed"]
    assert [(e.actor, e.details) for e in failed] == [("amina", {"error": "crypto", "done": 0})]


async def test_only_key_holders_reach_the_keys_page(
    site: Site, app: App, first: Member, clock: FakeClock
) -> None:
    adil = await add_member(app, "adil", [Role.ADMIN])
    rufat = await add_member(app, "rufat", [Role.REVIEWER])
    for n, member in enumerate((adil, rufat), start=2):
        browser = await site.client(f"127.0.0.{n}")
        await sign_in(browser, app, member)
        page_token = csrf_of(await (await browser.get("/")).text())
        response = await browser.get("/keys")
        assert response.status == 403
        before = await snapshot(app)
        for action in KEY_FORMS:
            response = await browser.post(
                action, data={"csrf": page_token, "password": member.password, "key": "00"}
            )
            assert response.status == 403, action
            assert "Your role does not allow this." in await response.text()
        assert await snapshot(app) == before


async def test_stopping_cancels_a_run_that_does_not_reach_a_batch_boundary() -> None:
    run = rewrap.RewrapRun("amina")
    run.task = asyncio.create_task(asyncio.sleep(3600))
    await rewrap.stop(run, grace=0.01)
    assert run.stopping
    assert run.task.cancelled()
    await rewrap.stop(None)


async def test_rotating_twice_before_the_re_wrap_then_one_run_moves_everything(
    site: Site, amina: Client, app: App, first: Member
) -> None:
    reports = [await make_report(app, [(TEXT_QUESTION, [{"text": f"old {i}"}])]) for i in range(2)]
    first_key = await current_key(app)
    status, page = await post_form(amina, "/keys/rotate", [("password", first.password)])
    assert status == 200, page
    second_key = await current_key(app)
    # A revoke right after: the rotation is offered again at once, with a re-wrap open.
    status, page = await post_form(amina, "/keys/rotate", [("password", first.password)])
    assert status == 200, page
    third_key = await current_key(app)
    assert len({first_key, second_key, third_key}) == 3
    assert page.count("Re-wrapping: 0 of ") == 2

    status, page = await post_form(
        amina, "/keys/retire", [("key", second_key.hex()), ("password", first.password)]
    )
    assert status == 400
    assert text_of_error(page) == (
        f"Key {fingerprint(second_key)} cannot be retired yet: finish the open re-wrap first."
    )

    status, page = await post_form(amina, "/keys/rewrap", [("password", first.password)])
    assert status == 200
    run = site.state.rewrap
    assert run is not None
    assert run.task is not None
    await run.task
    assert run.finished
    page = await keys_page(amina)
    assert "Re-wrapping:" not in page
    for key in (first_key, second_key):
        status, page = await post_form(
            amina, "/keys/retire", [("key", key.hex()), ("password", first.password)]
        )
        assert status == 200, page
    assert [c for c in row_of(page, third_key).split("|")][1] == "current"
    for i, report in enumerate(reports):
        assert await reads(amina, report, f"old {i}")

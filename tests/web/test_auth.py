"""Logging in: name and password, then the second factor; each TOTP code once; failed
attempts slowed down exponentially per account and per client (and the second factor on
its own); an unknown name answered exactly like a wrong password, and never stored or
logged (people type passwords into the name field); every outcome audited."""

from __future__ import annotations

import dataclasses
import io
import logging
import secrets
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from aiohttp import ClientResponse
from canary import Canary, ScanResult, preserved_process_state, scan_text

from intake_bot.bootstrap import App
from intake_bot.logging import configure_logging
from intake_bot.services import accounts
from intake_bot.storage.models import Role

from .harness import Member, add_member, forget_used_codes
from .support import (
    FakeClock,
    Site,
    actions,
    audit_log,
    audit_seq,
    code_at_step,
    code_step,
    current_step,
    form_token,
    is_signed_in,
    log_out,
    password_step,
    scan_database,
    sign_in,
    text_of_error,
)

WRONG = "not the password at all 4411"


def retry_after(response: ClientResponse) -> int:
    assert response.status == 429, response.status
    return int(response.headers["Retry-After"])


async def test_password_then_a_code_each_code_once(
    site: Site, app: App, first: Member, clock: FakeClock
) -> None:
    bob = await add_member(app, "bob", [Role.REVIEWER])
    client = await site.client()
    before = await audit_seq(app)

    response = await password_step(client, "bob", bob.password)
    assert response.status == 303
    assert response.headers["Location"] == "/login/code"
    assert not await is_signed_in(client), "the password alone opens nothing"
    assert (await client.get("/login/code")).status == 200

    await forget_used_codes(app, "bob")
    step = current_step(bob)
    used = code_at_step(bob, step + 1)
    accepted = await code_step(client, used)
    assert accepted.status == 303
    assert accepted.headers["Location"] == "/"
    assert await is_signed_in(client)
    await log_out(client)
    assert not await is_signed_in(client)

    assert (await password_step(client, "bob", bob.password)).status == 303
    again = await code_step(client, used)
    assert again.status == 401, "a code is accepted once"
    assert "used already" in text_of_error(await again.text())
    clock.advance(1)
    older = await code_step(client, code_at_step(bob, step))
    assert older.status == 401, "a code older than the last one used is refused"
    clock.advance(2)
    assert (await code_step(client, "12345")).status == 401
    clock.advance(4)
    assert (await code_step(client, bob.recovery_codes[0])).status == 303
    assert await is_signed_in(client)

    assert await actions(app, before) == [
        ("bob", "login.password"),
        ("bob", "login.ok"),
        ("bob", "logout"),
        ("bob", "login.password"),
        ("bob", "login.failed-second-factor"),
        ("bob", "login.failed-second-factor"),
        ("bob", "login.failed-second-factor"),
        ("bob", "login.ok"),
    ]
    oks = [e.details for e in await audit_log(app) if e.action == "login.ok" and e.seq > before]
    assert oks == [{"by": "totp"}, {"by": "recovery-code"}]


async def test_failed_passwords_slow_down_per_account_and_per_client(
    site: Site, app: App, first: Member, clock: FakeClock
) -> None:
    bob = await add_member(app, "bob", [Role.REVIEWER])
    carol = await add_member(app, "carol", [Role.REVIEWER])
    a, b, c = [await site.client(f"127.0.0.{n}") for n in (1, 2, 3)]

    assert (await password_step(a, "bob", WRONG)).status == 401
    before = await audit_seq(app)
    locked = await password_step(a, "bob", bob.password)
    assert retry_after(locked) == 1, "even the right password waits"
    assert "Too many attempts" in text_of_error(await locked.text())
    assert retry_after(await password_step(b, "bob", bob.password)) == 1, "per account"
    assert retry_after(await password_step(a, "carol", carol.password)) == 1, "per client"
    assert await audit_seq(app) == before, "a locked attempt is not even checked"
    assert (await password_step(b, "carol", WRONG)).status == 401, "others are not held up"
    clock.advance(1)  # carol's and b's first failure have run out too

    delays = []
    for _ in range(4):
        assert (await password_step(a, "bob", WRONG)).status == 401
        delays.append(retry_after(await password_step(c, "bob", bob.password)))
        clock.advance(delays[-1])
    assert delays == [2, 4, 8, 16], "each failure doubles the wait"

    assert (await password_step(a, "bob", WRONG)).status == 401
    clock.advance(20)
    assert retry_after(await password_step(c, "bob", bob.password)) == 12
    clock.advance(11.5)
    assert retry_after(await password_step(c, "bob", bob.password)) == 1, "rounded up"
    clock.advance(0.5)
    assert (await password_step(c, "bob", bob.password)).status == 303, "after waiting it works"
    assert (await password_step(b, "bob", WRONG)).status == 401
    assert retry_after(await password_step(c, "bob", bob.password)) == 1, (
        "a success starts the account's count again"
    )

    # One account however its name is spelled (NFC, NFD, spaces around it): the slow-down
    # cannot be dodged by spelling the name another way.
    clock.advance(60)
    sahin = await add_member(app, "Şahin", [Role.REVIEWER])
    decomposed = unicodedata.normalize("NFD", "Şahin")
    assert decomposed != "Şahin"
    assert (await password_step(a, decomposed, sahin.password)).status == 303, "NFD logs in"
    assert (await password_step(a, "Şahin", WRONG)).status == 401
    assert retry_after(await password_step(b, decomposed, sahin.password)) == 1
    assert retry_after(await password_step(c, f"  {decomposed} ", sahin.password)) == 1


async def test_the_second_factor_is_slowed_down_on_its_own(
    site: Site, app: App, first: Member, clock: FakeClock
) -> None:
    bob = await add_member(app, "bob", [Role.REVIEWER])
    a, b = await site.client("127.0.0.1"), await site.client("127.0.0.2")
    assert (await password_step(a, "bob", bob.password)).status == 303
    assert (await password_step(b, "bob", bob.password)).status == 303
    await forget_used_codes(app, "bob")

    delays = []
    for _ in range(3):
        assert (await code_step(a, "000000")).status == 401
        delays.append(retry_after(await code_step(a, bob.code())))
        assert retry_after(await code_step(b, bob.code())) == delays[-1], "per account"
        clock.advance(delays[-1])
    assert delays == [1, 2, 4]
    assert (await code_step(a, "000000")).status == 401

    # The password step has a slow-down of its own: a locked second factor does not
    # hold it up...
    assert (await password_step(b, "bob", bob.password)).status == 303
    assert retry_after(await code_step(b, bob.code())) == 8
    clock.advance(8)
    # ... and a client locked out of the password step still has its code checked.
    assert (await password_step(a, "carol-unknown", WRONG)).status == 401
    assert retry_after(await password_step(a, "bob", bob.password)) == 1
    assert (await code_step(a, bob.code())).status == 303
    assert await is_signed_in(a)


async def test_an_unknown_name_looks_exactly_like_a_wrong_password(
    site: Site, app: App, first: Member, clock: FakeClock
) -> None:
    await add_member(app, "bob", [Role.REVIEWER])
    disabled = await add_member(app, "dilara", [Role.REVIEWER])
    await accounts.disable(app, disabled.name, actor="console")
    await accounts.add_member(app, "pending", [Role.REVIEWER])
    client = await site.client()
    token = await form_token(client)
    before = await audit_seq(app)
    answers = []
    for name, password in [
        ("bob", WRONG),
        ("nobody", WRONG),
        ("amina", WRONG),
        ("dilara", disabled.password),
        ("pending", WRONG),
        ("not a name at all", WRONG),
        ("", ""),
    ]:
        response = await password_step(client, name, password, csrf=token)
        headers = {k: v for k, v in response.headers.items() if k not in ("Date",)}
        answers.append((name, response.status, headers, await response.read()))
        clock.advance(3600)
    reference = answers[0]
    assert reference[1] == 401
    for name, status, headers, body in answers[1:]:
        assert status == reference[1], name
        assert headers == reference[2], name
        assert body == reference[3], name
    assert await actions(app, before) == [
        ("bob", "login.failed-password"),
        ("-", "login.failed-password"),
        ("amina", "login.failed-password"),
        ("-", "login.failed-password"),
        ("-", "login.failed-password"),
        ("-", "login.failed-password"),
        ("-", "login.failed-password"),
    ]


class RawRecords(logging.Handler):
    """Every stdlib record as it was made, before any formatter or redaction."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(repr(vars(record)))


@pytest.fixture
def logs() -> Iterator[tuple[RawRecords, list[structlog.typing.EventDict], io.StringIO]]:
    """The project's logging at DEBUG, a raw handler on the root logger, and structlog's
    events before its processors."""
    with preserved_process_state():
        stream = io.StringIO()
        configure_logging("json", "DEBUG", stream=stream)
        raw = RawRecords()
        logging.getLogger().addHandler(raw)
        with structlog.testing.capture_logs() as events:
            yield raw, events, stream


async def test_unknown_names_are_never_stored_nor_logged(
    site: Site,
    app: App,
    first: Member,
    clock: FakeClock,
    logs: tuple[RawRecords, list[structlog.typing.EventDict], io.StringIO],
    *,
    database_url: str,
    tmp_path: Path,
) -> None:
    tag = secrets.token_hex(5)
    typed = {
        "a password in the name field": f"Qaranlıq gecə {tag} parol",
        "a plausible name": f"Sirr-{tag}",
        "a password": f"hunter2-{tag}-sözüm",
    }
    canaries = [Canary(label, value) for label, value in typed.items()]
    client = await site.client()
    for name in (typed["a password in the name field"], typed["a plausible name"]):
        response = await password_step(client, name, typed["a password"])
        assert response.status == 401
        clock.advance(3600)
    response = await password_step(client, "amina", typed["a password"])
    assert response.status == 401

    raw, events, formatted = logs
    control = f"control-{tag}"
    structlog.get_logger("test").warning("control", marker=control)
    logging.getLogger("test").warning("control %s", control)
    assert any(control in repr(event) for event in events), "structlog capture works"
    assert any(control in line for line in raw.seen), "stdlib capture works"
    assert control in formatted.getvalue(), "the project's own output is captured"

    found = ScanResult()
    found.extend(scan_text("\n".join(raw.seen), canaries, "stdlib log records"))
    found.extend(scan_text("\n".join(map(repr, events)), canaries, "structlog events"))
    found.extend(scan_text(formatted.getvalue(), canaries, "formatted log output"))
    found.extend(await scan_database(app, database_url, tmp_path, canaries))
    found.assert_clean()
    assert await actions(app, await audit_seq(app) - 3) == [
        ("-", "login.failed-password"),
        ("-", "login.failed-password"),
        ("amina", "login.failed-password"),
    ]
    clock.advance(3600)
    await sign_in(client, app, first)


@pytest.mark.parametrize("behind_proxy", [True, False])
async def test_behind_a_proxy_the_forwarded_client_counts(
    app: App, first: Member, clock: FakeClock, behind_proxy: bool
) -> None:
    """Behind a TLS proxy every request comes from the loopback: with the setting, the
    address the proxy appended counts, so one adversary's failures hold up only them."""
    proxied = dataclasses.replace(
        app, settings=dataclasses.replace(app.settings, admin_behind_proxy=behind_proxy)
    )
    bob = await add_member(app, "bob", [Role.REVIEWER])
    site = Site(proxied, clock)
    try:
        proxy = await site.client("127.0.0.1")

        async def attempt(name: str, password: str, forwarded: str) -> int:
            token = await form_token(proxy)
            response = await proxy.post(
                "/login",
                data={"name": name, "password": password, "csrf": token},
                headers={"X-Forwarded-For": forwarded},
                allow_redirects=False,
            )
            return response.status

        assert await attempt("carol", WRONG, "10.9.9.9, 203.0.113.5") == 401
        # Another real client, the same proxy: held up only without the setting.
        expected = 303 if behind_proxy else 429
        assert await attempt("bob", bob.password, "203.0.113.5, 198.51.100.7") == expected
        clock.advance(1)
        assert await attempt("carol", WRONG, "198.51.100.9, 203.0.113.5") == 401
        # The adversary's own address (the last hop) is held up either way, whatever
        # they put in front of it.
        assert await attempt("bob", bob.password, "198.51.100.7, 203.0.113.5") == 429
    finally:
        await site.close()

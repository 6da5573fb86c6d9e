"""CSRF: every POST route of :data:`admin.routes.ROUTES` refuses a form without the
session's token, or with a token of another session (another browser, another session of
the same member, the pre-login token of the same browser), with 403 and no change at all;
the same forms with the right token do what they say."""

from __future__ import annotations

import re

import pyotp

from admin.permissions import Permission
from admin.routes import ROUTES, Route
from admin.state import PRE_COOKIE
from intake_bot.bootstrap import App
from intake_bot.services import accounts
from intake_bot.storage import keys as key_repo
from intake_bot.storage.models import Role

from .harness import (
    FILES_QUESTION,
    TEXT_QUESTION,
    Member,
    add_member,
    forget_used_codes,
    make_report,
)
from .support import (
    Client,
    FakeClock,
    Site,
    form_token,
    is_signed_in,
    password_step,
    sign_in,
    snapshot,
)

POST_ROUTES = [route for route in ROUTES if route.method == "POST"]
NEW_PASSWORD = "marble otter kiln saffron 2031"
ENROL_PASSWORD = "juniper quarry velvet oboe 1977"
REFUSED = "This form has expired"

Fields = list[tuple[str, str]]


def pre_cookie(client: Client) -> str:
    for cookie in client.session.cookie_jar:
        if cookie.key == PRE_COOKIE:
            return cookie.value
    raise AssertionError("no pre-login cookie")


def path_of(route: Route, report: str) -> str:
    return route.path.replace("{report:[0-9a-f]{32}}", report)


async def test_every_post_route_refuses_a_missing_or_foreign_token(
    site: Site, app: App, first: Member, clock: FakeClock
) -> None:
    report = (
        await make_report(
            app,
            [(TEXT_QUESTION, [{"text": "an arrest at dawn"}])],
            files=[("photo.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"p" * 300)],
        )
    ).hex()
    other = (await make_report(app, [(FILES_QUESTION, [])])).hex()
    spam = (await make_report(app)).hex()
    kamala = await add_member(app, "kamala", [Role.KEYHOLDER])
    assert kamala.fingerprint is not None
    await add_member(app, "bob", [Role.REVIEWER])
    await add_member(app, "rena", [Role.REVIEWER])
    invite = await accounts.add_member(app, "newbie", [Role.REVIEWER])
    enrolling = await site.client("127.0.0.9")
    enrol_page = await (await enrolling.get(f"/enrol/{invite.token}")).text()
    found = re.search(r"<code>([A-Z2-7 ]{16,})</code>", enrol_page)
    assert found is not None
    enrol_code = pyotp.TOTP(found.group(1).replace(" ", "")).now()
    async with app.sessions() as session:
        first_key = await key_repo.current_key_id(session)
    assert first_key is not None

    forms: dict[str, Fields] = {
        "login": [("name", first.name), ("password", first.password)],
        "second-factor": [("code", first.code())],
        "language": [("language", "az"), ("next", "/")],
        "enrol": [
            ("password", ENROL_PASSWORD),
            ("repeat", ENROL_PASSWORD),
            ("code", enrol_code),
        ],
        "logout": [],
        "password": [("current", first.password), ("new", NEW_PASSWORD), ("repeat", NEW_PASSWORD)],
        "close-spam": [("report", spam)],
        "report-status": [("status", "in_review")],
        "report-priority": [("priority", "high")],
        "report-assignee": [("assignee", "bob")],
        "report-labels": [("labels", "raid, baku")],
        "report-link": [("other", other)],
        "report-unlink": [("other", other)],
        "report-note": [("note", "spoke with the lawyer")],
        "keys-grant": [
            ("grantee", "kamala"),
            ("fingerprint", kamala.fingerprint),
            ("password", first.password),
        ],
        # Revoke kamala (granted just before), rotate, re-wrap, retire the first key.
        "keys-revoke": [("member", "kamala"), ("password", first.password)],
        "keys-rotate": [("password", first.password)],
        "keys-rewrap": [("password", first.password)],
        "keys-retire": [("key", first_key.hex()), ("password", first.password)],
        "accounts-add": [("name", "zaur"), ("role", "reviewer"), ("password", first.password)],
        "accounts-disable": [("name", "bob"), ("password", first.password)],
        "accounts-reenrol": [("name", "rena"), ("password", first.password)],
    }
    assert {route.name for route in POST_ROUTES} == set(forms), (
        "a new POST route needs its (otherwise valid) form here"
    )

    member = await site.client("127.0.0.1")
    await sign_in(member, app, first)
    own_token = await form_token(member, "/")
    member_pre_token = site.state.form_token(pre_cookie(member))
    second_session = await site.client("127.0.0.2")
    await sign_in(second_session, app, first)
    stranger = await site.client("127.0.0.3")
    someone_else = await site.client("127.0.0.4")
    pending = await site.client("127.0.0.5")
    assert (await password_step(pending, first.name, first.password)).status == 303
    other_pending = await site.client("127.0.0.6")
    assert (await password_step(other_pending, first.name, first.password)).status == 303
    tokens = {
        "other session of the same member": await form_token(second_session, "/"),
        "this browser's pre-login token": member_pre_token,
        "empty": "",
        "another browser's pre-login token": await form_token(someone_else),
        "another pending session's": await form_token(other_pending, "/login/code"),
        "forged": own_token[:-2] + ("AA" if not own_token.endswith("AA") else "BB"),
    }
    await form_token(stranger)  # it has a pre-login cookie of its own
    cookieless = await site.client("127.0.0.7")

    store = site.state.sessions
    before = await snapshot(app)
    sessions_before = {key: (s.stage, s.seen) for key, s in store._sessions.items()}
    throttles_before = [
        dict(site.state.sign_in_backoff._records),
        dict(site.state.second_factor_backoff._records),
    ]

    tried = 0
    for route in POST_ROUTES:
        path = path_of(route, report)
        if route.name == "enrol":
            path = f"/enrol/{invite.token}"
        cases: list[tuple[str, Client]] = [("signed in", member)]
        if route.permission is Permission.PUBLIC:
            cases += [
                ("logged out", stranger),
                ("pending", pending),
                ("no cookies at all", cookieless),
            ]
        for state, client in cases:
            for token_label, token in [("no token", None), *tokens.items()]:
                data = forms[route.name] + ([] if token is None else [("csrf", token)])
                response = await client.post(path, data=data, allow_redirects=False)
                text = await response.text()
                where = (route.name, state, token_label)
                assert response.status == 403, where
                assert REFUSED in text, where
                tried += 1
    assert tried > 200

    assert await snapshot(app) == before, "no refused form changed anything"
    assert {key: (s.stage, s.seen) for key, s in store._sessions.items()} != {}
    assert set(store._sessions) == set(sessions_before), "no session started or ended"
    assert [
        dict(site.state.sign_in_backoff._records),
        dict(site.state.second_factor_backoff._records),
    ] == throttles_before, "a refused form is not even a sign-in attempt"
    assert await is_signed_in(member)
    assert await is_signed_in(second_session)

    # The same forms with the right token do what they say (so the refusals above were
    # of forms that would otherwise have worked).
    await forget_used_codes(app, first.name)
    response = await pending.post(
        "/login/code",
        data=[*forms["second-factor"], ("csrf", await form_token(pending, "/login/code"))],
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/"
    last = ("language", "password", "logout")
    order = [r for r in POST_ROUTES if r.name not in last and r.permission is not Permission.PUBLIC]
    order += sorted((r for r in POST_ROUTES if r.name in last), key=lambda r: last.index(r.name))
    for route in order:
        if route.name == "keys-retire":
            run = site.state.rewrap
            assert run is not None
            assert run.task is not None
            await run.task  # the re-wrap started by the form before
            assert run.finished
        state_before = await snapshot(app)
        response = await member.post(
            path_of(route, report),
            data=[*forms[route.name], ("csrf", own_token)],
            allow_redirects=False,
        )
        assert response.status in (200, 303), (route.name, response.status, await response.text())
        assert await snapshot(app) != state_before, route.name
    assert not await is_signed_in(member)
    assert not await is_signed_in(pending), "the password change ended amina's other sessions"

    clock.advance(60)
    response = await stranger.post(
        f"/enrol/{invite.token}",
        data=[*forms["enrol"], ("csrf", await form_token(stranger, f"/enrol/{invite.token}"))],
    )
    assert response.status == 200, await response.text()
    response = await stranger.post(
        "/login",
        data=[
            ("name", first.name),
            ("password", NEW_PASSWORD),
            ("csrf", await form_token(stranger)),
        ],
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/login/code"

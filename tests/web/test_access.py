"""Authorisation: every route of :data:`admin.routes.ROUTES` for every role combination,
generated from the route table and :data:`admin.permissions.ROLE_PERMISSIONS`, with real
ids so that allowed routes really do their work; every route on the router has a
permission; a route without one is refused to everybody (fail closed)."""

from __future__ import annotations

import html
from dataclasses import dataclass

from aiohttp import web

from admin.app import create_app
from admin.permissions import Permission, permissions_of
from admin.routes import FILE, PERMISSIONS, REPORT, ROUTES, Route
from intake_bot.bootstrap import App
from intake_bot.crypto import Secret
from intake_bot.services import accounts, keyring
from intake_bot.storage import reports as report_repo
from intake_bot.storage.models import Role

from .harness import FILES_QUESTION, TEXT_QUESTION, Member, add_member, csrf_of, make_report
from .support import Client, FakeClock, Site, sign_in

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 700
CONTENT = "a statement about a beating in custody"


@dataclass
class World:
    report: str
    file: str
    other: str
    spam: str
    token: str
    members: dict[str, Member]


def url(route: Route, world: World) -> str:
    path = route.path
    path = path.replace(FILE, f"/reports/{world.report}/files/{world.file}")
    path = path.replace(REPORT, f"/reports/{world.report}")
    path = path.replace("{token}", world.token).replace("{name}", "admin.css")
    assert "{" not in path, f"a test value for every placeholder: {route.path}"
    return path


def form(route: Route, world: World, who: str | None, index: int) -> list[tuple[str, str]]:
    """A valid form for each POST route (all the checks before the handler pass)."""
    own = world.members[who].password if who else "no password"
    forms: dict[str, list[tuple[str, str]]] = {
        "login": [("name", "amina"), ("password", "a wrong password 123")],
        "second-factor": [("code", "000000")],
        "language": [("language", "en"), ("next", "/")],
        "enrol": [("password", "x"), ("repeat", "y"), ("code", "000000")],
        "logout": [],
        "password": [("current", own), ("new", "a b c d"), ("repeat", "a b c e")],
        "close-spam": [("report", world.spam)],
        "report-status": [("status", "in_review")],
        "report-priority": [("priority", "high")],
        "report-assignee": [("assignee", "")],
        "report-labels": [("labels", "raid")],
        "report-link": [("other", world.other)],
        "report-unlink": [("other", world.other)],
        "report-note": [("note", f"note {index}")],
        "keys-grant": [("grantee", "kamala"), ("fingerprint", "0000"), ("password", own)],
        "keys-revoke": [("member", "spare"), ("password", own)],
        "keys-rotate": [("password", own)],
        "keys-rewrap": [("password", own)],
        "keys-retire": [("key", "0" * 32), ("password", own)],
        "accounts-add": [("name", f"new{index}"), ("role", "reviewer"), ("password", own)],
        "accounts-disable": [("name", "spare"), ("password", own)],
        "accounts-reenrol": [("name", "spare"), ("password", own)],
    }
    return forms[route.name]


ALLOWED: dict[str, set[int]] = {
    "static": {200},
    "login-form": {200},
    "login": {401},
    "second-factor-form": {303},
    "second-factor": {303},
    "language": {303},
    "enrol-form": {200},
    "enrol": {400},
    "logout": {303},
    "password-form": {200},
    "password": {400},
    "inbox": {200},
    "close-spam": {303},
    "report": {200},
    "report-status": {303, 400},
    "report-priority": {303},
    "report-assignee": {303},
    "report-labels": {303},
    "report-link": {303, 400},
    "report-unlink": {303},
    "report-note": {303},
    "file": {200},
    "file-image": {200},
    "keys": {200},
    "keys-grant": {400},
    "keys-revoke": {400},
    "keys-rotate": {200},
    # Starts the re-wrap (303), or finds one running (409) or nothing left to do (400).
    "keys-rewrap": {303, 400, 409},
    "keys-retire": {400},
    "accounts": {200},
    "accounts-add": {200},
    "accounts-disable": {200},
    "accounts-reenrol": {200},
    "audit": {200},
    "audit-head": {200},
}
"""What an allowed request gets: the page, a redirect after a change, or the form's own
refusal of deliberately wrong input (a wrong password, a fingerprint that does not match,
a member without keys, a key that does not exist) — never 403."""

ROLES: dict[str, frozenset[Role]] = {
    "admin": frozenset({Role.ADMIN}),
    "keyholder": frozenset({Role.KEYHOLDER}),
    "reviewer": frozenset({Role.REVIEWER}),
    "admin+keyholder": frozenset({Role.ADMIN, Role.KEYHOLDER}),
}


async def build_world(app: App, first: Member) -> World:
    report = await make_report(
        app, [(TEXT_QUESTION, [{"text": CONTENT}])], files=[("photo.png", "image/png", PNG)]
    )
    async with app.sessions() as session:
        (file_id,) = await report_repo.attachments(session, report)
    other = await make_report(app, [(FILES_QUESTION, [])])
    spam = await make_report(app)
    members = {"admin+keyholder": first}
    members["admin"] = await add_member(app, "adil", [Role.ADMIN])
    members["keyholder"] = await add_member(app, "kamala", [Role.KEYHOLDER])
    members["reviewer"] = await add_member(app, "rufat", [Role.REVIEWER])
    fingerprint = members["keyholder"].fingerprint
    assert fingerprint is not None
    await keyring.grant_keys(app, "amina", Secret(first.password.encode()), "kamala", fingerprint)
    await add_member(app, "spare", [Role.REVIEWER])
    invite = await accounts.add_member(app, "pending", [Role.REVIEWER])
    return World(report.hex(), file_id.hex(), other.hex(), spam.hex(), invite.token, members)


def judge(
    route: Route,
    who: str | None,
    *,
    granted: frozenset[Permission],
    status: int,
    location: str | None,
    body: bytes,
) -> str | None:
    """What is wrong with one answer of the matrix, or None."""
    if route.permission in granted:
        if status not in ALLOWED[route.name]:
            return f"{status}, expected {sorted(ALLOWED[route.name])}"
        shows = route.name in ("report", "file", "file-image")
        expected = PNG if route.name.startswith("file") else CONTENT.encode()
        if shows and Permission.CONTENT in granted and expected not in body:
            return "the report's content is missing"
        if shows and Permission.CONTENT not in granted and CONTENT.encode() in body:
            return "content shown without the right to read it"
        return None
    if who is None and route.method == "GET":
        if status != 303 or location != "/login":
            return f"{status}, expected a redirect to /login"
        return None
    reason = "Log in first." if who is None else "Your role does not allow this."
    if status != 403 or reason not in html.unescape(body.decode()):
        return f"{status}, expected 403 ({reason})"
    return None


async def test_every_route_for_every_role(app: App, first: Member) -> None:
    world = await build_world(app, first)
    clock = FakeClock()
    site = Site(app, clock)
    problems: list[str] = []
    try:
        clients: dict[str | None, Client] = {}
        for n, (role, roles) in enumerate(ROLES.items(), start=1):
            assert world.members[role].roles == roles
            clients[role] = await site.client(f"127.0.0.{n}")
            await sign_in(clients[role], app, world.members[role])
        clients[None] = await site.client("127.0.0.9")
        # The logout route last: it ends the session the others need.
        routes = sorted(ROUTES, key=lambda r: r.name == "logout")
        assert set(ALLOWED) == {r.name for r in ROUTES}, "expected answers for every route"

        for number, (who, client) in enumerate(clients.items()):
            granted = permissions_of(ROLES[who]) if who else frozenset({Permission.PUBLIC})
            # One token per session (or per browser, before login) serves every form.
            token = csrf_of(await (await client.get("/" if who else "/login")).text())
            for index, route in enumerate(routes):
                unique = number * 100 + index
                data = form(route, world, who, unique) if route.method == "POST" else None
                if data is not None:
                    data.append(("csrf", token))
                response = await client.request(
                    route.method, url(route, world), data=data, allow_redirects=False
                )
                body = await response.read()
                if route.name == "login":
                    clock.advance(60)  # past the slow-down of the wrong password just sent
                problem = judge(
                    route,
                    who,
                    granted=granted,
                    status=response.status,
                    location=response.headers.get("Location"),
                    body=body,
                )
                if problem:
                    problems.append(f"{who or 'logged out'} {route.method} {route.name}: {problem}")
    finally:
        await site.close()
    assert not problems, "\n".join(problems)


async def test_every_route_has_a_permission_and_one_without_is_refused(
    app: App, first: Member
) -> None:
    """Every route the application registers is in the permission table; a handler added
    to the router but not to the table (with a name or without one) is never run, whoever
    asks (fail closed)."""
    web_app = create_app(app)
    registered = {(route.method, route.name) for route in web_app.router.routes()}
    assert registered == {(route.method, route.name) for route in ROUTES}
    for route in web_app.router.routes():
        assert route.name in PERMISSIONS, route
        assert isinstance(PERMISSIONS[route.name], Permission)

    ran: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        ran.append(request.path)
        return web.Response(text="should never be served")

    site = Site(app)
    site.web_app.router.add_get("/unlisted", handler, name="unlisted")
    site.web_app.router.add_get("/nameless", handler)
    site.web_app.router.add_post("/unlisted", handler, name="unlisted-post")
    try:
        signed_in = await site.client()
        await sign_in(signed_in, app, first)
        stranger = await site.client("127.0.0.2")
        token = csrf_of(await (await signed_in.get("/")).text())
        for client in (signed_in, stranger):
            for path in ("/unlisted", "/nameless"):
                response = await client.get(path, allow_redirects=False)
                assert response.status == 403, path
                assert "This page is not open to anyone." in await response.text()
            response = await client.post("/unlisted", data={"csrf": token})
            assert response.status == 403
    finally:
        await site.close()
    assert ran == []

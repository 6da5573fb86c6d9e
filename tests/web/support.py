"""Helpers of the sign-in, session and web-security tests (beside :mod:`harness`).

* :class:`FakeClock`: the clock ``create_app`` takes, moved by hand (throttles, idle and
  absolute session limits), while TOTP codes keep using real time.
* :class:`Site`: one application behind aiohttp's test server, with as many clients as a
  test needs, each from its own loopback address (``127.0.0.x``) when asked: the per-client
  throttle sees real, different peer addresses, not a patched request.
* Form steps that do not assert success, database snapshots, the audit log, and a scan of
  everything the database holds for a canary.
"""

from __future__ import annotations

import datetime as dt
import gc
import re
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyotp
from aiohttp import ClientResponse, CookieJar, TCPConnector
from aiohttp.test_utils import TestClient, TestServer
from canary import Canary, ScanResult, scan_pg_dump, scan_text, scan_tree
from sqlalchemy import select

from admin.app import create_app
from admin.state import COOKIE, STATE, AdminState
from intake_bot.bootstrap import App
from intake_bot.storage import audit
from intake_bot.storage.models import Base

from .harness import Member, csrf_of, forget_used_codes

Client = TestClient[Any, Any]


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 10_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Site:
    """One admin application (one process, as far as its memory goes) and its clients."""

    def __init__(self, app: App, clock: FakeClock | None = None) -> None:
        self.app = app
        self.web_app = create_app(app) if clock is None else create_app(app, clock=clock)
        self.server = TestServer(self.web_app)
        self._clients: list[Client] = []

    @property
    def state(self) -> AdminState:
        return self.web_app[STATE]

    async def client(self, address: str = "127.0.0.1") -> Client:
        """A new browser (its own cookies), connecting from ``address``."""
        connector = TCPConnector(local_addr=(address, 0))
        client: Client = TestClient(
            self.server, cookie_jar=CookieJar(unsafe=True), connector=connector
        )
        await client.start_server()
        self._clients.append(client)
        return client

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
        await self.server.close()


async def form_token(client: Client, path: str = "/login") -> str:
    """The CSRF token of the form on ``path``."""
    page = await client.get(path)
    return csrf_of(await page.text())


async def password_step(
    client: Client, name: str, password: str, *, csrf: str | None = None
) -> ClientResponse:
    """POST the login form (no redirect followed)."""
    token = csrf if csrf is not None else await form_token(client)
    return await client.post(
        "/login",
        data={"name": name, "password": password, "csrf": token},
        allow_redirects=False,
    )


async def code_step(client: Client, code: str) -> ClientResponse:
    """POST the second-factor form (no redirect followed)."""
    token = await form_token(client, "/login/code")
    return await client.post(
        "/login/code", data={"code": code, "csrf": token}, allow_redirects=False
    )


async def sign_in(
    client: Client, app: App, member: Member, *, code: str | None = None
) -> ClientResponse:
    """Both steps; asserts each one worked. The current TOTP code is made usable again
    unless ``code`` is given."""
    if code is None:
        await forget_used_codes(app, member.name)
    first = await password_step(client, member.name, member.password)
    assert first.status == 303, first.status
    assert first.headers["Location"] == "/login/code"
    second = await code_step(client, code or member.code())
    assert second.status == 303, (second.status, await second.text())
    assert second.headers["Location"] == "/"
    return second


async def log_out(client: Client) -> None:
    """POST the logout form of the inbox page; asserts it led to the login page."""
    page = await client.get("/")
    response = await client.post(
        "/logout", data={"csrf": csrf_of(await page.text())}, allow_redirects=False
    )
    assert response.status == 303, response.status
    assert response.headers["Location"] == "/login"


def code_at_step(member: Member, step: int) -> str:
    return pyotp.TOTP(member.totp_secret).generate_otp(step)


def current_step(member: Member) -> int:
    return pyotp.TOTP(member.totp_secret).timecode(dt.datetime.now(dt.UTC))


def session_cookie(client: Client) -> str:
    """The value of the session cookie the client holds (asserts there is one)."""
    for cookie in client.session.cookie_jar:
        if cookie.key == COOKIE:
            return cookie.value
    raise AssertionError("the client holds no session cookie")


async def is_signed_in(client: Client) -> bool:
    """Whether the inbox opens (not a redirect to the login page)."""
    response = await client.get("/", allow_redirects=False)
    if response.status == 303:
        assert response.headers["Location"] == "/login"
        return False
    assert response.status == 200, response.status
    return True


async def audit_log(app: App) -> list[audit.Entry]:
    async with app.sessions() as session:
        return await audit.entries(session, after=0, limit=100_000)


async def actions(app: App, after: int = 0) -> list[tuple[str, str]]:
    """(actor, action) of every audit entry after sequence number ``after``."""
    return [(e.actor, e.action) for e in await audit_log(app) if e.seq > after]


async def audit_seq(app: App) -> int:
    entries = await audit_log(app)
    return entries[-1].seq if entries else 0


async def snapshot(app: App) -> dict[str, list[str]]:
    """Every row of every table, as sorted text: equal snapshots mean nothing changed."""
    tables: dict[str, list[str]] = {}
    async with app.sessions() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(select(table))).all()
            tables[table.name] = sorted(repr(tuple(row)) for row in rows)
    return tables


async def scan_database(
    app: App, database_url: str, data_root: Path, canaries: Sequence[Canary]
) -> ScanResult:
    """Look for canaries in every row (as text and as the bytes stored), and in what the
    database keeps on disk: the SQLite files with their WAL, or a ``pg_dump``."""
    result = ScanResult()
    async with app.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                for value in row:
                    text = value.hex() if isinstance(value, bytes) else str(value)
                    if isinstance(value, bytes):
                        text += value.decode("utf-8", "replace")
                    result.extend(scan_text(text, canaries, f"table {table.name}"))
    if database_url.startswith("sqlite"):
        result.extend(scan_tree(data_root, canaries))
    else:
        result.extend(scan_pg_dump(database_url, canaries))
    return result


_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType)


def reachable_data(root: object) -> list[bytes]:
    """Every bytes, bytearray and str value reachable from ``root`` through the objects it
    holds (dict entries, dataclass and slot fields, containers), as bytes; classes,
    modules and functions are not followed."""
    found: list[bytes] = []
    seen: set[int] = set()
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, _OPAQUE):
            continue
        seen.add(id(obj))
        if isinstance(obj, bytes | bytearray | memoryview):
            found.append(bytes(obj))
            continue
        if isinstance(obj, str):
            found.append(obj.encode("utf-8", "surrogatepass"))
            continue
        todo.extend(gc.get_referents(obj))
    return found


def text_of_error(html: str) -> str:
    """The message of an error or form page (the role=alert paragraph)."""
    found = re.search(r'role="alert">([^<]*)<', html)
    return "" if found is None else found.group(1)

"""Response headers on every response (pages, redirects, errors, static files, downloads, a
crash), the flags of every cookie (with and without ``admin_secure_cookies``), and the
language switch's redirect, which must stay on this site."""

from __future__ import annotations

from dataclasses import replace
from http.cookies import SimpleCookie
from typing import Any

import pytest
from aiohttp import ClientResponse

from admin.security import CSP
from admin.state import COOKIE, LANG_COOKIE, PRE_COOKIE
from intake_bot.bootstrap import App, open_app
from intake_bot.config import Settings, load_settings
from intake_bot.services import accounts
from intake_bot.storage.models import Role

from .harness import TEXT_QUESTION, Member, csrf_of, forget_used_codes, make_report
from .support import Client, FakeClock, Site, form_token, password_step, sign_in

EXPECTED_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
DOWNLOAD_CSP = "sandbox; default-src 'none'"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 500


def check_headers(response: ClientResponse, where: str, *, csp: str = EXPECTED_CSP) -> None:
    headers = response.headers
    assert headers.get("Content-Security-Policy") == csp, where
    assert headers.get("X-Frame-Options") == "DENY", where
    assert headers.get("Referrer-Policy") == "no-referrer", where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Cache-Control") == "no-store", where
    assert headers.get("Cross-Origin-Opener-Policy") == "same-origin", where
    assert headers.get("Cross-Origin-Resource-Policy") == "same-origin", where


def test_the_policy_is_the_strict_one() -> None:
    assert CSP == EXPECTED_CSP
    assert "unsafe" not in CSP
    assert "script-src" not in CSP, "no script at all: default-src 'none' covers it"


async def test_every_response_carries_the_security_headers(
    site: Site, app: App, first: Member, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = await make_report(
        app,
        [(TEXT_QUESTION, [{"text": "a search without a warrant"}])],
        files=[("photo.png", "image/png", PNG)],
    )
    file_id = await file_of(app, report)
    client = await site.client()
    seen: list[tuple[str, int]] = []

    async def check(method: str, path: str, status: int, **kwargs: Any) -> ClientResponse:
        response = await client.request(method, path, allow_redirects=False, **kwargs)
        assert response.status == status, (method, path, response.status)
        check_headers(response, f"{method} {path} {status}")
        seen.append((path, status))
        return response

    # Logged out.
    page = await check("GET", "/login", 200)
    token = csrf_of(await page.text())
    await check("GET", "/static/admin.css", 200)
    await check("GET", "/static/icon.svg", 200)
    await check("GET", "/static/../app.py", 404)
    await check("GET", "/", 303)
    await check("GET", "/no/such/page", 404)
    await check("PUT", "/login", 405)
    await check("POST", "/login", 403, data={"name": "amina", "password": "x"})
    await check("POST", "/login", 401, data={"name": "amina", "password": "x", "csrf": token})
    throttled = await check(
        "POST", "/login", 429, data={"name": "amina", "password": "x", "csrf": token}
    )
    assert throttled.headers["Retry-After"] == "1"
    await check("POST", "/accounts", 403, data={"csrf": token})
    await check("GET", "/enrol/" + "0" * 64, 404)
    await check("GET", "/login/code", 303)
    clock.advance(10)

    # Signed in.
    await sign_in(client, app, first)
    for path in ("/", f"/reports/{report.hex()}", "/keys", "/accounts", "/audit"):
        await check("GET", path, 200)
    await check("GET", "/audit/head", 200)
    await check("GET", "/account/password", 200)
    await check("GET", f"/reports/{'0' * 32}", 404)
    await check("GET", "/reports/not-an-id", 404)
    token = csrf_of(await (await client.get("/")).text())
    await check("POST", "/reports/close-spam", 400, data={"csrf": token})
    await check("POST", "/language", 303, data={"csrf": token, "language": "en", "next": "/"})
    invite = await accounts.add_member(app, "newbie", [Role.REVIEWER])
    await check("GET", f"/enrol/{invite.token}", 200)

    for path in (
        f"/reports/{report.hex()}/files/{file_id}",
        f"/reports/{report.hex()}/files/{file_id}/image",
    ):
        response = await client.get(path)
        assert response.status == 200, path
        assert await response.read() == PNG
        check_headers(response, path, csp=DOWNLOAD_CSP)

    # A crash: aiohttp's own 500 page gets the headers too, and says nothing of the cause.
    async def broken(_app: App) -> list[Any]:
        raise RuntimeError("secret detail of the failure")

    monkeypatch.setattr(accounts, "list_members", broken)
    crashed = await check("GET", "/accounts", 500)
    assert "secret detail" not in await crashed.text()
    assert len(seen) > 25


async def file_of(app: App, report: bytes) -> str:
    from intake_bot.storage import reports as report_repo  # noqa: PLC0415

    async with app.sessions() as session:
        files = await report_repo.attachments(session, report)
    assert len(files) == 1
    return next(iter(files)).hex()


def cookies_of(response: ClientResponse) -> dict[str, Any]:
    """The Set-Cookie headers of a response, parsed, by cookie name."""
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.getall("Set-Cookie", []):
        jar.load(header)
    return {name: jar[name] for name in jar}


def assert_flags(cookie: Any, *, secure: bool, persistent: bool = False) -> None:
    assert cookie["httponly"] is True, cookie.key
    assert cookie["samesite"] == "Strict", cookie.key
    assert cookie["path"] == "/", cookie.key
    assert bool(cookie["secure"]) is secure, cookie.key
    if not persistent:
        assert cookie["max-age"] == "", f"{cookie.key} lives for the browser session only"
        assert cookie["expires"] == "", cookie.key


async def walk_through_cookies(client: Client, first: Member, *, secure: bool) -> None:
    """Log in, switch language and log out, sending the cookies by hand (a client does not
    send Secure cookies over plain http), checking each cookie the server sets."""
    page = await client.get("/login")
    pre = cookies_of(page)[PRE_COOKIE]
    assert_flags(pre, secure=secure)
    sent = {PRE_COOKIE: pre.value}

    def header() -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in sent.items())}

    response = await client.post(
        "/login",
        data={"name": first.name, "password": first.password, "csrf": csrf_of(await page.text())},
        headers=header(),
        allow_redirects=False,
    )
    assert response.status == 303
    session = cookies_of(response)[COOKIE]
    assert_flags(session, secure=secure)
    sent[COOKIE] = session.value
    form = await client.get("/login/code", headers=header())
    response = await client.post(
        "/login/code",
        data={"code": first.code(), "csrf": csrf_of(await form.text())},
        headers=header(),
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/"
    session = cookies_of(response)[COOKIE]
    assert_flags(session, secure=secure)
    assert session.value != sent[COOKIE], "a new session id after the second factor"
    sent[COOKIE] = session.value
    inbox = await client.get("/", headers=header(), allow_redirects=False)
    assert inbox.status == 200
    token = csrf_of(await inbox.text())
    response = await client.post(
        "/language",
        data={"csrf": token, "language": "ru", "next": "/"},
        headers=header(),
        allow_redirects=False,
    )
    assert response.status == 303
    language = cookies_of(response)[LANG_COOKIE]
    assert_flags(language, secure=secure, persistent=True)
    assert language.value == "ru"
    response = await client.post(
        "/logout", data={"csrf": token}, headers=header(), allow_redirects=False
    )
    assert response.status == 303
    gone = cookies_of(response)[COOKIE]
    assert gone.value == ""
    assert gone["max-age"] == "0"


async def test_cookie_flags_with_and_without_secure_cookies(
    site: Site, app: App, first: Member, settings: Settings
) -> None:
    assert load_settings({}).admin_secure_cookies is True, "Secure cookies are the default"
    assert settings.admin_secure_cookies is False  # this module's fixture: plain http
    plain = await site.client()
    await walk_through_cookies(plain, first, secure=False)

    await forget_used_codes(app, first.name)
    async with open_app(replace(settings, admin_secure_cookies=True)) as secure_app:
        secure_site = Site(secure_app)
        try:
            client = await secure_site.client()
            await walk_through_cookies(client, first, secure=True)
        finally:
            await secure_site.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_language_switch_redirects_only_within_the_site(
    site: Site, app: App, first: Member
) -> None:
    client = await site.client()
    token = await form_token(client)
    for target, expected in [
        ("/reports?status=new&label=x", "/reports?status=new&label=x"),
        ("/login", "/login"),
        ("/?label=ağ", "/?label=a%C4%9F"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("\\\\evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\t/evil.example/", "/"),
        ("/\n/evil.example/", "/"),
        ("/\r\n/evil.example/", "/"),
        ("/ /evil.example/", "/"),
        ("/\x00/evil.example/", "/"),
        (" /evil", "/"),
        ("evil.example", "/"),
        ("", "/"),
    ]:
        response = await client.post(
            "/language",
            data={"csrf": token, "language": "en", "next": target},
            allow_redirects=False,
        )
        assert response.status == 303, repr(target)
        assert response.headers["Location"] == expected, repr(target)
    bad = await client.post(
        "/language", data={"csrf": token, "language": "xx", "next": "/"}, allow_redirects=False
    )
    assert bad.status == 400
    response = await password_step(client, "amina", "x", csrf=token)
    assert response.status == 401

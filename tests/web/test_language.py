"""The staff interface speaks the browser's language until a member picks one."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from intake_bot.bootstrap import App

from .harness import Member, csrf_of, login


async def test_accept_language_then_the_switcher_choose_the_language(
    client: TestClient[Any, Any],
) -> None:
    page = await client.get("/login", headers={"Accept-Language": "az-AZ,az;q=0.9,en;q=0.5"})
    text = await page.text()
    assert page.status == 200, text
    assert '<html lang="az">' in text
    assert '<label for="password">Parol</label>' in text

    switched = await client.post(
        "/language",
        data={"csrf": csrf_of(text), "language": "ru", "next": "/login"},
        headers={"Accept-Language": "az"},
    )
    text = await switched.text()
    assert switched.status == 200, text
    assert switched.url.path == "/login"
    assert '<html lang="ru">' in text
    assert '<label for="password">Пароль</label>' in text


async def test_a_member_s_choice_is_kept_and_every_page_renders_in_it(
    client: TestClient[Any, Any], app: App, first: Member
) -> None:
    await login(client, app, first)
    inbox = await client.get("/", headers={"Accept-Language": "ru"})
    text = await inbox.text()
    switched = await client.post(
        "/language", data={"csrf": csrf_of(text), "language": "az", "next": "/keys"}
    )
    assert switched.url.path == "/keys"
    client.session.cookie_jar.clear_domain("127.0.0.1")
    await login(client, app, first)
    for path in ("/", "/keys", "/accounts", "/audit", "/audit?verify=1", "/account/password"):
        page = await client.get(path, headers={"Accept-Language": "ru"})
        text = await page.text()
        assert page.status == 200, (path, text)
        assert '<html lang="az">' in text, path
        assert "Gələnlər" in text, path

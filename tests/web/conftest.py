"""Fixtures of the admin web tests: an installed system and the real application behind
aiohttp's test server (real HTTP, real cookies), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer

from admin.app import create_app
from intake_bot.bootstrap import App, open_app
from intake_bot.config import Settings

from .harness import Member, install
from .support import FakeClock, Site


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Plain http on the loopback: the test client would not send Secure cookies."""
    return replace(settings, admin_secure_cookies=False)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    async with open_app(settings) as application:
        yield application


@pytest.fixture
async def first(app: App) -> Member:
    """The installation's first member (admin and key-holder)."""
    return await install(app)


@pytest.fixture
async def client(app: App, first: Member) -> AsyncIterator[TestClient[Any, Any]]:
    server = TestServer(create_app(app))
    async with TestClient(server, cookie_jar=CookieJar(unsafe=True)) as test_client:
        yield test_client


@pytest.fixture
def clock() -> FakeClock:
    """The admin's clock, moved by hand (throttles, session limits)."""
    return FakeClock()


@pytest.fixture
async def site(app: App, first: Member, clock: FakeClock) -> AsyncIterator[Site]:
    """One admin application on the fake clock, with as many clients as a test needs."""
    served = Site(app, clock)
    try:
        yield served
    finally:
        await served.close()

"""The staff web application: built from an :class:`~intake_bot.bootstrap.App`, served by
``intake admin`` (and ``intake demo``) on ``INTAKE_ADMIN_HOST``:``INTAKE_ADMIN_PORT``.

It binds 127.0.0.1 by default; put a TLS-terminating reverse proxy in front of it for
anything but a local machine (README, "Admin web").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp_jinja2
import jinja2
from aiohttp import web

from intake_bot.bootstrap import App
from intake_bot.questionnaire import archive
from intake_bot.questionnaire.loader import load_default, load_file
from intake_bot.services.keyring import read_pin

from . import rewrap, security
from .i18n import load_catalogues
from .rendering import Questionnaires
from .routes import PERMISSIONS, add_routes
from .sessions import SessionStore
from .state import STATE, AdminState
from .throttle import Backoff

MAX_BODY = 256 * 1024
"""Forms only: nothing the interface accepts is larger (notes are at most 10,000 chars)."""


def create_app(app: App, *, clock: Callable[[], float] = time.monotonic) -> web.Application:
    settings = app.settings
    current = load_file(settings.questionnaire) if settings.questionnaire else load_default()
    state = AdminState(
        app=app,
        pinned=read_pin(settings.signing_key_pin),
        sessions=SessionStore(
            idle=settings.admin_idle_minutes * 60.0,
            lifetime=settings.admin_session_hours * 3600.0,
            clock=clock,
        ),
        sign_in_backoff=Backoff(clock),
        second_factor_backoff=Backoff(clock),
        catalogues=load_catalogues(),
        questionnaires=Questionnaires(
            [*archive.load_archived(settings.data_dir), load_default(), current]
        ),
        current_questionnaire=current,
        clock=clock,
    )
    web_app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[
            security.sessions,
            security.errors,
            security.access_middleware(PERMISSIONS),
            security.csrf,
        ],
    )
    web_app[STATE] = state
    aiohttp_jinja2.setup(
        web_app,
        loader=jinja2.PackageLoader("admin", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    add_routes(web_app)
    # The headers again just before any response goes out: streamed downloads and
    # aiohttp's own 500 page never pass back through the middlewares.
    web_app.on_response_prepare.append(security.on_prepare)
    web_app.on_cleanup.append(_stop_rewrap)
    return web_app


async def _stop_rewrap(web_app: web.Application) -> None:
    """Cancel a re-wrap still running: its open batch rolls back, the job stays open, and
    the Keys page offers to resume it after the restart."""
    await rewrap.stop(web_app[STATE].rewrap)


async def run_admin(
    app: App,
    stop: asyncio.Event,
    ready: asyncio.Event | None = None,
    *,
    port: int | None = None,
) -> None:
    """Serve until ``stop`` is set. No access log: it would hold client addresses and
    report ids."""
    runner = web.AppRunner(create_app(app), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(
        runner, app.settings.admin_host, app.settings.admin_port if port is None else port
    )
    await site.start()
    try:
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        await runner.cleanup()

"""The simulator's aiohttp application: the Bot API face and the control face on one port."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from . import botapi, control, page
from .clock import Clock
from .errors import SimulatorError
from .params import MAX_REQUEST_BYTES
from .state import DEFAULT_DOWNLOAD_LIMIT, SIMULATOR, Simulator


def create_app(
    token: str,
    *,
    download_limit: int = DEFAULT_DOWNLOAD_LIMIT,
    bot_username: str = "intake_test_bot",
    bot_first_name: str = "Intake",
    clock: Clock | None = None,
) -> web.Application:
    """A Bot API server for the bot with ``token`` (``<bot id>:<secret>``), with no network.

    ``download_limit`` is the largest file ``getFile`` serves (Telegram's cloud: 20 MB).
    The :class:`~intake_bot.simulator.state.Simulator` is at ``app[SIMULATOR]`` for tests
    that want to look inside rather than go through the control API.
    """
    app = web.Application(middlewares=[_errors], client_max_size=MAX_REQUEST_BYTES)
    app[SIMULATOR] = Simulator(
        token,
        download_limit=download_limit,
        bot_username=bot_username,
        bot_first_name=bot_first_name,
        clock=clock,
    )
    app.router.add_routes(botapi.routes())
    app.router.add_routes(control.routes())
    app.router.add_routes(page.routes())
    app.on_shutdown.append(_release_long_polls)
    return app


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render refusals in the caller's dialect: Telegram's for the bot, plain for tests."""
    try:
        return await handler(request)
    except SimulatorError as error:
        if request.path.startswith("/control/"):
            return web.json_response({"error": error.description}, status=error.status)
        return botapi.error_response(error.status, error.description)


async def _release_long_polls(app: web.Application) -> None:
    app[SIMULATOR].updates.close()

"""Run a simulator app on a local port for the length of an ``async with``.

Binds 127.0.0.1 and a free port by default (the control API has no authentication).
There is no access log: request lines would carry the bot token in ``/bot<token>/``
paths, and the simulator never logs message content either. Waiting handlers of
clients that went away are cancelled, and long polls are released at shutdown, so
stopping is quick.
"""

from __future__ import annotations

from types import TracebackType

from aiohttp import web

from .state import SIMULATOR, Simulator

SHUTDOWN_SECONDS = 2.0


class SimulatorServer:
    """``async with SimulatorServer(create_app(token)) as server:`` then ``server.url``."""

    def __init__(self, app: web.Application, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:41234`` (no trailing slash)."""
        if self._url is None:
            raise RuntimeError("the simulator is not running")
        return self._url

    @property
    def bot_api_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)``: the token is appended by PTB."""
        return f"{self.url}/bot"

    @property
    def file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)``."""
        return f"{self.url}/file/bot"

    @property
    def simulator(self) -> Simulator:
        return self.app[SIMULATOR]

    async def start(self) -> str:
        """Start serving; returns the root URL."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        runner = web.AppRunner(
            self.app,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=SHUTDOWN_SECONDS,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        return self._url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
            self._url = None

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

"""``intake demo``: the whole system on one machine, with no bot token and no internet.

Starts the Bot API simulator (with its chat page), sets up a demo installation on SQLite
in its own directory (demo keys and a demo admin whose password and second factor are
printed), and runs the real bot against the simulator until interrupted. It refuses to
run when a Telegram token is configured, so it can never talk to real Telegram.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from admin.app import run_admin

from .bootstrap import open_app
from .config import Settings
from .crypto import Secret, new_receipt_code
from .services import ServiceError, accounts, installation
from .simulator.app import create_app
from .simulator.runner import SimulatorServer
from .storage import migrate
from .storage import staff as staff_repo
from .telegram.app import run_bot

DEMO_TOKEN = "1000000001:DEMO-token-for-the-local-simulator-only"  # noqa: S105  # not a secret
DEMO_ADMIN = "demo-admin"
PASSWORD_FILE = "DEMO-admin-password.txt"  # noqa: S105  # a file name
"""The demo admin's password, kept in the demo directory. Never done for a real install."""


def demo_settings(base: Settings, data_dir: Path, api_url: str) -> Settings:
    """The demo's own settings: SQLite, pin and boot secret all inside ``data_dir``."""
    data_dir = data_dir.absolute()
    return replace(
        base,
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'intake.db'}",
        signing_key_pin=data_dir / "signing-key.pin",
        runtime_dir=data_dir / "runtime",
        telegram_token=Secret(DEMO_TOKEN.encode()),
        telegram_api_url=api_url,
    )


async def run_demo(
    base: Settings,
    *,
    data_dir: Path,
    port: int,
    admin_port: int,
    reset: bool,
    stop: asyncio.Event,
    say: Callable[[str], None],
) -> None:
    """Run the demo until ``stop`` is set; ``say`` prints the lines for the person."""
    if base.telegram_token is not None:
        raise ServiceError(
            "refusing to run the demo with INTAKE_TELEGRAM_TOKEN set: the demo never talks "
            "to real Telegram"
        )
    if reset:
        await asyncio.to_thread(_remove_demo_dir, data_dir)
    async with SimulatorServer(
        create_app(DEMO_TOKEN, bot_username="intake_demo_bot"), port=port
    ) as server:
        settings = replace(
            demo_settings(base, data_dir, server.url),
            admin_port=admin_port,
            admin_public_url=f"http://{base.admin_host}:{admin_port}",
            admin_secure_cookies=False,
        )
        async with open_app(settings) as app:
            password = await asyncio.to_thread(_demo_password, settings)
            if password is None:
                password = "demo-" + new_receipt_code()
                await asyncio.to_thread(_keep_demo_password, settings, password)
                await installation.initialise(app, DEMO_ADMIN, Secret(password.encode()))
            else:
                await migrate.upgrade(app.engine)
            async with app.sessions() as session:
                creds = await staff_repo.credentials(session, DEMO_ADMIN)
            if creds is None:
                raise ServiceError(f"{settings.data_dir} is not a demo directory: use --reset")
            say("intake demo (DEMO DATA ONLY: never put real reports here)")
            say(f"Chat:  {server.url}/chat")
            say(f"Admin: {settings.admin_public_url}")
            say(f"Demo admin: {DEMO_ADMIN}")
            say(f"Password:   {password}")
            say(f"Second factor: {accounts.otpauth_uri(DEMO_ADMIN, creds.totp_secret)}")
            say(f"  (or the current code: intake demo --code --data-dir {data_dir})")
            say(f"Data:  {settings.data_dir} (start over with --reset)")
            say("Press Ctrl-C to stop.")
            async with asyncio.TaskGroup() as group:
                group.create_task(run_admin(app, stop))
                group.create_task(run_bot(app, stop))


async def demo_code(base: Settings, data_dir: Path) -> str:
    """The demo admin's current TOTP code (the demo prints its secret anyway)."""
    settings = demo_settings(base, data_dir, "http://127.0.0.1")
    if not (settings.data_dir / PASSWORD_FILE).exists():
        raise ServiceError(f"{settings.data_dir} is not a demo directory: run 'intake demo'")
    async with open_app(settings) as app, app.sessions() as session:
        creds = await staff_repo.credentials(session, DEMO_ADMIN)
    if creds is None:
        raise ServiceError(f"{settings.data_dir} is not a demo directory: use --reset")
    return accounts.current_totp(creds.totp_secret)


def _demo_password(settings: Settings) -> str | None:
    """The kept demo password of an existing demo directory, or None for a new one."""
    if not settings.signing_key_pin.exists():
        return None
    path = settings.data_dir / PASSWORD_FILE
    if not path.exists():
        raise ServiceError(f"{settings.data_dir} is not a demo directory: use --reset")
    return path.read_text(encoding="utf-8").strip()


def _keep_demo_password(settings: Settings, password: str) -> None:
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = settings.data_dir / PASSWORD_FILE
    path.write_text(password + "\n", encoding="utf-8")
    path.chmod(0o600)


def _remove_demo_dir(data_dir: Path) -> None:
    """Delete a demo directory, and only a demo directory (never an arbitrary path)."""
    if not data_dir.exists():
        return
    if not (data_dir / PASSWORD_FILE).exists() and any(data_dir.iterdir()):
        raise ServiceError(f"{data_dir} is not a demo directory: not deleting it")
    shutil.rmtree(data_dir)

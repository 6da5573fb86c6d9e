"""``intake demo`` as a person runs it: a subprocess that serves the chat page, a bot and
the staff web app, whose demo admin logs in with the printed password and the code that
``intake demo --code`` prints."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from intake_bot.simulator.client import SimulatorClient

pytestmark = pytest.mark.slow

STARTUP_S = 60.0
STOP_S = 5.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no INTAKE_* of the developer's leaks into the demo."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env["INTAKE_KDF_PROFILE"] = "insecure-test"  # only to keep the test fast
    env["HOME"] = str(tmp_path)
    return env


def _intake() -> list[str]:
    script = Path(sys.executable).with_name("intake")
    return [str(script)] if script.exists() else [sys.executable, "-m", "intake_bot.cli"]


def _start(tmp_path: Path, port: int, *extra: str, admin_port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*_intake(), "demo", "--port", str(port), "--admin-port", str(admin_port), *extra],
        cwd=tmp_path,
        env=_environment(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_banner(process: subprocess.Popen[str]) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + STARTUP_S
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Press Ctrl-C"):
            return lines
    process.kill()
    raise AssertionError(f"the demo did not come up: {lines}")


async def _bot_answers_start(url: str) -> str:
    async with SimulatorClient(url) as client:
        user = await client.create_user("Visitor", language_code="en")
        sent = await client.send_text(user["id"], "/start")
        [reply] = await client.wait_for_bot_messages(user["id"], after=sent.message_id, max_wait=30)
        async with aiohttp.ClientSession() as http, http.get(f"{url}/chat") as page:
            assert page.status == 200
            assert "<html" in (await page.text()).lower()
        return str(reply["text"])


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def _demo_code(tmp_path: Path) -> str:
    """What ``intake demo --code`` prints, run as the banner says (while the demo runs)."""
    done = subprocess.run(
        [*_intake(), "demo", "--code", "--data-dir", "demo-data"],
        cwd=tmp_path,
        env=_environment(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _admin_logs_in(url: str, password: str, code: str) -> str:
    """The login form is served; the demo admin logs in with the printed password and the
    code; the inbox's HTML. (An unsafe cookie jar: aiohttp's default one ignores cookies
    from IP addresses, which browsers keep.)"""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{url}/login") as page:
            assert page.status == 200
            form = await page.text()
        assert 'action="/login"' in form
        assert 'name="password"' in form
        fields = {"name": "demo-admin", "password": password, "csrf": _csrf(form)}
        async with http.post(f"{url}/login", data=fields) as second:
            assert second.status == 200
            assert second.url.path == "/login/code"
            form = await second.text()
        async with http.post(
            f"{url}/login/code", data={"code": code, "csrf": _csrf(form)}
        ) as inbox:
            assert inbox.status == 200, await inbox.text()
            assert inbox.url.path == "/"
            return await inbox.text()


def _stop(process: subprocess.Popen[str]) -> tuple[float, str]:
    """SIGINT, as Ctrl-C sends; how long it took to exit, and what it wrote on stderr."""
    started = time.monotonic()
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=STOP_S * 3)
    return time.monotonic() - started, stderr


def test_demo_comes_up_answers_and_stops_on_sigint(tmp_path: Path) -> None:
    port, admin_port = _free_port(), _free_port()
    process = _start(tmp_path, port, admin_port=admin_port)
    try:
        banner = _read_banner(process)
        chat = next(line for line in banner if line.startswith("Chat:"))
        assert re.fullmatch(rf"Chat:\s+http://127\.0\.0\.1:{port}/chat", chat)
        admin = next(line for line in banner if line.startswith("Admin:"))
        assert re.fullmatch(rf"Admin:\s+http://127\.0\.0\.1:{admin_port}", admin)
        password = next(line for line in banner if line.startswith("Password:"))
        assert re.fullmatch(r"Password:\s+demo-\S+", password)
        assert any("otpauth://totp/" in line for line in banner)
        reply = asyncio.run(_bot_answers_start(f"http://127.0.0.1:{port}"))
        assert "Choose your language" in reply
        printed = _demo_code(tmp_path)
        assert re.fullmatch(r"\d{6}\n", printed), printed
        inbox = asyncio.run(_admin_logs_in(admin.split()[1], password.split()[1], printed.strip()))
        assert "demo-admin" in inbox
        assert "Inbox" in inbox
    finally:
        took, stderr = _stop(process)
    assert process.returncode == 0, stderr
    assert took < STOP_S, f"Ctrl-C took {took:.1f} s"
    # Nothing listens on the ports any more: every part it started has stopped.
    for stopped in (port, admin_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", stopped)) != 0
    # The demo directory is reused next time, and --reset starts over.
    again = _start(tmp_path, port, admin_port=admin_port)
    try:
        assert password in _read_banner(again)
    finally:
        _stop(again)
    fresh = _start(tmp_path, port, "--reset", admin_port=admin_port)
    try:
        assert password not in _read_banner(fresh)
    finally:
        _stop(fresh)


def test_demo_refuses_to_run_with_a_telegram_token(tmp_path: Path) -> None:
    env = _environment(tmp_path)
    env["INTAKE_TELEGRAM_TOKEN"] = "123456789:AAE-a-real-looking-token-xxxxxxxxxxxx"
    done = subprocess.run(
        [*_intake(), "demo", "--port", str(_free_port())],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "INTAKE_TELEGRAM_TOKEN" in done.stderr
    assert not (tmp_path / "demo-data").exists()
    assert "AAE-a-real-looking-token" not in done.stderr + done.stdout

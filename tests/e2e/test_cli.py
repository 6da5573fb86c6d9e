"""End-to-end tests of the ``intake`` console script, run as a real subprocess.

Each command runs in a minimal, controlled environment (PATH, HOME, LANG and the
``INTAKE_*`` settings under test), with stdin at /dev/null so that nothing can prompt. The
flows run on SQLite and on PostgreSQL (``database_url``); the small bad-input checks run on
a throw-away SQLite file only. Every error must be one line on stderr starting with
``intake: ``, nothing on stdout, no traceback, and a non-zero exit (2 for usage errors).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from intake_bot.bootstrap import open_app
from intake_bot.config import load_settings
from intake_bot.crypto import (
    DecryptionError,
    OrgPrivateKey,
    PayloadKind,
    Plaintext,
    Secret,
    SigningPrivateKey,
    parse_pin,
)
from intake_bot.services import keyring, reports
from intake_bot.storage.migrate import head_revision

pytestmark = pytest.mark.slow

ADMIN_PASSWORD = "plum oyster canal quietly lanterns 7"
MEMBER_PASSWORD = "violet tractor sings under marble bridges"
REVIEWER_PASSWORD = "seven brass owls argue about fog"
WEAK_PASSWORD = "password1"

FINGERPRINT = re.compile(r"[0-9A-F]{4}( [0-9A-F]{4}){7}")
KEY_ID = re.compile(r"[0-9a-f]{32}")
TOKEN = re.compile(r"[A-Za-z0-9_-]{40,}")

_SCRIPT = Path(sys.executable).with_name("intake")
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "intake_bot.cli"]
"""The installed console script (the operator's entry point), else the module."""


@dataclass(frozen=True, slots=True, repr=False)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __repr__(self) -> str:
        return (
            f"intake {' '.join(self.args)} -> exit {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )

    def json(self) -> Any:
        """The JSON document on stdout of a command that succeeded quietly."""
        assert self.returncode == 0, self
        assert self.stderr == "", self
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass(frozen=True, slots=True)
class Cli:
    """Runs ``intake`` against one installation (data dir and database) under tmp_path."""

    root: Path
    database_url: str

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def pin(self) -> Path:
        return self.data_dir / "signing-key.pin"

    def env(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(self.root)),
            "LANG": "C.UTF-8",
            "INTAKE_DATA_DIR": str(self.data_dir),
            "INTAKE_DATABASE_URL": self.database_url,
            "INTAKE_KDF_PROFILE": "insecure-test",
        }
        env.update(overrides or {})
        return env

    def run(self, *args: str, env: Mapping[str, str] | None = None) -> Result:
        done = subprocess.run(
            [*COMMAND, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=self.env(env),
            cwd=self.root,
            timeout=60,
            check=False,
        )
        return Result(tuple(args), done.returncode, done.stdout, done.stderr)

    async def arun(self, *args: str, env: Mapping[str, str] | None = None) -> Result:
        return await asyncio.to_thread(self.run, *args, env=env)

    def secret_file(self, name: str, content: str) -> Path:
        path = self.root / name
        path.write_text(content, encoding="utf-8")
        path.chmod(0o600)
        return path


def concurrently(*calls: Callable[[], Result]) -> list[Result]:
    """Run independent commands side by side, results in order (each costs ~0.6 s)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]


def assert_ok(result: Result) -> None:
    assert result.returncode == 0, result
    assert result.stderr == "", result


def assert_error(result: Result, *mentions: str, code: int = 1) -> str:
    """One line on stderr starting with ``intake: ``, no stdout, no traceback."""
    assert result.returncode == code, result
    assert result.stdout == "", result
    assert "Traceback" not in result.stderr, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result
    assert lines[0].startswith("intake: "), result
    for text_ in mentions:
        assert text_ in lines[0], result
    return lines[0]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def assert_recent_date(value: str) -> None:
    day = dt.date.fromisoformat(value)
    today = dt.datetime.now(dt.UTC).date()
    assert today - dt.timedelta(days=1) <= day <= today, value


def assert_otpauth(uri: str, name: str) -> None:
    parts = urlsplit(uri)
    assert uri.startswith("otpauth://totp/"), uri
    assert unquote(parts.path).endswith(name), uri
    query = parse_qs(parts.query)
    assert re.fullmatch(r"[A-Z2-7]{16,}", query["secret"][0]), uri
    assert query["issuer"] == ["intake"], uri


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Cli:
    """An installation on SQLite or PostgreSQL (parametrized by ``database_url``)."""
    return Cli(tmp_path, database_url)


@pytest.fixture
def sqlite_cli(tmp_path: Path) -> Cli:
    """An installation on a fresh SQLite file: for checks that do not depend on the backend."""
    return Cli(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")


def init_admin(cli: Cli, name: str = "amina") -> dict[str, Any]:
    password_file = cli.secret_file("admin.pw", ADMIN_PASSWORD + "\n")
    result = cli.run("init", "--admin", name, "--password-file", str(password_file), "--json")
    assert_ok(result)
    doc: dict[str, Any] = result.json()
    return doc


def add_keyholder(cli: Cli, name: str, password: str, granter_pw: Path) -> str:
    """Invite, enrol and grant a key-holder; returns their key fingerprint."""
    token = cli.run("users", "add", name, "--role", "keyholder", "--json").json()["token"]
    pw = cli.secret_file(f"{name}.pw", password + "\n")
    fp: str = cli.run("users", "enrol", token, "--password-file", str(pw), "--json").json()[
        "key_fingerprint"
    ]
    grant = ("keys", "grant", name, "--user", "amina", "--password-file", str(granter_pw))
    assert_ok(cli.run(*grant, "--fingerprint", fp))
    return fp


async def add_reports(cli: Cli, texts: list[str]) -> list[bytes]:
    """Reports written in this process through the services, as the bot writes them."""
    settings = load_settings(cli.env({"INTAKE_RUNTIME_DIR": str(cli.root / "runtime")}))
    pinned = keyring.read_pin(settings.signing_key_pin)
    ids = []
    async with open_app(settings) as app, app.sessions() as session, session.begin():
        for text_ in texts:
            report = await reports.start_report(session, pinned)
            await reports.save_payload(
                session, report, PayloadKind.ANSWER, Plaintext(text_.encode())
            )
            ids.append(report.report_id)
    return ids


async def read_reports(cli: Cli, name: str, password: str, ids: list[bytes]) -> list[str]:
    """Each report's answer as the key-holder ``name`` opens it now (unlock, data key)."""
    settings = load_settings(cli.env({"INTAKE_RUNTIME_DIR": str(cli.root / "runtime")}))
    out = []
    async with open_app(settings) as app, app.sessions() as session:
        ring = await keyring.unlock(
            session, name, Secret(password.encode()), settings.kdf_profile.floor
        )
        for report_id in ids:
            dek = await reports.report_key(session, ring, report_id)
            [(_, _, plain)] = await reports.read_payloads(session, dek, report_id)
            out.append(plain.reveal().decode())
    return out


# --- flows on both databases ----------------------------------------------------------


async def test_init_and_keys_list(cli: Cli) -> None:
    password_file = cli.secret_file("admin.pw", ADMIN_PASSWORD + "\n")
    init = await cli.arun(
        "init", "--admin", "amina", "--password-file", str(password_file), "--json"
    )
    assert_ok(init)
    assert ADMIN_PASSWORD not in init.output
    doc = init.json()
    signing_fp = doc["signing_key"]["fingerprint"]
    org_id = doc["org_key"]["id"]
    assert FINGERPRINT.fullmatch(signing_fp), doc
    assert KEY_ID.fullmatch(org_id), doc
    assert FINGERPRINT.fullmatch(doc["org_key"]["fingerprint"]), doc
    assert doc["org_key"]["fingerprint"] != signing_fp
    assert doc["admin"]["name"] == "amina"
    assert sorted(doc["admin"]["roles"]) == ["admin", "keyholder"]
    assert FINGERPRINT.fullmatch(doc["admin"]["key_fingerprint"]), doc
    assert_otpauth(doc["admin"]["otpauth_uri"], "amina")
    warnings = doc["warnings"]
    assert isinstance(warnings, list)
    assert any("amina" in w and "only key-holder" in w for w in warnings), warnings

    # The pin: where the JSON says, read-only, and naming the printed fingerprint.
    pin = Path(doc["signing_key"]["pin"])
    assert pin == cli.pin
    assert mode(pin) == 0o444
    pin_text = read(pin)
    assert f"# fingerprint: {signing_fp}\n" in pin_text
    assert parse_pin(pin_text).fingerprint == signing_fp
    assert mode(cli.data_dir) == 0o700

    # A second init refuses, in one line, and leaves the pin alone.
    again = await cli.arun("init", "--admin", "other", "--password-file", str(password_file))
    assert_error(again, "already initialised")
    assert read(pin) == pin_text

    listed = (await cli.arun("keys", "list", "--json")).json()
    assert listed["signing_key"]["fingerprint"] == signing_fp
    [key] = listed["keys"]
    assert key["id"] == org_id
    assert key["fingerprint"] == doc["org_key"]["fingerprint"]
    assert key["state"] == "active"
    assert_recent_date(key["created"])
    assert key["holders"] == ["amina"]
    assert key["signature_valid"] is True

    table = await cli.arun("keys", "list")
    assert_ok(table)
    assert signing_fp in table.stdout
    assert org_id in table.stdout
    assert "active" in table.stdout
    assert "amina" in table.stdout
    assert "INVALID" not in table.stdout

    # An adversary with the database swaps in their own org key, signed by their own
    # signing key, and even rewrites the signing key row: the pin file still wins.
    attacker = SigningPrivateKey.generate()
    forged = OrgPrivateKey.generate().sign_public(attacker)
    engine = create_async_engine(cli.database_url)
    try:
        async with engine.begin() as connection:
            changed = await connection.execute(
                text("UPDATE org_keys SET public_key = :pk, signature = :sig"),
                {"pk": forged.public_key, "sig": forged.signature},
            )
            assert changed.rowcount == 1
            await connection.execute(
                text("UPDATE signing_keys SET public_key = :pk"), {"pk": attacker.public.raw}
            )
    finally:
        await engine.dispose()

    tampered = (await cli.arun("keys", "list", "--json")).json()
    assert tampered["signing_key"]["fingerprint"] == signing_fp
    [key] = tampered["keys"]
    assert key["fingerprint"] == forged.fingerprint
    assert key["signature_valid"] is False
    table = await cli.arun("keys", "list")
    assert_ok(table)
    assert "SIGNATURE INVALID" in table.stdout


async def test_invite_enrol_and_list_members(cli: Cli) -> None:
    admin = await asyncio.to_thread(init_admin, cli)

    bob = (
        await cli.arun("users", "add", "bob", "--role", "keyholder", "--role", "reviewer", "--json")
    ).json()
    assert bob["name"] == "bob"
    assert bob["roles"] == ["keyholder", "reviewer"]
    assert TOKEN.fullmatch(bob["token"]), bob
    assert bob["link"].endswith(f"/enrol/{bob['token']}"), bob
    assert bob["link"].startswith("http://127.0.0.1:8080/"), bob
    carol = (await cli.arun("users", "add", "carol", "--role", "reviewer", "--json")).json()
    assert carol["token"] != bob["token"]
    dave = await cli.arun("users", "add", "dave", "--role", "admin")
    assert_ok(dave)
    assert "/enrol/" in dave.stdout

    # A weak password is refused without using up the token.
    weak = cli.secret_file("weak.pw", WEAK_PASSWORD + "\n")
    refused = await cli.arun("users", "enrol", bob["token"], "--password-file", str(weak))
    assert_error(refused, "too weak")
    assert WEAK_PASSWORD not in refused.output

    bob_file = cli.secret_file("bob.pw", MEMBER_PASSWORD + "\n")
    enrol = await cli.arun(
        "users", "enrol", bob["token"], "--password-file", str(bob_file), "--json"
    )
    assert_ok(enrol)
    assert MEMBER_PASSWORD not in enrol.output
    enrolled = enrol.json()
    assert enrolled["name"] == "bob"
    assert enrolled["roles"] == ["keyholder", "reviewer"]
    assert_otpauth(enrolled["otpauth_uri"], "bob")
    assert FINGERPRINT.fullmatch(enrolled["key_fingerprint"]), enrolled
    assert enrolled["key_fingerprint"] != admin["admin"]["key_fingerprint"]

    used = await cli.arun("users", "enrol", bob["token"], "--password-file", str(bob_file))
    assert_error(used, "token")
    unknown = await cli.arun("users", "enrol", "X" * 43, "--password-file", str(bob_file))
    assert_error(unknown, "token")

    carol_file = cli.secret_file("carol.pw", REVIEWER_PASSWORD)  # no final newline
    enrol = await cli.arun(
        "users", "enrol", carol["token"], "--password-file", str(carol_file), "--json"
    )
    assert_ok(enrol)
    assert REVIEWER_PASSWORD not in enrol.output
    reviewer = enrol.json()
    assert reviewer["roles"] == ["reviewer"]
    assert reviewer["key_fingerprint"] is None
    assert_otpauth(reviewer["otpauth_uri"], "carol")

    members = {m["name"]: m for m in (await cli.arun("users", "list", "--json")).json()}
    assert set(members) == {"amina", "bob", "carol", "dave"}
    expected = {
        "amina": ("active", ["admin", "keyholder"], admin["admin"]["key_fingerprint"]),
        "bob": ("active", ["keyholder", "reviewer"], enrolled["key_fingerprint"]),
        "carol": ("active", ["reviewer"], None),
        "dave": ("pending", ["admin"], None),
    }
    for name, (state, roles, key_fingerprint) in expected.items():
        member = members[name]
        assert member["state"] == state, member
        assert member["roles"] == roles, member
        assert member["key_fingerprint"] == key_fingerprint, member
        assert_recent_date(member["created"])


async def test_revoke_rotate_rewrap_retire(cli: Cli) -> None:
    init = await asyncio.to_thread(init_admin, cli)
    old_key = init["org_key"]
    admin_pw = cli.root / "admin.pw"
    me = ("--user", "amina", "--password-file", str(admin_pw))
    farid_fp = await asyncio.to_thread(add_keyholder, cli, "farid", MEMBER_PASSWORD, admin_pw)
    texts = [f"account {i}" for i in range(5)]
    ids = await add_reports(cli, texts)
    assert await read_reports(cli, "farid", MEMBER_PASSWORD, ids) == texts

    # Revoke: farid's password still unlocks his account, but it opens no report.
    revoked = (await cli.arun("keys", "revoke", "farid", *me, "--json")).json()
    assert revoked["name"] == "farid"
    assert (revoked["org_grants"], revoked["signing_grant"]) == (1, True)
    [warning] = revoked["warnings"]
    for advice in ("kept copies", "intake keys rotate", "intake keys rewrap", "not available"):
        assert advice in warning, warning
    with pytest.raises(DecryptionError):
        await read_reports(cli, "farid", MEMBER_PASSWORD, ids[:1])
    [key] = (await cli.arun("keys", "list", "--json")).json()["keys"]
    assert key["holders"] == ["amina"]
    # Granted again (after checking his fingerprint), he reads them again.
    grant = ("keys", "grant", "farid", *me)
    assert_error(await cli.arun(*grant, "--fingerprint", init["admin"]["key_fingerprint"]))
    assert_ok(await cli.arun(*grant, "--fingerprint", farid_fp))
    assert await read_reports(cli, "farid", MEMBER_PASSWORD, ids) == texts
    again = await cli.arun("keys", "revoke", "farid", *me)
    assert_ok(again)
    assert "Revoked farid" in again.stdout
    assert "intake keys rotate" in again.stdout
    assert "intake keys rewrap" in again.stdout
    farid_pw = cli.root / "farid.pw"
    errors = await asyncio.gather(
        cli.arun("keys", "revoke", "amina", *me),
        cli.arun("keys", "revoke", "nobody", *me),
        cli.arun("keys", "revoke", "amina", "--user", "farid", "--password-file", str(farid_pw)),
        cli.arun("keys", "rotate", "--user", "farid", "--password-file", str(farid_pw)),
        cli.arun("keys", "rotate", "--user", "amina", "--password-file", str(farid_pw)),
    )
    assert_error(errors[0], "your own")
    assert_error(errors[1], "no member named nobody")
    assert_error(errors[2], "only holder")
    assert_error(errors[3], "farid does not hold the signing key")
    assert_error(errors[4], "wrong password")

    # Rotate: a new current key, for amina alone now; five reports wait for re-wrap.
    rotated = (await cli.arun("keys", "rotate", *me, "--json")).json()
    assert KEY_ID.fullmatch(rotated["id"]), rotated
    assert FINGERPRINT.fullmatch(rotated["fingerprint"]), rotated
    assert rotated["id"] != old_key["id"]
    assert rotated["previous"] == {"id": old_key["id"], "fingerprint": old_key["fingerprint"]}
    assert rotated["granted_to"] == ["amina"]
    assert rotated["to_rewrap"] == 5
    [late] = await add_reports(cli, ["after the rotation"])
    listed = {k["id"]: k for k in (await cli.arun("keys", "list", "--json")).json()["keys"]}
    assert {k: v["current"] for k, v in listed.items()} == {
        rotated["id"]: True,
        old_key["id"]: False,
    }
    assert listed[rotated["id"]]["reports"] == 1  # the late report alone, so far
    assert listed[old_key["id"]]["reports"] == 5
    table = (await cli.arun("keys", "list")).stdout
    assert f"* {rotated['id']}" in table, table
    assert f"  {old_key['id']}" in table, table

    # Retire: refused for the current key, and for the old one until the re-wrap is done.
    early, current = await asyncio.gather(
        cli.arun("keys", "retire", old_key["id"], *me),
        cli.arun("keys", "retire", rotated["fingerprint"], *me),
    )
    assert_error(early, "5 reports still depend only on key", "intake keys rewrap")
    assert_error(current, "current key cannot be retired")

    rewrapped = await cli.arun("keys", "rewrap", *me, "--batch", "2", "--json")
    assert rewrapped.json() == {
        "moved": 5,
        "jobs": 1,
        "left": 0,
        "retirable": [{"id": old_key["id"], "fingerprint": old_key["fingerprint"]}],
    }
    nothing = await cli.arun("keys", "rewrap", *me)
    assert_ok(nothing)
    assert nothing.stdout.startswith("nothing to re-wrap"), nothing
    assert f"intake keys retire {old_key['id']}" in nothing.stdout

    retired = (await cli.arun("keys", "retire", old_key["fingerprint"], *me, "--json")).json()
    assert retired == {
        "id": old_key["id"],
        "fingerprint": old_key["fingerprint"],
        "state": "retired",
        "sealed_copies_removed": 5,
    }
    listed = {k["id"]: k for k in (await cli.arun("keys", "list", "--json")).json()["keys"]}
    assert listed[old_key["id"]]["state"] == "retired"
    assert listed[old_key["id"]]["holders"] == []
    assert listed[old_key["id"]]["reports"] == 0
    assert listed[rotated["id"]]["reports"] == 6
    assert await read_reports(cli, "amina", ADMIN_PASSWORD, [*ids, late]) == [
        *texts,
        "after the rotation",
    ]
    twice = await cli.arun("keys", "retire", old_key["id"].upper(), *me)
    assert_error(twice, "retired already")


async def test_migrate_then_init(cli: Cli) -> None:
    head = head_revision()
    first = await cli.arun("migrate")
    assert_ok(first)
    assert head in first.stdout
    assert "was empty" in first.stdout
    assert mode(cli.data_dir) == 0o700

    second = await cli.arun("migrate")
    assert_ok(second)
    assert second.stdout == f"schema at {head}\n"
    assert (await cli.arun("migrate", "--json")).json() == {"from": head, "to": head}

    # An operator may migrate first: init still works on the migrated, keyless database.
    doc = await asyncio.to_thread(init_admin, cli)
    assert doc["admin"]["name"] == "amina"


# --- output for people ----------------------------------------------------------------


def test_init_prints_fingerprints_and_otpauth_uri(sqlite_cli: Cli) -> None:
    password_file = sqlite_cli.secret_file("admin.pw", ADMIN_PASSWORD + "\n")
    init = sqlite_cli.run("init", "--admin", "amina", "--password-file", str(password_file))
    assert_ok(init)
    assert ADMIN_PASSWORD not in init.output
    signing = re.search(rf"Signing key:\s+({FINGERPRINT.pattern})", init.stdout)
    assert signing is not None, init
    assert re.search(rf"Org key:\s+{FINGERPRINT.pattern}", init.stdout), init
    assert re.search(r"^\s*otpauth://totp/\S+$", init.stdout, re.MULTILINE), init
    assert "WARNING" in init.stdout
    assert str(sqlite_cli.pin) in init.stdout

    keys = sqlite_cli.run("keys", "list")
    assert_ok(keys)
    assert keys.stdout.startswith(f"Pinned signing key: {signing.group(1)}\n"), keys


# --- bad input (SQLite only: independent commands run side by side) ----------------------


def test_init_password_file_unusable(sqlite_cli: Cli) -> None:
    cases = {
        sqlite_cli.root / "missing.pw": "does not exist",
        sqlite_cli.secret_file("empty.pw", ""): "is empty",
        sqlite_cli.secret_file("blank.pw", "\n" + ADMIN_PASSWORD): "is empty",
    }
    results = concurrently(
        *(
            partial(sqlite_cli.run, "init", "--admin", "amina", "--password-file", str(path))
            for path in cases
        )
    )
    for (path, mention), result in zip(cases.items(), results, strict=True):
        assert_error(result, mention, str(path))
    assert not sqlite_cli.pin.exists()


def test_init_weak_password_refused_then_strong_works(sqlite_cli: Cli) -> None:
    weak = sqlite_cli.secret_file("weak.pw", WEAK_PASSWORD + "\n")
    result = sqlite_cli.run("init", "--admin", "amina", "--password-file", str(weak))
    assert_error(result, "too weak")
    assert WEAK_PASSWORD not in result.output
    assert not sqlite_cli.pin.exists()
    assert init_admin(sqlite_cli)["admin"]["name"] == "amina"


def test_init_without_a_terminal_needs_arguments(sqlite_cli: Cli) -> None:
    password_file = sqlite_cli.secret_file("admin.pw", ADMIN_PASSWORD + "\n")
    no_name, no_password = concurrently(
        partial(sqlite_cli.run, "init", "--password-file", str(password_file)),
        partial(sqlite_cli.run, "init", "--admin", "amina"),
    )
    assert_error(no_name, "use --admin")
    assert_error(no_password, "use --password-file")
    assert not sqlite_cli.pin.exists()


def test_member_input_errors(sqlite_cli: Cli) -> None:
    init_admin(sqlite_cli)
    bad_names = ["b ob", "b/ob", "../bob", "x" * 65, ""]
    existing, *invalid = concurrently(
        partial(sqlite_cli.run, "users", "add", "amina", "--role", "reviewer"),
        *(
            partial(sqlite_cli.run, "users", "add", name, "--role", "reviewer")
            for name in bad_names
        ),
    )
    assert_error(existing, "amina", "exists")
    for result in invalid:
        assert_error(result, "name")

    erin = sqlite_cli.run("users", "add", "erin", "--role", "keyholder", "--json").json()
    missing = sqlite_cli.root / "nothing.pw"
    empty = sqlite_cli.secret_file("empty.pw", "")
    no_file, empty_file = concurrently(
        *(
            partial(sqlite_cli.run, "users", "enrol", erin["token"], "--password-file", str(path))
            for path in (missing, empty)
        )
    )
    assert_error(no_file, "does not exist")
    assert_error(empty_file, "is empty")

    # Nothing above created an account or used up erin's token.
    members = {m["name"]: m for m in sqlite_cli.run("users", "list", "--json").json()}
    assert set(members) == {"amina", "erin"}
    assert members["erin"]["state"] == "pending"
    assert members["erin"]["key_fingerprint"] is None


def test_commands_before_init(sqlite_cli: Cli) -> None:
    commands = [("keys", "list"), ("users", "list"), ("users", "add", "bob", "--role", "reviewer")]
    for result in concurrently(*(partial(sqlite_cli.run, *args) for args in commands)):
        assert_error(result, "run 'intake init'")


def test_invalid_settings_and_unreachable_database(sqlite_cli: Cli) -> None:
    cases = {
        "INTAKE_ADMIN_PORT": "abc",
        "INTAKE_ADMIN_PROT": "8080",  # misspelt: unknown settings are errors, not ignored
        "INTAKE_KDF_PROFILE": "fast",
        "INTAKE_DATABASE_URL": "mysql://db/intake",
    }
    unreachable = {"INTAKE_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/intake"}
    *invalid, down = concurrently(
        *(partial(sqlite_cli.run, "users", "list", env={k: v}) for k, v in cases.items()),
        partial(sqlite_cli.run, "keys", "list", env=unreachable),
    )
    for name, result in zip(cases, invalid, strict=True):
        assert_error(result, name)
    assert_error(down)


def test_usage_errors(sqlite_cli: Cli) -> None:
    commands = [
        ("users", "add", "bob"),  # missing --role
        ("users", "add", "bob", "--role", "boss"),
        ("users", "enrol", "sometoken"),  # missing --password-file
        ("frobnicate",),
        ("users", "frobnicate"),
        (),
        ("keys", "rewrap", "--user", "amina", "--password-file", "pw", "--batch", "0"),
        ("keys", "rewrap", "--user", "amina", "--password-file", "pw", "--batch", "x"),
        ("keys", "retire", "--user", "amina", "--password-file", "pw"),  # which key?
        ("keys", "rotate", "--user", "amina"),  # missing --password-file
    ]
    for result in concurrently(*(partial(sqlite_cli.run, *args) for args in commands)):
        assert_error(result, "usage", code=2)
    assert not sqlite_cli.data_dir.exists()


# --- help and secrets in argv ---------------------------------------------------------


def test_help(sqlite_cli: Cli) -> None:
    cases: dict[tuple[str, ...], set[str]] = {
        (): set(),
        ("init",): {"--admin", "--password-file", "--json"},
        ("keys", "list"): {"--json"},
        ("keys", "revoke"): {"--user", "--password-file", "--json"},
        ("keys", "rotate"): {"--user", "--password-file", "--json"},
        ("keys", "rewrap"): {"--user", "--password-file", "--json", "--batch"},
        ("keys", "retire"): {"--user", "--password-file", "--json"},
        ("users", "add"): {"--role", "--json"},
        ("users", "enrol"): {"--password-file", "--json"},
    }
    results = concurrently(*(partial(sqlite_cli.run, *args, "--help") for args in cases))
    for (args, options), result in zip(cases.items(), results, strict=True):
        assert_ok(result)
        assert result.stdout.startswith(" ".join(["usage: intake", *args])), result
        offered = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", result.stdout))
        assert options <= offered, result
        # Secrets come from files: no option takes a password, secret or key in argv.
        secret_options = {o for o in offered if re.search("pass|secret|key", o)}
        assert secret_options <= {"--password-file"}, result
    assert not sqlite_cli.data_dir.exists()


def test_password_in_argv_is_a_usage_error(sqlite_cli: Cli) -> None:
    result = sqlite_cli.run("init", "--admin", "amina", "--password", ADMIN_PASSWORD)
    assert ADMIN_PASSWORD not in result.output
    assert_error(result, "usage", code=2)


def test_unencodable_output_is_no_traceback(sqlite_cli: Cli) -> None:
    password_file = sqlite_cli.secret_file("admin.pw", ADMIN_PASSWORD + "\n")
    result = sqlite_cli.run(
        "init",
        "--admin",
        "İlkin",
        "--password-file",
        str(password_file),
        env={"PYTHONIOENCODING": "ascii"},
    )
    assert "Traceback" not in result.stderr, result
    assert len(result.stderr.splitlines()) <= 1, result


def test_the_test_kdf_profile_never_runs_against_real_telegram(sqlite_cli: Cli) -> None:
    """Argon2id at its minimum is for tests; with the real Bot API the bot refuses."""
    password_file = sqlite_cli.secret_file("admin.pw", ADMIN_PASSWORD + "\n")
    assert_ok(sqlite_cli.run("init", "--admin", "amina", "--password-file", str(password_file)))
    result = sqlite_cli.run(
        "bot", env={"INTAKE_TELEGRAM_TOKEN": "123456789:AAE-real-looking-token-xxxxxxxxxxxxx"}
    )
    assert_error(result, "insecure-test")


def test_the_second_factor_is_shown_as_a_qr_code_and_an_address(sqlite_cli: Cli) -> None:
    password_file = sqlite_cli.secret_file("admin.pw", ADMIN_PASSWORD + "\n")
    result = sqlite_cli.run("init", "--admin", "amina", "--password-file", str(password_file))
    assert_ok(result)
    lines = result.stdout.splitlines()
    qr = [line for line in lines if set(line) <= set("█▀▄ ") and "█" in line]
    assert len(qr) >= 15, result  # a QR code of at least 21 modules, two rows a line
    assert len({len(line) for line in qr}) == 1, result  # a square block, not stray text
    assert any(line.strip().startswith("otpauth://totp/intake:amina?") for line in lines)


def test_keys_grant_checks_the_fingerprint(sqlite_cli: Cli) -> None:
    admin_pw = sqlite_cli.secret_file("admin.pw", ADMIN_PASSWORD + "\n")
    assert_ok(sqlite_cli.run("init", "--admin", "amina", "--password-file", str(admin_pw)))
    token = sqlite_cli.run("users", "add", "farid", "--role", "keyholder", "--json").json()["token"]
    farid_pw = sqlite_cli.secret_file("farid.pw", "farid has his own long passphrase\n")
    enrolled = sqlite_cli.run("users", "enrol", token, "--password-file", str(farid_pw), "--json")
    fingerprint = enrolled.json()["key_fingerprint"]
    grant = ("keys", "grant", "farid", "--user", "amina", "--password-file", str(admin_pw))

    assert_error(sqlite_cli.run(*grant, "--fingerprint", "0000 1111"), "does not match")
    done = sqlite_cli.run(*grant, "--fingerprint", fingerprint, "--json").json()
    assert done["fingerprint"] == fingerprint
    assert (len(done["org_keys"]), done["signing_key"]) == (1, True)
    [key] = sqlite_cli.run("keys", "list", "--json").json()["keys"]
    assert key["holders"] == ["amina", "farid"]


def test_rewrap_progress_and_two_rotations_in_a_row(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    first = init_admin(cli)["org_key"]
    me = ("--user", "amina", "--password-file", str(cli.root / "admin.pw"))
    texts = [f"report {i}" for i in range(5)]
    ids = asyncio.run(add_reports(cli, texts))
    middle = cli.run("keys", "rotate", *me, "--json").json()
    last = cli.run("keys", "rotate", *me, "--json").json()
    assert middle["to_rewrap"] == 5
    assert last["previous"]["id"] == middle["id"]
    assert last["to_rewrap"] == 0  # the reports use the first key, not the middle one
    # No report depends on the middle key, but the open re-wrap to it would move some there.
    assert_error(
        cli.run("keys", "retire", middle["id"], *me), "re-wrap to key", "intake keys rewrap"
    )

    # Not a terminal, no --json: one progress line per batch on stderr, the summary on stdout.
    done = cli.run("keys", "rewrap", *me, "--batch", "2")
    assert done.returncode == 0, done
    assert done.stderr.splitlines() == [
        "re-wrap: 0/5 reports",
        "re-wrap: 2/5 reports",
        "re-wrap: 4/5 reports",
        "re-wrap: 5/5 reports",
        # the second job, from the middle key to the last: the same five again
        "re-wrap: 0/5 reports",
        "re-wrap: 2/5 reports",
        "re-wrap: 4/5 reports",
        "re-wrap: 5/5 reports",
    ], done
    assert done.stdout.splitlines()[0] == "re-wrapped 10 report(s) in 2 job(s); 0 left; done"
    for key in (first, middle):
        assert f"intake keys retire {key['id']}" in done.stdout, done
    for key in (first, middle):
        assert_ok(cli.run("keys", "retire", key["id"], *me))
    listed = {k["id"]: k for k in cli.run("keys", "list", "--json").json()["keys"]}
    assert {k: (v["state"], v["reports"]) for k, v in listed.items()} == {
        first["id"]: ("retired", 0),
        middle["id"]: ("retired", 0),
        last["id"]: ("active", 5),
    }
    assert asyncio.run(read_reports(cli, "amina", ADMIN_PASSWORD, ids)) == texts


def test_rewrap_draws_a_bar_on_a_terminal(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    init_admin(cli)
    me = ("--user", "amina", "--password-file", str(cli.root / "admin.pw"))
    asyncio.run(add_reports(cli, ["a", "b", "c"]))
    assert_ok(cli.run("keys", "rotate", *me))
    controller, terminal = os.openpty()
    try:
        done = subprocess.run(
            [*COMMAND, "keys", "rewrap", *me, "--batch", "1", "--json"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=terminal,
            env=cli.env(),
            cwd=cli.root,
            timeout=60,
            check=False,
        )
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)
    assert done.returncode == 0, drawn
    assert json.loads(done.stdout)["moved"] == 3  # stdout holds the JSON alone
    frames = drawn.decode().replace("\r\n", "\n").split("\r")
    assert frames[0] == "", drawn  # every frame starts by returning to the line's start
    assert frames[1].startswith("re-wrap [" + "-" * 30 + "] 0/3"), drawn
    assert frames[-1] == "re-wrap [" + "#" * 30 + "] 3/3 100%\n", drawn
    assert len(frames) == 5, drawn  # 0, 1, 2, 3 of 3


def test_enrol_prints_recovery_codes_once(sqlite_cli: Cli) -> None:
    init_admin(sqlite_cli)
    invite = sqlite_cli.run("users", "add", "bob", "--role", "reviewer", "--json").json()
    password = sqlite_cli.secret_file("bob.pw", MEMBER_PASSWORD + "\n")
    enrolled = sqlite_cli.run(
        "users", "enrol", invite["token"], "--password-file", str(password), "--json"
    ).json()
    codes = enrolled["recovery_codes"]
    assert len(codes) == 10, codes
    assert len(set(codes)) == 10, codes
    assert all(re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}", code) for code in codes), codes


def test_disable_and_reenrol_from_the_console(sqlite_cli: Cli) -> None:
    admin = init_admin(sqlite_cli)
    invite = sqlite_cli.run("users", "add", "bob", "--role", "keyholder", "--json").json()
    password = sqlite_cli.secret_file("bob.pw", MEMBER_PASSWORD + "\n")
    first = sqlite_cli.run(
        "users", "enrol", invite["token"], "--password-file", str(password), "--json"
    ).json()
    admin_password = sqlite_cli.secret_file("amina.pw", ADMIN_PASSWORD + "\n")
    assert_ok(
        sqlite_cli.run(
            "keys",
            "grant",
            "bob",
            "--user",
            "amina",
            "--password-file",
            str(admin_password),
            "--fingerprint",
            first["key_fingerprint"],
        )
    )
    disabled = sqlite_cli.run("users", "disable", "bob", "--json").json()
    assert disabled == {"name": "bob", "state": "disabled"}
    members = {m["name"]: m for m in sqlite_cli.run("users", "list", "--json").json()}
    assert members["bob"]["state"] == "disabled"

    again = sqlite_cli.run("users", "reenrol", "bob", "--json").json()
    assert again["link"].endswith(f"/enrol/{again['token']}")
    members = {m["name"]: m for m in sqlite_cli.run("users", "list", "--json").json()}
    assert members["bob"]["state"] == "pending"
    assert members["bob"]["key_fingerprint"] is None
    keys = sqlite_cli.run("keys", "list", "--json").json()
    holders = {name for key in keys["keys"] for name in key["holders"]}
    assert holders == {"amina"}, keys  # the old grants went with the old key pair
    renewed = sqlite_cli.run(
        "users", "enrol", again["token"], "--password-file", str(password), "--json"
    ).json()
    assert renewed["key_fingerprint"] != first["key_fingerprint"]
    assert admin["admin"]["name"] == "amina"
    assert_error(sqlite_cli.run("users", "disable", "nobody"), "nobody")
    assert_error(sqlite_cli.run("users", "reenrol", "nobody"), "nobody")


def test_admin_serves_until_interrupted(sqlite_cli: Cli) -> None:
    init_admin(sqlite_cli)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [*COMMAND, "admin"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=sqlite_cli.env({"INTAKE_ADMIN_PORT": str(port)}),
        cwd=sqlite_cli.root,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == f"admin listening on http://127.0.0.1:{port}", line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as page:
            body = page.read().decode()
            assert page.status == 200
            assert page.headers["Cache-Control"] == "no-store"
        assert 'name="password"' in body
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        _, errors = process.communicate(timeout=10)
        assert "Traceback" not in errors
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

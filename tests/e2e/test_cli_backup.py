"""``intake keys export-backup`` and ``import-backup`` as a real subprocess: the file is new,
0600 and never overwritten, says which keys it holds; a key-holder enrolled later recovers
the keys from it; errors are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import (
    ADMIN_PASSWORD,
    FINGERPRINT,
    MEMBER_PASSWORD,
    Cli,
    assert_error,
    assert_ok,
    init_admin,
    mode,
)

pytestmark = pytest.mark.slow

PASSPHRASE = "quartz heron mortgage clarinet sleepy volcano 1847 drift"


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Cli:
    return Cli(tmp_path, database_url)


@pytest.fixture
def sqlite_cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")


def _enrol_keyholder(cli: Cli, name: str) -> None:
    token = cli.run("users", "add", name, "--role", "keyholder", "--json").json()["token"]
    password = cli.secret_file(f"{name}.pw", MEMBER_PASSWORD + "\n")
    assert_ok(cli.run("users", "enrol", token, "--password-file", str(password)))


def _export(cli: Cli, out: str, *extra: str, passphrase: str = PASSPHRASE) -> tuple[str, ...]:
    return (
        "keys",
        "export-backup",
        "--user",
        "amina",
        "--password-file",
        str(cli.secret_file("admin.pw", ADMIN_PASSWORD + "\n")),
        "--passphrase-file",
        str(cli.secret_file("backup.pp", passphrase + "\n")),
        "--out",
        str(cli.root / out),
        *extra,
    )


def _import(cli: Cli, backup: str, passphrase: str = PASSPHRASE) -> tuple[str, ...]:
    return (
        "keys",
        "import-backup",
        str(cli.root / backup),
        "--user",
        "farid",
        "--password-file",
        str(cli.root / "farid.pw"),
        "--passphrase-file",
        str(cli.secret_file("import.pp", passphrase + "\n")),
    )


async def test_export_and_recover(cli: Cli) -> None:
    admin = init_admin(cli)
    org_id = admin["org_key"]["id"]
    exported = cli.run(*_export(cli, "keys.backup", "--json")).json()
    backup = cli.root / "keys.backup"
    assert mode(backup) == 0o600
    assert exported["file"] == str(backup)
    assert exported["signing_key"]["fingerprint"] == admin["signing_key"]["fingerprint"]
    assert exported["org_keys"] == [
        {"id": org_id, "fingerprint": admin["org_key"]["fingerprint"], "state": "current"}
    ]
    assert any("retired" in warning for warning in exported["warnings"])
    before = backup.read_bytes()

    assert_error(cli.run(*_export(cli, "keys.backup")), "exists", "overwrite")
    assert backup.read_bytes() == before

    _enrol_keyholder(cli, "farid")
    assert_error(cli.run(*_import(cli, "keys.backup", "not the passphrase")), "wrong passphrase")
    imported = cli.run(*_import(cli, "keys.backup"), "--json").json()
    assert imported == {"name": "farid", "org_keys": [org_id], "signing_key": True, "skipped": []}
    [key] = cli.run("keys", "list", "--json").json()["keys"]
    assert key["holders"] == ["amina", "farid"]

    again = cli.run(*_import(cli, "keys.backup"))
    assert_ok(again)
    assert "farid already holds every usable key" in again.stdout


def test_text_output_and_errors(sqlite_cli: Cli) -> None:
    init_admin(sqlite_cli)
    done = sqlite_cli.run(*_export(sqlite_cli, "keys.backup"))
    assert_ok(done)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Key backup written to ")
    assert FINGERPRINT.search(lines[1])
    assert "signing key" in lines[1]
    assert "org key" in lines[2]
    assert "current" in lines[2]
    assert lines[-1].startswith("WARNING: Store this file offline")
    assert "even after they are retired" in lines[-1]

    weak = sqlite_cli.run(*_export(sqlite_cli, "weak.backup", passphrase="zebra cabinet"))
    assert_error(weak, "backup passphrase is too weak", "needs 4")
    assert not (sqlite_cli.root / "weak.backup").exists()
    same = sqlite_cli.run(*_export(sqlite_cli, "same.backup", passphrase=ADMIN_PASSWORD))
    assert_error(same, "must differ from your password")
    assert not (sqlite_cli.root / "same.backup").exists()
    nowhere = sqlite_cli.run(*_export(sqlite_cli, "missing/dir/keys.backup"))
    assert_error(nowhere, "cannot create")

    _enrol_keyholder(sqlite_cli, "farid")
    assert_error(sqlite_cli.run(*_import(sqlite_cli, "absent.backup")), "does not exist")
    (sqlite_cli.root / "junk.backup").write_bytes(b"intake key backup 1\nnot really")
    assert_error(sqlite_cli.run(*_import(sqlite_cli, "junk.backup")), "cannot open the backup")
    imported = sqlite_cli.run(*_import(sqlite_cli, "keys.backup"))
    assert_ok(imported)
    assert imported.stdout.startswith("Granted farid: org key ")
    assert "the signing key" in imported.stdout

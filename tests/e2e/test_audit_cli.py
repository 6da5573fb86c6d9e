"""``intake audit``: verify the chain, export a signed head, catch a cut-off tail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from intake_bot.storage.db import create_engine
from intake_bot.storage.models import AuditEntry, AuditHead

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple orbit"


class Intake:
    """The real command in a subprocess, on one installation."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.cwd = tmp_path
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
        self.env |= {
            "INTAKE_DATA_DIR": str(tmp_path / "data"),
            "INTAKE_DATABASE_URL": database_url,
            "INTAKE_KDF_PROFILE": "insecure-test",
        }
        self.password = tmp_path / "pw"
        self.password.write_text(PASSWORD + "\n", encoding="utf-8")

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        script = Path(sys.executable).with_name("intake")
        return subprocess.run(
            [str(script), *args],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _one_line_error(done: subprocess.CompletedProcess[str], mention: str) -> None:
    assert done.returncode == 1, done
    assert done.stdout == "", done
    assert done.stderr.startswith("intake: error: "), done
    assert done.stderr.count("\n") == 1, done
    assert mention in done.stderr, done


async def _cut_tail(database_url: str, keep: int) -> None:
    """What a careful adversary does: delete the newest entries and rewind the head."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(delete(AuditEntry).where(AuditEntry.seq > keep))
            last = (
                await connection.execute(select(AuditEntry.hash).where(AuditEntry.seq == keep))
            ).scalar_one()
            await connection.execute(update(AuditHead).values(seq=keep, hash=last))
    finally:
        await engine.dispose()


async def test_an_exported_head_catches_a_cut_off_tail(tmp_path: Path, database_url: str) -> None:
    intake = Intake(tmp_path, database_url)
    assert (
        intake("init", "--admin", "amina", "--password-file", str(intake.password)).returncode == 0
    )
    head_file = tmp_path / "head.json"
    exported = intake(
        "audit",
        "export-head",
        "--user",
        "amina",
        "--password-file",
        str(intake.password),
        "--out",
        str(head_file),
        "--json",
    )
    assert exported.returncode == 0, exported
    seq = json.loads(exported.stdout)["seq"]
    assert seq == 2  # init, then the export itself
    assert intake("users", "add", "bob", "--role", "reviewer").returncode == 0

    fine = intake("audit", "verify", "--head", str(head_file), "--json")
    assert fine.returncode == 0, fine
    assert json.loads(fine.stdout) | {"hash": ""} == {
        "ok": True,
        "seq": 3,
        "hash": "",
        "checked_head": True,
    }

    await _cut_tail(database_url, keep=1)
    assert intake("audit", "verify").returncode == 0  # the chain alone cannot tell
    _one_line_error(intake("audit", "verify", "--head", str(head_file)), "exported head")


async def test_a_forged_or_foreign_head_is_refused(tmp_path: Path, database_url: str) -> None:
    intake = Intake(tmp_path, database_url)
    assert (
        intake("init", "--admin", "amina", "--password-file", str(intake.password)).returncode == 0
    )
    head_file = tmp_path / "head.json"
    assert (
        intake(
            "audit",
            "export-head",
            "--user",
            "amina",
            "--password-file",
            str(intake.password),
            "--out",
            str(head_file),
        ).returncode
        == 0
    )
    head = json.loads(head_file.read_text(encoding="utf-8"))
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(head | {"hash": "00" * 32}), encoding="utf-8")
    _one_line_error(intake("audit", "verify", "--head", str(forged)), "signature")
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json", encoding="utf-8")
    _one_line_error(intake("audit", "verify", "--head", str(garbage)), "not an exported audit head")


def test_only_a_keyholder_with_the_right_password_signs(tmp_path: Path) -> None:
    intake = Intake(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")
    assert (
        intake("init", "--admin", "amina", "--password-file", str(intake.password)).returncode == 0
    )
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password at all\n", encoding="utf-8")
    head_file = tmp_path / "head.json"
    out = str(head_file)
    refused = intake(
        "audit", "export-head", "--user", "amina", "--password-file", str(wrong), "--out", out
    )
    _one_line_error(refused, "wrong password")
    unknown = intake(
        "audit",
        "export-head",
        "--user",
        "nobody",
        "--password-file",
        str(intake.password),
        "--out",
        out,
    )
    assert unknown.stderr == refused.stderr  # the same words: no name is confirmed
    assert not head_file.exists()

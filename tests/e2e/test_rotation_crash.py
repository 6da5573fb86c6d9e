"""Crash safety of ``intake keys rewrap``: SIGKILLed at random points, then run to its
end, on SQLite and PostgreSQL. Nothing is lost and nothing decrypts wrongly: every report's
data key opens with the new org key and every payload is what was written; the job's count
matches the reports moved at every stop; the old key retires cleanly afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from intake_bot.bootstrap import open_app
from intake_bot.config import Settings, load_settings
from intake_bot.crypto import (
    EncryptedPayload,
    PayloadContext,
    PayloadKind,
    Plaintext,
    SealedDataKey,
    Secret,
    decrypt_payload,
    open_data_key,
)
from intake_bot.services import keyring, reports
from intake_bot.storage import keys as key_repo
from intake_bot.storage.models import (
    KeyJob,
    OrgKeyGrant,
    Payload,
    ReportKey,
    ReportPrimaryKey,
    ReportState,
)

pytestmark = pytest.mark.slow

PASSWORD = "plum oyster canal quietly lanterns 7"
REPORTS = 1500
BATCH = 5
KILLS = 5

_SCRIPT = Path(sys.executable).with_name("intake")
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "intake_bot.cli"]


class Installation:
    def __init__(self, root: Path, database_url: str) -> None:
        self.root = root
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(root),
            "LANG": "C.UTF-8",
            "INTAKE_DATA_DIR": str(root / "data"),
            "INTAKE_DATABASE_URL": database_url,
            "INTAKE_KDF_PROFILE": "insecure-test",
            "INTAKE_RUNTIME_DIR": str(root / "runtime"),
        }
        self.password = root / "admin.pw"
        self.password.write_text(PASSWORD + "\n", encoding="utf-8")
        self.password.chmod(0o600)
        self.me = ("--user", "amina", "--password-file", str(self.password))

    @property
    def settings(self) -> Settings:
        return load_settings(self.env)

    def run(self, *args: str) -> Any:
        done = subprocess.run(
            [*COMMAND, *args, "--json"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.root,
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stderr) == (0, ""), (args, done.stdout, done.stderr)
        return json.loads(done.stdout)

    def start_rewrap(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*COMMAND, "keys", "rewrap", *self.me, "--batch", str(BATCH)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=self.root,
        )


def _kill_soon(site: Installation, delay: float) -> str:
    """Start a re-wrap, wait until it works (its first progress line), SIGKILL it
    ``delay`` seconds later; returns that first line."""
    process = site.start_rewrap()
    assert process.stderr is not None
    first = process.stderr.readline()
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    return first


async def _write_reports(site: Installation) -> dict[bytes, tuple[PayloadKind, str]]:
    """REPORTS reports (a fifth of them drafts), one payload each, in a few transactions."""
    settings = site.settings
    pinned = keyring.read_pin(settings.signing_key_pin)
    written: dict[bytes, tuple[PayloadKind, str]] = {}
    async with open_app(settings) as app:
        for start in range(0, REPORTS, 500):
            async with app.sessions() as session, session.begin():
                for i in range(start, min(start + 500, REPORTS)):
                    draft = i % 5 == 0
                    state = ReportState.DRAFT if draft else ReportState.SUBMITTED
                    kind = PayloadKind.DRAFT_STATE if draft else PayloadKind.ANSWER
                    report = await reports.start_report(session, pinned, state=state)
                    text = f"report {i}: " + os.urandom(12).hex()
                    await reports.save_payload(session, report, kind, Plaintext(text.encode()))
                    written[report.report_id] = (kind, text)
    return written


async def _state(site: Installation, old: bytes) -> tuple[int, int]:
    """(reports still using the old key, the job's count of reports moved)."""
    async with open_app(site.settings) as app, app.sessions() as session:
        left = await key_repo.depending_only_on(session, old)
        done = await session.scalar(select(KeyJob.done))
    return left, int(done or 0)


async def test_rewrap_survives_sigkill(tmp_path: Path, database_url: str) -> None:
    # The kill times are random; REWRAP_CRASH_SEED replays a failed run (its seed is in
    # every assertion message).
    seed = int(os.environ.get("REWRAP_CRASH_SEED") or random.randrange(1_000_000))  # noqa: S311
    rng = random.Random(seed)  # noqa: S311  # timing, not secrets
    site = Installation(tmp_path, database_url)
    init = site.run("init", "--admin", "amina", "--password-file", str(site.password))
    old = bytes.fromhex(init["org_key"]["id"])
    written = await _write_reports(site)
    rotated = site.run("keys", "rotate", *site.me)
    new = bytes.fromhex(rotated["id"])
    assert rotated["to_rewrap"] == REPORTS

    left = REPORTS
    stopped_midway = 0
    for _ in range(KILLS):
        first = await asyncio.to_thread(_kill_soon, site, rng.uniform(0.0, 0.4))
        assert first.startswith("re-wrap: "), (seed, first)
        now_left, moved = await _state(site, old)
        # Whatever was committed is counted, and nothing was counted twice or lost.
        assert now_left + moved == REPORTS, (seed, now_left, moved)
        assert now_left <= left, seed
        stopped_midway += 0 < now_left < left
        left = now_left
    assert stopped_midway >= KILLS // 2, (seed, f"only {stopped_midway} kills landed mid-run")

    finished = site.run("keys", "rewrap", *site.me)
    assert (finished["moved"], finished["left"], finished["jobs"]) == (left, 0, 1), seed
    async with open_app(site.settings) as app, app.sessions() as session:
        [job] = list(await session.scalars(select(KeyJob)))
        assert (job.done, job.finished_on is not None) == (REPORTS, True)

    retired = site.run("keys", "retire", old.hex(), *site.me)
    assert retired["sealed_copies_removed"] == REPORTS

    settings = site.settings
    async with open_app(settings) as app, app.sessions() as session:
        for table in (ReportKey, OrgKeyGrant, ReportPrimaryKey):
            count = await session.scalar(
                select(func.count()).select_from(table).where(table.org_key_id == old)
            )
            assert count == 0, table.__tablename__
        primaries = dict(
            (
                await session.execute(
                    select(ReportPrimaryKey.report_id, ReportPrimaryKey.org_key_id)
                )
            ).all()
        )
        assert primaries == dict.fromkeys(written, new)
        ring = await keyring.unlock(
            session, "amina", Secret(PASSWORD.encode()), settings.kdf_profile.floor
        )
        assert set(ring.org_keys) == {new}
        copies = (
            await session.execute(
                select(ReportKey.report_id, ReportKey.org_key_id, ReportKey.sealed)
            )
        ).all()
        payloads = (await session.execute(select(Payload))).scalars().all()
    # Every report has one sealed copy left, to the new key, and it opens every payload.
    assert sorted((rid, kid) for rid, kid, _ in copies) == sorted((r, new) for r in written)
    deks = {
        rid: open_data_key(SealedDataKey(sealed), ring.org_keys[new]) for rid, _, sealed in copies
    }
    read = {}
    for row in payloads:
        kind = PayloadKind(row.kind)
        context = PayloadContext(kind, row.report_id, row.slot_id, row.part)
        plain = decrypt_payload(deks[row.report_id], context, EncryptedPayload(row.ciphertext))
        read[row.report_id] = (kind, plain.reveal().decode())
    assert len(payloads) == REPORTS
    assert read == written

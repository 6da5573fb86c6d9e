"""Key backups on SQLite and PostgreSQL: a key-holder exports, a key-holder enrolled later
with no grants imports and reads old reports; wrong or weak passphrases, a key-holder
without the signing key and a backup of another installation are refused."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import select

from intake_bot.bootstrap import App, open_app
from intake_bot.config import Settings
from intake_bot.crypto import (
    BACKUP_MAGIC,
    KDF_INSECURE_TEST,
    DecryptionError,
    PayloadKind,
    Plaintext,
    Secret,
    open_backup,
)
from intake_bot.services import ServiceError, accounts, installation, keyring, reports, rotation
from intake_bot.services import backup as backups
from intake_bot.storage.models import AuditEntry, Role

PASSWORD = Secret(b"correct horse battery staple orbit")
MEMBER = Secret(b"violet tractor sings under marble bridges")
PASSPHRASE = Secret(b"quartz heron mortgage clarinet sleepy volcano 1847 drift")


async def _report(app: App, text: str) -> bytes:
    pinned = keyring.read_pin(app.settings.signing_key_pin)
    async with app.sessions() as session, session.begin():
        report = await reports.start_report(session, pinned)
        await reports.save_payload(session, report, PayloadKind.ANSWER, Plaintext(text.encode()))
    return report.report_id


async def _read(app: App, name: str, password: Secret, report_id: bytes) -> bytes:
    async with app.sessions() as session:
        ring = await keyring.unlock(session, name, password, app.settings.kdf_profile.floor)
        dek = await reports.report_key(session, ring, report_id)
        [(_, _, plain)] = await reports.read_payloads(session, dek, report_id)
    return plain.reveal()


async def _enrol(app: App, name: str, password: Secret = MEMBER) -> str:
    """A key-holder enrolled with no grants; returns their key fingerprint."""
    invite = await accounts.add_member(app, name, [Role.KEYHOLDER])
    done = await accounts.enrol(app, invite.token, password)
    assert done.key_fingerprint is not None
    return done.key_fingerprint


async def _actions(app: App) -> list[tuple[str, str, str]]:
    async with app.sessions() as session:
        rows = await session.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.details).order_by(AuditEntry.seq)
        )
        return [(actor, action, details) for actor, action, details in rows]


async def test_export_then_a_new_keyholder_recovers_every_report(app: App) -> None:
    done = await installation.initialise(app, "amina", PASSWORD)
    old = [await _report(app, f"account {i}") for i in range(3)]

    exported = await backups.export_backup(app, "amina", PASSWORD, PASSPHRASE)
    assert exported.blob.startswith(BACKUP_MAGIC)
    assert [(k.key_id, k.state) for k in exported.org_keys] == [(done.org_key_id, "current")]
    assert exported.org_keys[0].fingerprint == done.org_fingerprint
    assert exported.signing_fingerprint == done.signing_fingerprint
    # The content says what it holds; no secret is in the clear.
    content = json.loads(open_backup(PASSPHRASE, exported.blob, KDF_INSECURE_TEST).reveal())
    assert content["format"] == "intake-key-backup-v1"
    assert content["created"] == exported.created.isoformat()
    assert [k["id"] for k in content["org_keys"]] == [done.org_key_id]
    assert bytes.fromhex(content["org_keys"][0]["private_key"]) not in exported.blob
    assert bytes.fromhex(content["signing_key"]["seed"]) not in exported.blob

    await _enrol(app, "farid")
    with pytest.raises(DecryptionError):
        await _read(app, "farid", MEMBER, old[0])
    imported = await backups.import_backup(app, "farid", MEMBER, exported.blob, PASSPHRASE)
    assert imported.org_keys == (done.org_key_id,)
    assert imported.signing_key
    assert imported.skipped == ()
    for i, report_id in enumerate(old):
        assert await _read(app, "farid", MEMBER, report_id) == f"account {i}".encode()
    # farid now holds the signing key too: he can grant and make backups himself.
    again = await backups.export_backup(app, "farid", MEMBER, PASSPHRASE)
    assert [k.key_id for k in again.org_keys] == [done.org_key_id]

    # Importing twice grants nothing new.
    twice = await backups.import_backup(app, "farid", MEMBER, exported.blob, PASSPHRASE)
    assert (twice.org_keys, twice.signing_key) == ((), False)
    assert {s.reason for s in twice.skipped} == {"already granted", "signing key: already granted"}

    audited = [(actor, action) for actor, action, _ in await _actions(app)]
    assert ("amina", "keys.export-backup") in audited
    assert audited.count(("farid", "keys.import-backup")) == 2
    for _, action, details in await _actions(app):
        if action.startswith("keys.") and "backup" in action:
            assert content["org_keys"][0]["private_key"] not in details
            assert content["signing_key"]["seed"] not in details
            assert PASSPHRASE.reveal().decode() not in details


async def test_after_a_rotation(app: App) -> None:
    await installation.initialise(app, "amina", PASSWORD)
    before = await _report(app, "before")
    early = await backups.export_backup(app, "amina", PASSWORD, PASSPHRASE)
    rotated = await rotation.rotate(app, "amina", PASSWORD)
    after = await _report(app, "after")

    both = await backups.export_backup(app, "amina", PASSWORD, PASSPHRASE)
    assert [(k.key_id, k.state) for k in both.org_keys] == [
        (rotated.key_id.hex(), "current"),
        (rotated.previous.hex(), "live"),
    ]
    await rotation.rewrap(app, "amina", PASSWORD)
    await rotation.retire(app, "amina", PASSWORD, rotated.previous.hex())
    # The keyring no longer holds the retired key, so a new backup cannot include it...
    latest = await backups.export_backup(app, "amina", PASSWORD, PASSPHRASE)
    assert [(k.key_id, k.state) for k in latest.org_keys] == [(rotated.key_id.hex(), "current")]
    # ...but the early backup still holds it: import refuses to grant a retired key.
    await _enrol(app, "farid")
    imported = await backups.import_backup(app, "farid", MEMBER, early.blob, PASSPHRASE)
    assert imported.org_keys == ()
    assert imported.signing_key
    assert [(s.key_id, s.reason) for s in imported.skipped] == [(rotated.previous.hex(), "retired")]
    recovered = await backups.import_backup(app, "farid", MEMBER, latest.blob, PASSPHRASE)
    assert recovered.org_keys == (rotated.key_id.hex(),)
    assert await _read(app, "farid", MEMBER, before) == b"before"
    assert await _read(app, "farid", MEMBER, after) == b"after"


async def test_wrong_passphrase_is_one_clear_error(app: App) -> None:
    await installation.initialise(app, "amina", PASSWORD)
    exported = await backups.export_backup(app, "amina", PASSWORD, PASSPHRASE)
    await _enrol(app, "farid")
    wrong = Secret(b"quartz heron mortgage clarinet sleepy volcano 1848 drift")
    damaged = bytearray(exported.blob)
    damaged[-1] ^= 1
    for blob, passphrase in [
        (exported.blob, wrong),
        (bytes(damaged), PASSPHRASE),
        (exported.blob[:-7], PASSPHRASE),
        (b"not a backup at all", PASSPHRASE),
    ]:
        with pytest.raises(ServiceError, match=r"^cannot open the backup: wrong passphrase"):
            await backups.import_backup(app, "farid", MEMBER, blob, passphrase)
    with pytest.raises(ServiceError, match="wrong password"):
        await backups.import_backup(app, "farid", PASSWORD, exported.blob, PASSPHRASE)
    actions = [action for _, action, _ in await _actions(app)]
    assert "keys.import-backup" not in actions


async def test_weak_or_reused_passphrase_refused_at_export(app: App) -> None:
    await installation.initialise(app, "amina", PASSWORD)
    # Score 3 is enough for a password, not for a backup passphrase.
    for weak in (b"password1", b"orbit lantern", b"zebra cabinet", b"amina intake"):
        with pytest.raises(ServiceError, match=r"backup passphrase is too weak .* needs 4\)"):
            await backups.export_backup(app, "amina", PASSWORD, Secret(weak))
    with pytest.raises(ServiceError, match="must differ from your password"):
        await backups.export_backup(app, "amina", PASSWORD, PASSWORD)
    with pytest.raises(ServiceError, match="wrong password"):
        await backups.export_backup(app, "amina", MEMBER, PASSPHRASE)
    assert "keys.export-backup" not in [action for _, action, _ in await _actions(app)]


async def test_export_needs_the_signing_key(app: App) -> None:
    await installation.initialise(app, "amina", PASSWORD)
    await _enrol(app, "farid")
    with pytest.raises(ServiceError, match="does not hold the signing key"):
        await backups.export_backup(app, "farid", MEMBER, PASSPHRASE)


async def test_backup_of_another_installation_is_refused(
    app: App, settings: Settings, database_url: str
) -> None:
    await installation.initialise(app, "amina", PASSWORD)
    await _enrol(app, "farid")
    # Another installation: its own data dir, pin and keys (on SQLite beside it).
    other_dir = settings.data_dir.parent / "other"
    other = dataclasses.replace(
        settings,
        data_dir=other_dir,
        database_url=f"sqlite+aiosqlite:///{other_dir.parent / 'other.db'}",
        signing_key_pin=other_dir / "signing-key.pin",
    )
    async with open_app(other) as elsewhere:
        await installation.initialise(elsewhere, "amina", PASSWORD)
        foreign = await backups.export_backup(elsewhere, "amina", PASSWORD, PASSPHRASE)
    with pytest.raises(ServiceError, match="another installation"):
        await backups.import_backup(app, "farid", MEMBER, foreign.blob, PASSPHRASE)
    assert "keys.import-backup" not in [action for _, action, _ in await _actions(app)]
    assert database_url  # both backends host the installation that refuses

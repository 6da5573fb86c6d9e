"""Key rotation as a key-holder: revoke, rotate, re-wrap (resumable), retire; on SQLite
and PostgreSQL. Every report, old and new, decrypts with the new key afterwards, and no
private material of the retired key is left in the database."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from intake_bot.bootstrap import App
from intake_bot.crypto import DecryptionError, PayloadKind, Plaintext, Secret, fingerprint
from intake_bot.services import ServiceError, accounts, installation, keyring, reports, rotation
from intake_bot.storage import keys as key_repo
from intake_bot.storage.models import OrgKeyGrant, ReportKey, Role

PASSWORD = Secret(b"correct horse battery staple orbit")
MEMBER = Secret(b"violet tractor sings under marble bridges")


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


async def _keyholder(app: App, name: str) -> None:
    invite = await accounts.add_member(app, name, [Role.KEYHOLDER])
    done = await accounts.enrol(app, invite.token, MEMBER)
    assert done.key_fingerprint is not None
    await keyring.grant_keys(app, "amina", PASSWORD, name, done.key_fingerprint)


async def test_rotate_rewrap_retire(app: App) -> None:
    await installation.initialise(app, "amina", PASSWORD)
    await _keyholder(app, "farid")
    old_reports = [await _report(app, f"before {i}") for i in range(7)]

    rotated = await rotation.rotate(app, "amina", PASSWORD)
    assert rotated.granted_to == ("amina", "farid")
    assert rotated.to_rewrap == 7
    new_report = await _report(app, "after")
    async with app.sessions() as session:
        assert await key_repo.current_key_id(session) == rotated.key_id
        sealed = await session.scalars(
            select(ReportKey.org_key_id).where(ReportKey.report_id == new_report)
        )
        assert list(sealed) == [rotated.key_id]

    with pytest.raises(ServiceError, match="depend only"):
        await rotation.retire(app, "amina", PASSWORD, rotated.previous.hex())
    seen: list[tuple[int, int]] = []
    done = await rotation.rewrap(
        app, "amina", PASSWORD, batch=3, progress=lambda d, left: seen.append((d, left))
    )
    assert done.moved == 7
    assert done.left == 0
    assert seen[0] == (0, 7)
    assert seen[-1] == (7, 0)
    again = await rotation.rewrap(app, "amina", PASSWORD)
    assert again.moved == 0

    with pytest.raises(ServiceError, match="current key"):
        await rotation.retire(app, "amina", PASSWORD, rotated.key_id.hex())
    retired = await rotation.retire(app, "farid", MEMBER, fingerprint(rotated.previous))
    assert retired.sealed_copies_removed == 7
    async with app.sessions() as session:
        grants = list(
            await session.scalars(
                select(OrgKeyGrant).where(OrgKeyGrant.org_key_id == rotated.previous)
            )
        )
        copies = list(
            await session.scalars(select(ReportKey).where(ReportKey.org_key_id == rotated.previous))
        )
    assert grants == []
    assert copies == []
    for i, report_id in enumerate(old_reports):
        assert await _read(app, "farid", MEMBER, report_id) == f"before {i}".encode()
    assert await _read(app, "amina", PASSWORD, new_report) == b"after"
    with pytest.raises(ServiceError, match="retired already"):
        await rotation.retire(app, "amina", PASSWORD, rotated.previous.hex())


async def test_revoke_and_grant_again(app: App) -> None:
    await installation.initialise(app, "amina", PASSWORD)
    await _keyholder(app, "farid")
    report_id = await _report(app, "an account")
    with pytest.raises(ServiceError, match="your own"):
        await rotation.revoke(app, "amina", PASSWORD, "amina")
    revoked = await rotation.revoke(app, "amina", PASSWORD, "farid")
    assert revoked.org_grants == 1
    assert revoked.signing_grant
    with pytest.raises(DecryptionError):
        await _read(app, "farid", MEMBER, report_id)
    members = {m.name: m for m in await accounts.list_members(app)}
    printed = accounts.key_fingerprint(members["farid"])
    assert printed is not None
    await keyring.grant_keys(app, "amina", PASSWORD, "farid", printed)
    assert await _read(app, "farid", MEMBER, report_id) == b"an account"
    await rotation.revoke(app, "amina", PASSWORD, "farid")
    # Now amina alone holds the key: taking hers would lose every report.
    with pytest.raises(ServiceError, match="only holder"):
        await rotation.revoke(app, "farid", MEMBER, "amina")
    assert await _read(app, "amina", PASSWORD, report_id) == b"an account"

"""The services end to end on both databases: install, write a report, read it back."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update

from intake_bot.bootstrap import App
from intake_bot.crypto import (
    DecryptionError,
    OrgPrivateKey,
    PayloadKind,
    Plaintext,
    Secret,
    SignatureError,
    SigningPrivateKey,
)
from intake_bot.services import ServiceError, accounts, installation, keyring, reports
from intake_bot.storage.models import OrgKey, Role

PASSWORD = Secret(b"correct horse battery staple orbit")


async def _chunks(data: bytes, size: int = 10_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_install_write_and_read_back(app: App) -> None:
    await installation.initialise(app, "amina", PASSWORD)
    pinned = keyring.read_pin(app.settings.signing_key_pin)
    data = b"evidence" * 30_000
    async with app.sessions() as session, session.begin():
        report = await reports.start_report(session, pinned)
        await reports.save_payload(session, report, PayloadKind.ANSWER, Plaintext(b"an answer"))
        stored = await reports.save_file(session, app.blobs, report, _chunks(data))
    assert stored.digest.size == len(data)
    async with app.sessions() as session:
        ring = await keyring.unlock(session, "amina", PASSWORD, app.settings.kdf_profile.floor)
        dek = await reports.report_key(session, ring, report.report_id)
        payloads = await reports.read_payloads(session, dek, report.report_id)
    assert [p.reveal() for _, _, p in payloads] == [b"an answer"]
    got = b"".join([c async for c in reports.read_file(app.blobs, dek, stored.file_id)])
    assert got == data


async def test_swapped_org_key_is_refused(app: App) -> None:
    """An adversary who rewrites the active org key in the database gets nothing encrypted."""
    await installation.initialise(app, "amina", PASSWORD)
    pinned = keyring.read_pin(app.settings.signing_key_pin)
    rogue = OrgPrivateKey.generate().sign_public(SigningPrivateKey.generate())
    async with app.sessions() as session, session.begin():
        await session.execute(
            update(OrgKey).values(public_key=rogue.public_key, signature=rogue.signature)
        )
    async with app.sessions() as session, session.begin():
        with pytest.raises(SignatureError):
            await reports.start_report(session, pinned)


async def test_unlock_refuses_wrong_password_and_non_keyholders(app: App) -> None:
    await installation.initialise(app, "amina", PASSWORD)
    floor = app.settings.kdf_profile.floor
    invite = await accounts.add_member(app, "rustam", [Role.REVIEWER])
    # 256 random bits in hex: never a leading "-" that a command line takes for an option.
    assert re.fullmatch(r"[0-9a-f]{64}", invite.token)
    reviewer_password = Secret(b"another quite long passphrase here")
    enrolled = await accounts.enrol(app, invite.token, reviewer_password)
    assert enrolled.key_fingerprint is None
    async with app.sessions() as session:
        with pytest.raises(ServiceError) as wrong:
            await keyring.unlock(session, "amina", Secret(b"not the password"), floor)
        with pytest.raises(ServiceError) as reviewer:
            await keyring.unlock(session, "rustam", reviewer_password, floor)
        with pytest.raises(ServiceError) as unknown:
            await keyring.unlock(session, "nobody", PASSWORD, floor)
    # One message for every refusal: it must not tell which names exist.
    assert str(wrong.value) == str(reviewer.value) == str(unknown.value)


async def test_keyholder_without_grant_cannot_open_reports(app: App) -> None:
    await installation.initialise(app, "amina", PASSWORD)
    pinned = keyring.read_pin(app.settings.signing_key_pin)
    invite = await accounts.add_member(app, "leyla", [Role.KEYHOLDER])
    password = Secret(b"leyla has her own strong passphrase")
    enrolled = await accounts.enrol(app, invite.token, password)
    assert enrolled.key_fingerprint is not None
    async with app.sessions() as session, session.begin():
        report = await reports.start_report(session, pinned, urgent=True)
    async with app.sessions() as session:
        ring = await keyring.unlock(session, "leyla", password, app.settings.kdf_profile.floor)
        assert ring.org_keys == {}
        with pytest.raises(DecryptionError):
            await reports.report_key(session, ring, report.report_id)


async def test_a_granted_keyholder_reads_earlier_reports(app: App) -> None:
    """amina grants farid the keys (fingerprint compared out of band): farid can then read
    a report made before the grant, and sign audit heads."""
    await installation.initialise(app, "amina", PASSWORD)
    pinned = keyring.read_pin(app.settings.signing_key_pin)
    async with app.sessions() as session, session.begin():
        report = await reports.start_report(session, pinned)
        await reports.save_payload(session, report, PayloadKind.ANSWER, Plaintext(b"before"))
    invite = await accounts.add_member(app, "farid", [Role.KEYHOLDER])
    farid_password = Secret(b"farid has his own long passphrase")
    enrolled = await accounts.enrol(app, invite.token, farid_password)
    assert enrolled.key_fingerprint is not None
    floor = app.settings.kdf_profile.floor

    typed = enrolled.key_fingerprint.lower().replace(" ", "-")  # as someone might type it
    granted = await keyring.grant_keys(app, "amina", PASSWORD, "farid", typed)
    assert (len(granted.org_keys), granted.signing_key) == (1, True)
    again = await keyring.grant_keys(app, "amina", PASSWORD, "farid", enrolled.key_fingerprint)
    assert (again.org_keys, again.signing_key) == ((), False)

    async with app.sessions() as session:
        ring = await keyring.unlock(session, "farid", farid_password, floor, pinned)
        dek = await reports.report_key(session, ring, report.report_id)
        [(_, _, plaintext)] = await reports.read_payloads(session, dek, report.report_id)
    assert plaintext.reveal() == b"before"
    assert ring.signing is not None


async def test_a_grant_with_the_wrong_fingerprint_or_to_a_reviewer_is_refused(app: App) -> None:
    await installation.initialise(app, "amina", PASSWORD)
    invite = await accounts.add_member(app, "farid", [Role.KEYHOLDER])
    farid_password = Secret(b"farid has his own long passphrase")
    await accounts.enrol(app, invite.token, farid_password)
    reviewer = await accounts.add_member(app, "rustam", [Role.REVIEWER])
    await accounts.enrol(app, reviewer.token, Secret(b"another quite long passphrase here"))
    floor = app.settings.kdf_profile.floor

    with pytest.raises(ServiceError, match="does not match"):
        await keyring.grant_keys(app, "amina", PASSWORD, "farid", "0000 1111 2222 3333")
    with pytest.raises(ServiceError, match="not an enrolled key-holder"):
        await keyring.grant_keys(app, "amina", PASSWORD, "rustam", "0000")
    with pytest.raises(ServiceError, match="wrong password"):
        await keyring.grant_keys(app, "amina", Secret(b"nope"), "farid", "0000")
    async with app.sessions() as session:
        ring = await keyring.unlock(session, "farid", farid_password, floor)
    assert ring.org_keys == {}  # nothing was granted by the refused attempts

"""A first end-to-end pass through the services on both databases."""

from __future__ import annotations

from intake_bot.bootstrap import App
from intake_bot.crypto import PayloadKind, Plaintext, Secret
from intake_bot.services import accounts, installation, keyring, reports
from intake_bot.storage.models import Role

PASSWORD = Secret(b"correct horse battery staple orbit")


async def _chunks(data: bytes, size: int = 10_000):  # type: ignore[no-untyped-def]
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_install_write_and_read_back(app: App) -> None:
    result = await installation.initialise(app, "amina", PASSWORD)
    assert result.pin_path.exists()
    pinned = keyring.read_pin(app.settings.signing_key_pin)
    data = b"evidence" * 30_000
    async with app.sessions() as session, session.begin():
        report = await reports.start_report(session, pinned)
        await reports.save_payload(session, report, PayloadKind.ANSWER, Plaintext(b"an answer"))
        stored = await reports.save_file(session, app.blobs, report, _chunks(data))
    async with app.sessions() as session:
        ring = await keyring.unlock(session, "amina", PASSWORD, app.settings.kdf_profile.floor)
        payloads = await reports.read_payloads(session, ring, report.report_id)
        assert [p.reveal() for _, _, p in payloads] == [b"an answer"]
        got = b"".join(
            [
                c
                async for c in reports.read_file(
                    session, app.blobs, ring, report.report_id, stored.file_id
                )
            ]
        )
    assert got == data
    invite = await accounts.add_member(app, "reviewer1", [Role.REVIEWER])
    enrolled = await accounts.enrol(
        app, invite.token, Secret(b"another quite long passphrase here")
    )
    assert enrolled.key_fingerprint is None

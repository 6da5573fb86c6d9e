"""Writing reports: every answer and file is encrypted before it reaches storage.

This is one of the few places plaintext passes through (from the Telegram adapter on its
way in). A report's data key is sealed to the active org key, which must verify against
the pinned signing key, before the first payload is stored, so staff can always read what
was saved. Reading back for staff goes through a :class:`~.keyring.Keyring`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from intake_bot.crypto import (
    DataKey,
    FileCiphertext,
    FileDecryptor,
    FileDigest,
    FileEncryptor,
    PayloadContext,
    PayloadKind,
    Plaintext,
    SigningPublicKey,
    decrypt_payload,
    encrypt_payload,
    random_id,
    seal_data_key,
)
from intake_bot.storage import reports as report_repo
from intake_bot.storage.blobs import BlobStore
from intake_bot.storage.models import ReportState

from .keyring import Keyring, encryption_key


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True, slots=True)
class OpenReport:
    """A report being written: its id and data key (held in memory only)."""

    report_id: bytes
    dek: DataKey = field(repr=False)


@dataclass(frozen=True, slots=True)
class StoredFile:
    file_id: bytes
    digest: FileDigest
    blob_size: int


async def start_report(
    session: AsyncSession,
    pinned: SigningPublicKey,
    *,
    state: ReportState = ReportState.DRAFT,
    urgent: bool = False,
) -> OpenReport:
    """Create a report whose fresh DEK is sealed to the verified active org key."""
    org_key = await encryption_key(session, pinned)
    dek = DataKey.generate()
    report_id = random_id()
    await report_repo.create_report(
        session,
        report_id=report_id,
        sealed_keys={org_key.key_id: seal_data_key(dek, org_key)},
        state=state,
        urgent=urgent,
        day=_today(),
    )
    return OpenReport(report_id, dek)


async def save_payload(
    session: AsyncSession,
    report: OpenReport,
    kind: PayloadKind,
    plaintext: Plaintext,
    *,
    slot_id: bytes | None = None,
    part: int = 0,
) -> bytes:
    """Encrypt and store one payload; returns its (new or given) slot id."""
    slot = slot_id or random_id()
    context = PayloadContext(kind, report.report_id, slot, part)
    await report_repo.put_payload(
        session,
        report_id=report.report_id,
        slot_id=slot,
        part=part,
        kind=kind,
        ciphertext=encrypt_payload(report.dek, context, plaintext),
        day=_today(),
    )
    return slot


async def store_file_blob(
    blobs: BlobStore, report: OpenReport, source: AsyncIterable[bytes]
) -> StoredFile:
    """Encrypt a file chunk by chunk as it arrives and write its blob; memory stays flat.

    Uses no database session, so a slow download holds no transaction open. Record it
    with :func:`record_file` afterwards (or delete the blob if that is no longer wanted).
    """
    file_id = random_id()
    encryptor = FileEncryptor(report.dek, file_id)

    async def ciphertext() -> AsyncIterator[FileCiphertext]:
        yield encryptor.header()
        async for piece in source:
            out = encryptor.update(piece)
            if out:
                yield out
        for record in encryptor.finish():
            yield record

    size = await blobs.write(file_id, ciphertext())
    return StoredFile(file_id, encryptor.digest(), size)


async def record_file(
    session: AsyncSession, blobs: BlobStore, report: OpenReport, stored: StoredFile
) -> None:
    """Add the attachment row for a stored blob; the blob is removed if that fails."""
    try:
        await report_repo.add_attachment(
            session,
            file_id=stored.file_id,
            report_id=report.report_id,
            blob_size=stored.blob_size,
            day=_today(),
        )
    except BaseException:
        await blobs.delete(stored.file_id)
        raise


async def save_file(
    session: AsyncSession, blobs: BlobStore, report: OpenReport, source: AsyncIterable[bytes]
) -> StoredFile:
    """:func:`store_file_blob` then :func:`record_file`. The digest (size, SHA-256) goes
    into the caller's encrypted manifest."""
    stored = await store_file_blob(blobs, report, source)
    await record_file(session, blobs, report, stored)
    return stored


async def report_key(session: AsyncSession, keyring: Keyring, report_id: bytes) -> DataKey:
    """A report's data key, opened with whichever org key the key-holder was granted."""
    return keyring.open_data_key(await report_repo.sealed_keys(session, report_id))


async def read_payloads(
    session: AsyncSession, dek: DataKey, report_id: bytes
) -> list[tuple[PayloadKind, bytes, Plaintext]]:
    """Decrypt every payload of a report for a key-holder: (kind, slot id, plaintext)."""
    return [
        (
            stored.kind,
            stored.slot_id,
            decrypt_payload(
                dek,
                PayloadContext(stored.kind, report_id, stored.slot_id, stored.part),
                stored.ciphertext,
            ),
        )
        for stored in await report_repo.payloads(session, report_id)
    ]


async def read_file(blobs: BlobStore, dek: DataKey, file_id: bytes) -> AsyncIterator[bytes]:
    """Decrypt one attachment as a stream. Discard everything if it raises midway.

    Takes no session: a download must not hold a database transaction (on SQLite, the
    write lock) open while it streams.
    """
    decryptor = FileDecryptor(dek, file_id)
    async for piece in blobs.read(file_id):
        out = decryptor.update(piece)
        if out:
            yield out
    decryptor.finish()

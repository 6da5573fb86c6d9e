"""Reading a report's content for a key-holder: keys from the session vault, payloads and
files decrypted on demand, never stored. One of the few places plaintext exists."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from intake_bot.crypto import (
    CryptoError,
    DataKey,
    PayloadContext,
    PayloadKind,
    SealedDataKey,
    decrypt_payload,
)
from intake_bot.services import reports
from intake_bot.services.keyring import Keyring
from intake_bot.storage import reports as report_repo
from intake_bot.storage.blobs import BlobStore
from intake_bot.storage.reports import StoredPayload

from . import rendering
from .i18n import Translator
from .state import AdminState

IMAGE_TYPES = {
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
}
SNIFF_BYTES = 12


def sniff_image(head: bytes) -> str | None:
    """JPEG, PNG or WebP, from the first bytes of a file (never from its name or claim)."""
    for magic, mime in IMAGE_TYPES.items():
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


async def first_bytes(blobs: BlobStore, dek: DataKey, file_id: bytes) -> bytes:
    """The start of a file's plaintext (one record is decrypted, not the whole file)."""
    stream = reports.read_file(blobs, dek, file_id)
    head = b""
    try:
        async for piece in stream:
            head += piece
            if len(head) >= SNIFF_BYTES:
                break
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return head[:SNIFF_BYTES]


def words(_: Translator) -> rendering.Words:
    """The words the page adds to report data, in the viewer's language."""
    return rendering.Words(
        reporter=_("the reporter"),
        hidden_sender=_("hidden sender"),
        unknown_date=_("date not known"),
        yes=_("yes"),
        no=_("no"),
    )


async def report_view(
    session: AsyncSession, state: AdminState, ring: Keyring, report_id: bytes, _: Translator
) -> tuple[DataKey, rendering.ReportView]:
    """Decrypt every payload of a report into the page's view. Raises
    :class:`~intake_bot.crypto.DecryptionError` when the keyring cannot open it."""
    dek = await reports.report_key(session, ring, report_id)
    payloads = await reports.read_payloads(session, dek, report_id)
    view = rendering.build(
        payloads,
        state.questionnaires,
        _.language,
        fallback=state.current_questionnaire,
        words=words(_),
    )
    return dek, view


SUMMARY_KINDS = (PayloadKind.DOCUMENT, PayloadKind.ANSWER, PayloadKind.DRAFT_STATE)


@dataclass(frozen=True, slots=True)
class SummaryMaterial:
    """What the inbox's summary lines are decrypted from, read in two queries."""

    report_ids: Sequence[bytes]
    sealed: dict[bytes, dict[bytes, SealedDataKey]]
    stored: dict[bytes, list[StoredPayload]]


async def summary_material(session: AsyncSession, report_ids: Sequence[bytes]) -> SummaryMaterial:
    """Read what :func:`summary_lines` needs, so the session can close before decrypting
    (on SQLite an open session holds the write lock the bot waits for)."""
    return SummaryMaterial(
        report_ids,
        await report_repo.sealed_keys_of(session, report_ids),
        await report_repo.payloads_of(session, report_ids, SUMMARY_KINDS),
    )


def summary_lines(
    state: AdminState, ring: Keyring, material: SummaryMaterial
) -> dict[bytes, str | None]:
    """The inbox's one line per report (None where the keyring cannot open it)."""
    sealed, stored, report_ids = material.sealed, material.stored, material.report_ids
    lines: dict[bytes, str | None] = {}
    for report_id in report_ids:
        try:
            dek = ring.open_data_key(sealed.get(report_id, {}))
            decrypted = [
                (
                    item.kind,
                    item.slot_id,
                    decrypt_payload(
                        dek,
                        PayloadContext(item.kind, report_id, item.slot_id, item.part),
                        item.ciphertext,
                    ),
                )
                for item in stored.get(report_id, [])
            ]
            view = rendering.build(
                decrypted, state.questionnaires, "en", fallback=state.current_questionnaire
            )
            lines[report_id] = rendering.summary(view)
        except (CryptoError, ValueError):
            lines[report_id] = None
    return lines


def stream_file(blobs: BlobStore, dek: DataKey, file_id: bytes) -> AsyncIterator[bytes]:
    return reports.read_file(blobs, dek, file_id)

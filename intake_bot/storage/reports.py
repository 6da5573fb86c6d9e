"""Repository of reports: clear metadata, sealed data keys, payloads and attachments.

Every function takes or returns ciphertext types for content; nothing here can see or
store plaintext.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from intake_bot.crypto import EncryptedPayload, PayloadKind, SealedDataKey

from .models import (
    Attachment,
    Payload,
    Report,
    ReportKey,
    ReportLabel,
    ReportPrimaryKey,
    ReportState,
)


@dataclass(frozen=True, slots=True)
class StoredPayload:
    slot_id: bytes
    part: int
    kind: PayloadKind
    ciphertext: EncryptedPayload


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """What triage sees without decrypting."""

    id: bytes
    state: ReportState
    urgent: bool
    created_on: dt.date
    updated_on: dt.date
    triage_status: str
    priority: str
    labels: tuple[str, ...]


async def create_report(
    session: AsyncSession,
    *,
    report_id: bytes,
    sealed_keys: Mapping[bytes, SealedDataKey],
    state: ReportState,
    urgent: bool,
    day: dt.date,
) -> None:
    """A new report with its data key sealed to each given org key (key id -> sealed DEK)."""
    if not sealed_keys:
        raise ValueError("a report needs its data key sealed to at least one org key")
    session.add(
        Report(
            id=report_id,
            state=state.value,
            urgent=urgent,
            created_on=day,
            updated_on=day,
            priority="urgent" if urgent else "normal",
        )
    )
    await session.flush()
    session.add_all(
        ReportKey(report_id=report_id, org_key_id=kid, sealed=sealed)
        for kid, sealed in sealed_keys.items()
    )
    await session.flush()
    session.add(ReportPrimaryKey(report_id=report_id, org_key_id=next(iter(sealed_keys))))
    await session.flush()


async def sealed_keys(session: AsyncSession, report_id: bytes) -> dict[bytes, SealedDataKey]:
    rows = await session.execute(
        select(ReportKey.org_key_id, ReportKey.sealed).where(ReportKey.report_id == report_id)
    )
    return {kid: SealedDataKey(sealed) for kid, sealed in rows}


async def put_payload(
    session: AsyncSession,
    *,
    report_id: bytes,
    slot_id: bytes,
    part: int,
    kind: PayloadKind,
    ciphertext: EncryptedPayload,
    day: dt.date,
) -> None:
    """Insert or replace the payload in one slot and part."""
    existing = await session.get(Payload, (report_id, slot_id, part))
    if existing is None:
        session.add(
            Payload(
                report_id=report_id,
                slot_id=slot_id,
                part=part,
                kind=kind.value,
                ciphertext=ciphertext,
                created_on=day,
            )
        )
    else:
        existing.kind = kind.value
        existing.ciphertext = ciphertext
    await touch(session, report_id, day)


async def payloads(
    session: AsyncSession, report_id: bytes, kind: PayloadKind | None = None
) -> list[StoredPayload]:
    query = select(Payload).where(Payload.report_id == report_id)
    if kind is not None:
        query = query.where(Payload.kind == kind.value)
    rows = await session.scalars(query.order_by(Payload.slot_id, Payload.part))
    return [
        StoredPayload(
            row.slot_id, row.part, PayloadKind(row.kind), EncryptedPayload(row.ciphertext)
        )
        for row in rows
    ]


async def add_attachment(
    session: AsyncSession, *, file_id: bytes, report_id: bytes, blob_size: int, day: dt.date
) -> None:
    session.add(Attachment(id=file_id, report_id=report_id, blob_size=blob_size, created_on=day))
    await touch(session, report_id, day)


async def attachment_totals(session: AsyncSession, report_id: bytes) -> tuple[int, int]:
    """How many files a report holds and their stored bytes (for the per-report limits)."""
    row = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Attachment.blob_size), 0)).where(
                Attachment.report_id == report_id
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def attachments(session: AsyncSession, report_id: bytes) -> list[bytes]:
    """File ids of a report's attachments (their blobs are named after them)."""
    rows = await session.scalars(
        select(Attachment.id).where(Attachment.report_id == report_id).order_by(Attachment.id)
    )
    return list(rows)


async def touch(session: AsyncSession, report_id: bytes, day: dt.date) -> None:
    await session.execute(update(Report).where(Report.id == report_id).values(updated_on=day))
    await session.flush()


async def set_state(
    session: AsyncSession, report_id: bytes, state: ReportState, day: dt.date
) -> None:
    await session.execute(
        update(Report).where(Report.id == report_id).values(state=state.value, updated_on=day)
    )
    await session.flush()


async def mark_urgent(session: AsyncSession, report_id: bytes) -> None:
    """Urgent is the one content-derived label in the clear; it is only ever switched on."""
    await session.execute(
        update(Report).where(Report.id == report_id).values(urgent=True, priority="urgent")
    )
    await session.flush()


async def set_labels(session: AsyncSession, report_id: bytes, labels: set[str]) -> None:
    existing = set(
        await session.scalars(select(ReportLabel.label).where(ReportLabel.report_id == report_id))
    )
    for label in existing - labels:
        row = await session.get(ReportLabel, (report_id, label))
        if row is not None:
            await session.delete(row)
    session.add_all(ReportLabel(report_id=report_id, label=label) for label in labels - existing)
    await session.flush()


async def summary(session: AsyncSession, report_id: bytes) -> ReportSummary | None:
    """One report's clear metadata, or None."""
    found = [s for s in await summaries(session) if s.id == report_id]
    return found[0] if found else None


async def summaries(
    session: AsyncSession, *, state: ReportState | None = None
) -> list[ReportSummary]:
    """Reports for the inbox: urgent first, then by day; no content."""
    query = select(Report)
    if state is not None:
        query = query.where(Report.state == state.value)
    rows = list(
        await session.scalars(query.order_by(Report.urgent.desc(), Report.updated_on.desc()))
    )
    labels: dict[bytes, list[str]] = {}
    if rows:
        label_rows = await session.execute(
            select(ReportLabel.report_id, ReportLabel.label)
            .where(ReportLabel.report_id.in_([row.id for row in rows]))
            .order_by(ReportLabel.label)
        )
        for rid, label in label_rows:
            labels.setdefault(rid, []).append(label)
    return [
        ReportSummary(
            id=row.id,
            state=ReportState(row.state),
            urgent=row.urgent,
            created_on=row.created_on,
            updated_on=row.updated_on,
            triage_status=row.triage_status,
            priority=row.priority,
            labels=tuple(labels.get(row.id, ())),
        )
        for row in rows
    ]


async def delete_report(session: AsyncSession, report_id: bytes) -> None:
    """Delete a report and (by cascade) its keys, payloads, attachments rows and labels.

    The caller deletes the blobs. On PostgreSQL the rows remain as dead tuples until
    VACUUM; on SQLite ``secure_delete`` overwrites them.
    """
    await session.execute(delete(Report).where(Report.id == report_id))
    await session.flush()


async def sealed_keys_of(
    session: AsyncSession, report_ids: Sequence[bytes]
) -> dict[bytes, dict[bytes, SealedDataKey]]:
    """The sealed data keys of several reports in one query (report id -> key id -> DEK)."""
    found: dict[bytes, dict[bytes, SealedDataKey]] = {}
    if not report_ids:
        return found
    rows = await session.execute(
        select(ReportKey.report_id, ReportKey.org_key_id, ReportKey.sealed).where(
            ReportKey.report_id.in_(list(report_ids))
        )
    )
    for rid, kid, sealed in rows:
        found.setdefault(rid, {})[kid] = SealedDataKey(sealed)
    return found


async def payloads_of(
    session: AsyncSession, report_ids: Sequence[bytes], kinds: Collection[PayloadKind]
) -> dict[bytes, list[StoredPayload]]:
    """Payloads of the given kinds of several reports in one query."""
    found: dict[bytes, list[StoredPayload]] = {}
    if not report_ids:
        return found
    rows = await session.scalars(
        select(Payload)
        .where(
            Payload.report_id.in_(list(report_ids)),
            Payload.kind.in_([kind.value for kind in kinds]),
        )
        .order_by(Payload.report_id, Payload.slot_id, Payload.part)
    )
    for row in rows:
        found.setdefault(row.report_id, []).append(
            StoredPayload(
                row.slot_id, row.part, PayloadKind(row.kind), EncryptedPayload(row.ciphertext)
            )
        )
    return found

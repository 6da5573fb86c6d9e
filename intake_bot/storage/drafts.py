"""Repository of open drafts and of receipt lookups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from intake_bot.crypto import WrappedDraftBox

from .models import Draft, Receipt


@dataclass(frozen=True, slots=True)
class StoredDraft:
    report_id: bytes
    handle: bytes
    boot_tag: bytes
    box: WrappedDraftBox


def _stored(row: Draft) -> StoredDraft:
    return StoredDraft(row.report_id, row.handle, row.boot_tag, WrappedDraftBox(row.box))


async def add_draft(
    session: AsyncSession, *, report_id: bytes, handle: bytes, boot_tag: bytes, box: WrappedDraftBox
) -> None:
    session.add(Draft(report_id=report_id, handle=handle, boot_tag=boot_tag, box=box))
    await session.flush()


async def find_draft(session: AsyncSession, handles: Sequence[bytes]) -> StoredDraft | None:
    """The draft under any of the handles (today's first, then yesterday's)."""
    for handle in handles:
        row = await session.scalar(select(Draft).where(Draft.handle == handle))
        if row is not None:
            return _stored(row)
    return None


async def update_draft(
    session: AsyncSession, report_id: bytes, *, box: WrappedDraftBox, handle: bytes | None = None
) -> None:
    values: dict[str, object] = {"box": box}
    if handle is not None:
        values["handle"] = handle
    await session.execute(update(Draft).where(Draft.report_id == report_id).values(**values))
    await session.flush()


async def delete_draft(session: AsyncSession, report_id: bytes) -> None:
    await session.execute(delete(Draft).where(Draft.report_id == report_id))
    await session.flush()


async def all_drafts(session: AsyncSession) -> list[StoredDraft]:
    return [_stored(row) for row in await session.scalars(select(Draft))]


async def count_drafts(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Draft)) or 0)


async def add_receipt(session: AsyncSession, *, lookup_id: bytes, report_id: bytes) -> None:
    session.add(Receipt(lookup_id=lookup_id, report_id=report_id))
    await session.flush()


async def find_receipt(session: AsyncSession, lookup_id: bytes) -> bytes | None:
    """The report id for a receipt lookup id, if any."""
    return await session.scalar(select(Receipt.report_id).where(Receipt.lookup_id == lookup_id))

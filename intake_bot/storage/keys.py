"""Repository of signing keys, org keys and the grants of both."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from intake_bot.crypto import SealedDataKey, SealedGrant, SignedOrgKey, SigningPublicKey

from .models import (
    CurrentOrgKey,
    KeyJob,
    KeyJobKind,
    OrgKey,
    OrgKeyGrant,
    OrgKeyState,
    ReportKey,
    ReportPrimaryKey,
    SigningKey,
    SigningKeyGrant,
    Staff,
    StaffKey,
)


@dataclass(frozen=True, slots=True)
class OrgKeyInfo:
    """An org key as listed for operators: no private material."""

    key: SignedOrgKey
    state: OrgKeyState
    created_on: dt.date
    retired_on: dt.date | None
    reports: int
    holders: tuple[str, ...]
    retired_by: str | None = None
    """The name of the member who retired it (None while live, or if unrecorded)."""


async def add_signing_key(session: AsyncSession, public: SigningPublicKey, day: dt.date) -> None:
    session.add(SigningKey(key_id=public.key_id, public_key=public.raw, created_on=day))
    await session.flush()


async def signing_key(session: AsyncSession) -> SigningPublicKey | None:
    """The signing key recorded in the database (the pin file is what is trusted)."""
    row = await session.scalar(select(SigningKey).order_by(SigningKey.created_on).limit(1))
    return None if row is None else SigningPublicKey(row.public_key)


async def add_org_key(
    session: AsyncSession, key: SignedOrgKey, day: dt.date, *, active: bool = True
) -> None:
    """Store an org key; an active one becomes the current key (new reports are sealed to
    it from the next transaction on), and the one before it stays live until retired."""
    state = OrgKeyState.ACTIVE if active else OrgKeyState.RETIRED
    session.add(
        OrgKey(
            key_id=key.key_id,
            public_key=key.public_key,
            signature=key.signature,
            state=state.value,
            created_on=day,
        )
    )
    await session.flush()
    if active:
        current = await session.get(CurrentOrgKey, 1)
        if current is None:
            session.add(CurrentOrgKey(id=1, key_id=key.key_id))
        else:
            current.key_id = key.key_id
        await session.flush()


async def active_org_key(session: AsyncSession) -> SignedOrgKey | None:
    """The current org key as stored: verify it against the pin before encrypting to it.

    The pointer is read FOR SHARE (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises
    anyway): a rotation waits for transactions sealing to the old key to commit, so the
    re-wrap that follows sees their reports instead of finishing without them (its job
    closed, the old key then impossible to retire). Read alone, not joined: a locking
    read re-checked after the rotation commits must see the new key."""
    key_id = await session.scalar(
        select(CurrentOrgKey.key_id).where(CurrentOrgKey.id == 1).with_for_update(read=True)
    )
    if key_id is None:
        return None
    row = await session.scalar(
        select(OrgKey).where(OrgKey.key_id == key_id, OrgKey.state == OrgKeyState.ACTIVE.value)
    )
    return None if row is None else SignedOrgKey(row.public_key, row.signature)


async def current_key_id(session: AsyncSession) -> bytes | None:
    return await session.scalar(select(CurrentOrgKey.key_id).where(CurrentOrgKey.id == 1))


async def list_org_keys(session: AsyncSession) -> list[OrgKeyInfo]:
    """Every org key, newest first, with how many reports depend on it and who holds it."""
    counted = await session.execute(
        select(ReportKey.org_key_id, func.count()).group_by(ReportKey.org_key_id)
    )
    counts = {kid: int(n) for kid, n in counted}
    holders: dict[bytes, list[str]] = {}
    for kid, name in await session.execute(
        select(OrgKeyGrant.org_key_id, Staff.name)
        .join(Staff, Staff.id == OrgKeyGrant.staff_id)
        .order_by(Staff.name)
    ):
        holders.setdefault(kid, []).append(name)
    rows = await session.execute(
        select(OrgKey, Staff.name)
        .outerjoin(Staff, Staff.id == OrgKey.retired_by)
        .order_by(OrgKey.created_on.desc())
    )
    return [
        OrgKeyInfo(
            key=SignedOrgKey(row.public_key, row.signature),
            state=OrgKeyState(row.state),
            created_on=row.created_on,
            retired_on=row.retired_on,
            reports=counts.get(row.key_id, 0),
            holders=tuple(holders.get(row.key_id, ())),
            retired_by=retired_by,
        )
        for row, retired_by in rows
    ]


async def add_org_grant(
    session: AsyncSession,
    *,
    org_key_id: bytes,
    staff_id: bytes,
    sealed: SealedGrant,
    granted_by: bytes | None,
    day: dt.date,
) -> None:
    session.add(
        OrgKeyGrant(
            org_key_id=org_key_id,
            staff_id=staff_id,
            sealed=sealed,
            granted_by=granted_by,
            created_on=day,
        )
    )
    await session.flush()


async def org_grants(session: AsyncSession, staff_id: bytes) -> dict[bytes, SealedGrant]:
    """The org keys granted to one key-holder: key id -> sealed private key."""
    rows = await session.execute(
        select(OrgKeyGrant.org_key_id, OrgKeyGrant.sealed).where(OrgKeyGrant.staff_id == staff_id)
    )
    return {kid: SealedGrant(sealed) for kid, sealed in rows}


async def add_signing_grant(
    session: AsyncSession,
    *,
    signing_key_id: bytes,
    staff_id: bytes,
    sealed: SealedGrant,
    granted_by: bytes | None,
    day: dt.date,
) -> None:
    session.add(
        SigningKeyGrant(
            signing_key_id=signing_key_id,
            staff_id=staff_id,
            sealed=sealed,
            granted_by=granted_by,
            created_on=day,
        )
    )
    await session.flush()


async def signing_grant(
    session: AsyncSession, staff_id: bytes, signing_key_id: bytes
) -> SealedGrant | None:
    row = await session.get(SigningKeyGrant, (signing_key_id, staff_id))
    return None if row is None else SealedGrant(row.sealed)


# --- rotation -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Holder:
    staff_id: bytes
    name: str
    public_key: bytes


async def holders(session: AsyncSession, org_key_id: bytes) -> list[Holder]:
    """Key-holders with a grant of one org key, and their public keys."""
    rows = await session.execute(
        select(Staff.id, Staff.name, StaffKey.public_key)
        .join(OrgKeyGrant, OrgKeyGrant.staff_id == Staff.id)
        .join(StaffKey, StaffKey.staff_id == Staff.id)
        .where(OrgKeyGrant.org_key_id == org_key_id)
        .order_by(Staff.name)
    )
    return [Holder(sid, name, public_key) for sid, name, public_key in rows]


async def org_key_state(session: AsyncSession, key_id: bytes) -> OrgKeyState | None:
    state = await session.scalar(select(OrgKey.state).where(OrgKey.key_id == key_id))
    return None if state is None else OrgKeyState(state)


async def depending_only_on(session: AsyncSession, key_id: bytes) -> int:
    """How many reports use their copy sealed to this key (rewrap moves them off it)."""
    count = await session.scalar(
        select(func.count())
        .select_from(ReportPrimaryKey)
        .where(ReportPrimaryKey.org_key_id == key_id)
    )
    return int(count or 0)


async def next_to_rewrap(
    session: AsyncSession, key_id: bytes, limit: int
) -> list[tuple[bytes, SealedDataKey]]:
    """Up to ``limit`` reports still using their copy sealed to ``key_id``, with it."""
    rows = await session.execute(
        select(ReportKey.report_id, ReportKey.sealed)
        .join(
            ReportPrimaryKey,
            (ReportPrimaryKey.report_id == ReportKey.report_id)
            & (ReportPrimaryKey.org_key_id == ReportKey.org_key_id),
        )
        .where(ReportKey.org_key_id == key_id)
        .order_by(ReportKey.report_id)
        .limit(limit)
    )
    return [(rid, SealedDataKey(sealed)) for rid, sealed in rows]


async def move_report_key(
    session: AsyncSession,
    report_id: bytes,
    from_key: bytes,
    to_key: bytes,
    sealed: SealedDataKey,
) -> bool:
    """Add the copy sealed to ``to_key`` and make it the one in use, if the report still
    uses ``from_key`` (False otherwise: another run moved it, or it was deleted)."""
    in_use = await session.get(ReportPrimaryKey, report_id, with_for_update=True)
    if in_use is None or in_use.org_key_id != from_key:
        return False
    if await session.get(ReportKey, (report_id, to_key)) is None:
        session.add(ReportKey(report_id=report_id, org_key_id=to_key, sealed=sealed))
        await session.flush()
    in_use.org_key_id = to_key
    await session.flush()
    return True


async def retire_org_key(session: AsyncSession, key_id: bytes, actor: bytes, day: dt.date) -> int:
    """Delete the key's sealed copies and grants and mark it retired; returns how many
    sealed copies went. The database refuses (IntegrityError) while a report still uses
    its copy sealed to this key."""
    gone = await session.execute(delete(ReportKey).where(ReportKey.org_key_id == key_id))
    await session.execute(delete(OrgKeyGrant).where(OrgKeyGrant.org_key_id == key_id))
    await session.execute(
        update(OrgKey)
        .where(OrgKey.key_id == key_id)
        .values(state=OrgKeyState.RETIRED.value, retired_on=day, retired_by=actor)
    )
    await session.flush()
    return int(gone.rowcount)  # type: ignore[attr-defined]


async def revoke(session: AsyncSession, staff_id: bytes) -> tuple[int, int]:
    """Remove every org-key and signing-key grant of one member: (org, signing) counts."""
    org = await session.execute(delete(OrgKeyGrant).where(OrgKeyGrant.staff_id == staff_id))
    signing = await session.execute(
        delete(SigningKeyGrant).where(SigningKeyGrant.staff_id == staff_id)
    )
    await session.flush()
    return int(org.rowcount), int(signing.rowcount)  # type: ignore[attr-defined]


async def start_job(
    session: AsyncSession,
    *,
    kind: KeyJobKind,
    from_key: bytes,
    to_key: bytes,
    actor: str,
    day: dt.date,
    job_id: bytes,
) -> None:
    session.add(
        KeyJob(
            id=job_id,
            kind=kind.value,
            from_key_id=from_key,
            to_key_id=to_key,
            actor=actor,
            started_on=day,
            done=0,
        )
    )
    await session.flush()


async def open_jobs(session: AsyncSession, kind: KeyJobKind) -> list[KeyJob]:
    rows = await session.scalars(
        select(KeyJob)
        .where(KeyJob.kind == kind.value, KeyJob.finished_on.is_(None))
        .order_by(KeyJob.started_on)
    )
    return list(rows)


async def job_progress(
    session: AsyncSession, job_id: bytes, done: int, day: dt.date | None
) -> None:
    await session.execute(
        update(KeyJob).where(KeyJob.id == job_id).values(done=KeyJob.done + done, finished_on=day)
    )
    await session.flush()


async def org_key(session: AsyncSession, key_id: bytes) -> SignedOrgKey | None:
    row = await session.get(OrgKey, key_id)
    return None if row is None else SignedOrgKey(row.public_key, row.signature)

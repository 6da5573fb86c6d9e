"""Repository of signing keys, org keys and the grants of both."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from intake_bot.crypto import SealedGrant, SignedOrgKey, SigningPublicKey

from .models import OrgKey, OrgKeyGrant, OrgKeyState, ReportKey, SigningKey, SigningKeyGrant, Staff


@dataclass(frozen=True, slots=True)
class OrgKeyInfo:
    """An org key as listed for operators: no private material."""

    key: SignedOrgKey
    state: OrgKeyState
    created_on: dt.date
    retired_on: dt.date | None
    reports: int
    holders: tuple[str, ...]


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


async def active_org_key(session: AsyncSession) -> SignedOrgKey | None:
    """The active org key as stored: verify it against the pin before encrypting to it."""
    row = await session.scalar(select(OrgKey).where(OrgKey.state == OrgKeyState.ACTIVE.value))
    return None if row is None else SignedOrgKey(row.public_key, row.signature)


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
    rows = await session.scalars(select(OrgKey).order_by(OrgKey.created_on.desc()))
    return [
        OrgKeyInfo(
            key=SignedOrgKey(row.public_key, row.signature),
            state=OrgKeyState(row.state),
            created_on=row.created_on,
            retired_on=row.retired_on,
            reports=counts.get(row.key_id, 0),
            holders=tuple(holders.get(row.key_id, ())),
        )
        for row in rows
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

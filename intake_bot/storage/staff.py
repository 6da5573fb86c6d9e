"""Repository of staff accounts, their roles, wrapped keys and enrolment tokens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from intake_bot.crypto import KdfParams, WrappedPrivateKey, WrappedStaffKey

from .models import (
    Enrolment,
    OrgKeyGrant,
    RecoveryCode,
    Role,
    SigningKeyGrant,
    Staff,
    StaffKey,
    StaffRole,
    StaffState,
)


@dataclass(frozen=True, slots=True)
class StaffInfo:
    """A staff account without secrets."""

    id: bytes
    name: str
    state: StaffState
    roles: frozenset[Role]
    created_on: dt.date
    public_key: bytes | None
    """The member's public key, if they hold a key pair."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What logging in checks: the login hash and the TOTP secret."""

    staff_id: bytes
    password_hash: str
    totp_secret: str


async def add_staff(
    session: AsyncSession, *, staff_id: bytes, name: str, roles: Iterable[Role], day: dt.date
) -> None:
    session.add(Staff(id=staff_id, name=name, state=StaffState.PENDING.value, created_on=day))
    await session.flush()
    session.add_all(StaffRole(staff_id=staff_id, role=role.value) for role in set(roles))
    await session.flush()


async def name_taken(session: AsyncSession, name: str) -> bool:
    return await session.scalar(select(Staff.id).where(Staff.name == name)) is not None


async def get_staff(session: AsyncSession, staff_id: bytes) -> StaffInfo | None:
    found = await _infos(session, staff_id)
    return found[0] if found else None


async def list_staff(session: AsyncSession) -> list[StaffInfo]:
    return await _infos(session, None)


async def _infos(session: AsyncSession, staff_id: bytes | None) -> list[StaffInfo]:
    query = select(Staff, StaffKey.public_key).outerjoin(StaffKey).order_by(Staff.name)
    if staff_id is not None:
        query = query.where(Staff.id == staff_id)
    rows = (await session.execute(query)).all()
    roles: dict[bytes, set[Role]] = {}
    role_query = select(StaffRole.staff_id, StaffRole.role)
    for sid, role in await session.execute(role_query):
        roles.setdefault(sid, set()).add(Role(role))
    return [
        StaffInfo(
            id=row.id,
            name=row.name,
            state=StaffState(row.state),
            roles=frozenset(roles.get(row.id, ())),
            created_on=row.created_on,
            public_key=public_key,
        )
        for row, public_key in rows
    ]


async def activate(
    session: AsyncSession, staff_id: bytes, *, password_hash: str, totp_secret: str
) -> None:
    """Set the member's own credentials and mark the account active."""
    row = await session.get(Staff, staff_id)
    if row is None:
        raise LookupError("no such staff member")
    row.password_hash = password_hash
    row.totp_secret = totp_secret
    row.state = StaffState.ACTIVE.value
    await session.flush()


async def credentials(session: AsyncSession, name: str) -> Credentials | None:
    """Login data of an active member, or None (unknown, pending or disabled alike)."""
    row = await session.scalar(
        select(Staff).where(Staff.name == name, Staff.state == StaffState.ACTIVE.value)
    )
    if row is None or row.password_hash is None or row.totp_secret is None:
        return None
    return Credentials(row.id, row.password_hash, row.totp_secret)


async def put_staff_key(
    session: AsyncSession, staff_id: bytes, wrapped: WrappedStaffKey, day: dt.date
) -> None:
    """Store (or replace, after a reset) a member's wrapped key pair."""
    await session.execute(delete(StaffKey).where(StaffKey.staff_id == staff_id))
    session.add(
        StaffKey(
            staff_id=staff_id,
            public_key=wrapped.public_key,
            salt=wrapped.salt,
            opslimit=wrapped.params.opslimit,
            memlimit=wrapped.params.memlimit,
            wrapped=wrapped.ciphertext,
            created_on=day,
        )
    )
    await session.flush()


async def staff_key(session: AsyncSession, staff_id: bytes) -> WrappedStaffKey | None:
    row = await session.get(StaffKey, staff_id)
    if row is None:
        return None
    return WrappedStaffKey(
        public_key=row.public_key,
        salt=row.salt,
        params=KdfParams(row.opslimit, row.memlimit),
        ciphertext=WrappedPrivateKey(row.wrapped),
    )


async def add_enrolment(
    session: AsyncSession, *, token_hash: bytes, staff_id: bytes, expires_at: dt.datetime
) -> None:
    session.add(Enrolment(token_hash=token_hash, staff_id=staff_id, expires_at=expires_at))
    await session.flush()


async def take_enrolment(
    session: AsyncSession, token_hash: bytes, now: dt.datetime
) -> bytes | None:
    """Consume a token: the staff id if it is known and unexpired, else None.

    The row is deleted either way, so a token works once; expired rows are swept too.
    One ``DELETE … RETURNING``: of two transactions racing with the same token, only the
    one whose statement deleted the row gets the staff id (a read and a later delete would
    let both pass on PostgreSQL).
    """
    taken = (
        await session.execute(
            delete(Enrolment)
            .where(Enrolment.token_hash == token_hash)
            .returning(Enrolment.staff_id, Enrolment.expires_at)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    await session.execute(
        delete(Enrolment)
        .where(Enrolment.expires_at <= now)
        .execution_options(synchronize_session=False)
    )
    await session.flush()
    if taken is None:
        return None
    staff_id, expires_at = taken
    return bytes(staff_id) if expires_at > now else None


async def totp_state(session: AsyncSession, staff_id: bytes) -> tuple[str, int | None] | None:
    """An active member's TOTP secret and the last step accepted, or None."""
    row = await session.get(Staff, staff_id)
    if row is None or row.state != StaffState.ACTIVE.value or row.totp_secret is None:
        return None
    return row.totp_secret, row.totp_last_step


async def accept_totp_step(session: AsyncSession, staff_id: bytes, step: int) -> bool:
    """Record a used TOTP step; False if it (or a later one) was used already.

    One conditional UPDATE, so two requests racing with the same code cannot both pass.
    """
    result = await session.execute(
        update(Staff)
        .where(
            Staff.id == staff_id,
            (Staff.totp_last_step.is_(None)) | (Staff.totp_last_step < step),
        )
        .values(totp_last_step=step)
    )
    await session.flush()
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def replace_recovery_codes(
    session: AsyncSession, staff_id: bytes, hashes: Iterable[bytes]
) -> None:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.staff_id == staff_id))
    session.add_all(RecoveryCode(staff_id=staff_id, code_hash=h) for h in set(hashes))
    await session.flush()


async def use_recovery_code(session: AsyncSession, staff_id: bytes, code_hash: bytes) -> bool:
    """Consume a recovery code; False if it is not one of the member's unused codes."""
    result = await session.execute(
        delete(RecoveryCode).where(
            RecoveryCode.staff_id == staff_id, RecoveryCode.code_hash == code_hash
        )
    )
    await session.flush()
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def recovery_codes_left(session: AsyncSession, staff_id: bytes) -> int:
    count = await session.scalar(
        select(func.count()).select_from(RecoveryCode).where(RecoveryCode.staff_id == staff_id)
    )
    return int(count or 0)


async def set_state(session: AsyncSession, staff_id: bytes, state: StaffState) -> None:
    await session.execute(update(Staff).where(Staff.id == staff_id).values(state=state.value))
    await session.flush()


async def reset(session: AsyncSession, staff_id: bytes) -> None:
    """Back to pending for a new enrolment: credentials, key pair, grants and recovery
    codes go (grants sealed to the old key pair are useless to the new one)."""
    await session.execute(
        update(Staff)
        .where(Staff.id == staff_id)
        .values(
            state=StaffState.PENDING.value,
            password_hash=None,
            totp_secret=None,
            totp_last_step=None,
        )
    )
    await session.execute(delete(RecoveryCode).where(RecoveryCode.staff_id == staff_id))
    await session.execute(delete(OrgKeyGrant).where(OrgKeyGrant.staff_id == staff_id))
    await session.execute(delete(SigningKeyGrant).where(SigningKeyGrant.staff_id == staff_id))
    await session.execute(delete(StaffKey).where(StaffKey.staff_id == staff_id))
    await session.execute(delete(Enrolment).where(Enrolment.staff_id == staff_id))
    await session.flush()


async def set_password_hash(session: AsyncSession, staff_id: bytes, password_hash: str) -> None:
    await session.execute(
        update(Staff).where(Staff.id == staff_id).values(password_hash=password_hash)
    )
    await session.flush()


async def set_language(session: AsyncSession, staff_id: bytes, language: str) -> None:
    await session.execute(update(Staff).where(Staff.id == staff_id).values(language=language))
    await session.flush()


async def language(session: AsyncSession, staff_id: bytes) -> str | None:
    return await session.scalar(select(Staff.language).where(Staff.id == staff_id))


async def by_name(session: AsyncSession, name: str) -> StaffInfo | None:
    staff_id = await session.scalar(select(Staff.id).where(Staff.name == name))
    return None if staff_id is None else await get_staff(session, staff_id)


async def peek_enrolment(
    session: AsyncSession, token_hash: bytes, now: dt.datetime
) -> bytes | None:
    """The staff id of an unexpired enrolment token, leaving it in place."""
    row = await session.get(Enrolment, token_hash)
    return row.staff_id if row is not None and row.expires_at > now else None

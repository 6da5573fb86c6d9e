"""Staff sign-in: password, then second factor, then (for key-holders) the unlock.

Order matters. The password is checked against the login hash first; the staff key is
unwrapped only after the second factor succeeded, so a stolen password alone never opens
a key. Unknown names cost the same Argon2id work as known ones (a dummy hash) and are
never stored or logged: people type passwords into the name field.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from intake_bot.bootstrap import App
from intake_bot.crypto import (
    Secret,
    hash_password,
    sign_audit_head,
    unwrap_staff_key,
    verify_password,
    wrap_staff_key,
)
from intake_bot.storage import audit
from intake_bot.storage import staff as staff_repo
from intake_bot.storage.models import AuditCheckpoint, Role
from intake_bot.storage.staff import StaffInfo

from .accounts import check_name, recovery_code_hash, totp_step
from .errors import ServiceError
from .keyring import Keyring, read_pin, unlock
from .passwords import check_strength

_dummy_hashes: dict[object, str] = {}


def _dummy_hash(app: App) -> str:
    """A login hash of a random password under the current cost, made once per process."""
    params = app.settings.kdf_profile.params
    if params not in _dummy_hashes:
        _dummy_hashes[params] = hash_password(Secret(b"\x00" * 32), params)
    return _dummy_hashes[params]


def _name_or_none(name: str) -> str | None:
    try:
        return check_name(name)
    except ServiceError:
        return None


@dataclass(frozen=True, slots=True)
class Attempt:
    """A password step: the account if the name is an active member's, and the verdict.

    Callers must answer both failures alike; ``member`` is for the audit log only.
    """

    member: StaffInfo | None
    ok: bool


async def check_password(app: App, name: str, password: Secret) -> Attempt:
    """Check a name and password; the outcome is audited (unknown names as ``-``)."""
    clean = _name_or_none(name)
    async with app.sessions() as session:
        creds = None if clean is None else await staff_repo.credentials(session, clean)
        member = None if creds is None else await staff_repo.get_staff(session, creds.staff_id)
    if creds is None:
        encoded = await asyncio.to_thread(_dummy_hash, app)
    else:
        encoded = creds.password_hash
    ok = await asyncio.to_thread(verify_password, encoded, password) and member is not None
    async with app.sessions() as session, session.begin():
        await audit.append(
            session,
            actor=member.name if member is not None else "-",
            action="login.password" if ok else "login.failed-password",
        )
    return Attempt(member, ok)


async def check_second_factor(app: App, member: StaffInfo, code: str) -> bool:
    """A TOTP code not used before (each is accepted once), or an unused recovery code."""
    now = dt.datetime.now(dt.UTC)
    async with app.sessions() as session, session.begin():
        state = await staff_repo.totp_state(session, member.id)
        if state is None:
            return False
        step = totp_step(state[0], code, now)
        if step is not None:
            ok = await staff_repo.accept_totp_step(session, member.id, step)
            how = "totp"
        else:
            ok = await staff_repo.use_recovery_code(session, member.id, recovery_code_hash(code))
            how = "recovery-code"
        if ok:
            await audit.append(session, actor=member.name, action="login.ok", details={"by": how})
        else:
            await audit.append(session, actor=member.name, action="login.failed-second-factor")
    return ok


@dataclass(frozen=True, slots=True)
class Unlocked:
    keyring: Keyring
    checkpoint: int | None
    """The audit sequence number signed at this unlock (None without the signing key)."""


async def unlock_keys(app: App, member: StaffInfo, password: Secret) -> Unlocked:
    """Open a key-holder's grants after the second factor, and sign the audit head.

    Raises :class:`ServiceError` when the member is not a key-holder; a damaged grant or
    key raises :class:`~intake_bot.crypto.DecryptionError`.
    """
    if Role.KEYHOLDER not in member.roles:
        raise ServiceError("not a key-holder")
    pinned = read_pin(app.settings.signing_key_pin)
    floor = app.settings.kdf_profile.floor
    async with app.sessions() as session, session.begin():
        ring = await unlock(session, member.name, password, floor, pinned)
        await audit.append(
            session,
            actor=member.name,
            action="keys.unlock",
            details={"org_keys": len(ring.org_keys), "signing_key": ring.signing is not None},
        )
        checkpoint = None
        if ring.signing is not None:
            await audit.verify(session)
            head = await audit.head(session)
            session.add(
                AuditCheckpoint(
                    seq=head.seq,
                    hash=head.hash,
                    signature=sign_audit_head(ring.signing, head.seq, head.hash),
                    signed_on=dt.datetime.now(dt.UTC).date(),
                )
            )
            checkpoint = head.seq
    return Unlocked(ring, checkpoint)


async def recheck_password(app: App, member: StaffInfo, password: Secret) -> bool:
    """Re-authentication before a sensitive action: the password again (audited)."""
    async with app.sessions() as session:
        creds = await staff_repo.credentials(session, member.name)
    if creds is None or creds.staff_id != member.id:
        return False
    ok = await asyncio.to_thread(verify_password, creds.password_hash, password)
    async with app.sessions() as session, session.begin():
        await audit.append(
            session, actor=member.name, action="reauth.ok" if ok else "reauth.failed"
        )
    return ok


async def change_password(app: App, member: StaffInfo, old: Secret, new: Secret) -> None:
    """A new login hash and, for a key-holder, the staff key re-wrapped under it.

    The old password must be right (checked again here, whatever the caller did).
    """
    check_strength(new, [member.name, "intake"])
    params = app.settings.kdf_profile.params
    floor = app.settings.kdf_profile.floor
    async with app.sessions() as session, session.begin():
        creds = await staff_repo.credentials(session, member.name)
        if creds is None or creds.staff_id != member.id:
            raise ServiceError("the current password is wrong")
        if not await asyncio.to_thread(verify_password, creds.password_hash, old):
            raise ServiceError("the current password is wrong")
        wrapped = await staff_repo.staff_key(session, member.id)
        if wrapped is not None:
            private = await asyncio.to_thread(unwrap_staff_key, wrapped, old, floor)
            rewrapped = await asyncio.to_thread(wrap_staff_key, private, new, params)
            await staff_repo.put_staff_key(
                session, member.id, rewrapped, dt.datetime.now(dt.UTC).date()
            )
        await staff_repo.set_password_hash(
            session, member.id, await asyncio.to_thread(hash_password, new, params)
        )
        await audit.append(session, actor=member.name, action="staff.password-change")


async def record_logout(app: App, member: StaffInfo) -> None:
    async with app.sessions() as session, session.begin():
        await audit.append(session, actor=member.name, action="logout")


async def set_language(app: App, member: StaffInfo, language: str) -> None:
    async with app.sessions() as session, session.begin():
        await staff_repo.set_language(session, member.id, language)


async def record_unlock_failure(app: App, member: StaffInfo) -> None:
    """A key-holder's keys did not open after a correct sign-in (damaged or altered key
    or grant): audited, and the member is told."""
    async with app.sessions() as session, session.begin():
        await audit.append(session, actor=member.name, action="keys.unlock-failed")

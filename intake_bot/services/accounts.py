"""Staff accounts: invitation by one-time enrolment token, enrolment by the member.

Nobody sets another person's password. An admin (or the operator at the console) creates
a pending account and receives a one-time token; the member uses it to set their own
password and second factor, and a key-holder's key pair is generated then, wrapped under
that password. Tokens are stored only as SHA-256 hashes (they carry 256 random bits, so
a slow hash adds nothing) and are deleted when used or expired.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyotp
from sqlalchemy.ext.asyncio import AsyncSession

from intake_bot.bootstrap import App
from intake_bot.crypto import (
    Secret,
    StaffPrivateKey,
    fingerprint,
    hash_password,
    key_id,
    random_id,
    wrap_staff_key,
)
from intake_bot.storage import audit
from intake_bot.storage import staff as staff_repo
from intake_bot.storage.models import Role, StaffState
from intake_bot.storage.staff import StaffInfo

from .errors import ServiceError
from .passwords import check_strength

NAME_MAX = 64
TOTP_ISSUER = "intake"


def check_name(name: str) -> str:
    """A staff name, NFC-normalised: letters, digits, ``.``, ``-`` and ``_``, at most 64.

    Names are compared as written (no case folding: Azerbaijani ``İ``/``i`` and ``I``/``ı``
    pair differently from English).
    """
    normal = unicodedata.normalize("NFC", name.strip())
    if not normal or len(normal) > NAME_MAX:
        raise ServiceError(f"a name has 1 to {NAME_MAX} characters")
    if not all(ch.isalnum() or ch in "._-" for ch in normal):
        raise ServiceError("a name has only letters, digits, '.', '-' and '_'")
    return normal


def new_totp_secret() -> str:
    return pyotp.random_base32()


def current_totp(secret: str) -> str:
    """The code an authenticator app shows now (for the demo only)."""
    return pyotp.TOTP(secret).now()


def otpauth_uri(name: str, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=TOTP_ISSUER)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.strip().encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class Invitation:
    name: str
    roles: frozenset[Role]
    token: str
    link: str
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Enrolled:
    name: str
    roles: frozenset[Role]
    otpauth_uri: str
    key_fingerprint: str | None
    recovery_codes: tuple[str, ...] = field(repr=False)


RECOVERY_CODES = 10
RECOVERY_CODE_BYTES = 10
"""80 random bits each: too many to guess, so a SHA-256 (not Argon2id) stores them."""


def new_recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(RECOVERY_CODE_BYTES)).decode("ascii").lower()
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def recovery_code_hash(code: str) -> bytes:
    """Codes as typed: case, spaces and dashes forgiven."""
    normal = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(b"intake-recovery-code\x00" + normal.encode("utf-8")).digest()


async def enrolment_name(app: App, token: str) -> str | None:
    """The name an unused, unexpired enrolment token is for (without using it)."""
    now = dt.datetime.now(dt.UTC)
    async with app.sessions() as session:
        staff_id = await staff_repo.peek_enrolment(session, token_hash(token), now)
        member = None if staff_id is None else await staff_repo.get_staff(session, staff_id)
    return None if member is None else member.name


async def add_member(
    app: App, name: str, roles: Iterable[Role], *, actor: str = "console"
) -> Invitation:
    """Create a pending account and a one-time enrolment token for it."""
    clean = check_name(name)
    wanted = frozenset(roles)
    if not wanted:
        raise ServiceError("give at least one role: admin, keyholder or reviewer")
    async with app.sessions() as session, session.begin():
        if await staff_repo.name_taken(session, clean):
            raise ServiceError(f"a member named {clean} exists")
        staff_id = random_id()
        await staff_repo.add_staff(
            session, staff_id=staff_id, name=clean, roles=wanted, day=dt.datetime.now(dt.UTC).date()
        )
        # Hex: a token never starts with "-", which a command line would take for an option.
        token, expires = await _invite(session, app, staff_id)
        await audit.append(
            session,
            actor=actor,
            action="staff.invite",
            target=clean,
            details={"roles": ",".join(sorted(r.value for r in wanted))},
        )
    return Invitation(
        name=clean,
        roles=wanted,
        token=token,
        link=f"{app.settings.admin_public_url}/enrol/{token}",
        expires_at=expires,
    )


async def enrol(
    app: App,
    token: str,
    password: Secret,
    *,
    totp_secret: str | None = None,
    totp_code: str | None = None,
) -> Enrolled:
    """The member sets their password (and gets a key pair if they are a key-holder).

    The web form shows a TOTP secret first and passes it back with the code the member's
    app shows, so the second factor is confirmed before the account is active; the
    console prints a new secret instead. Nothing is used up unless it all succeeds.
    """
    now = dt.datetime.now(dt.UTC)
    if totp_secret is not None and (
        totp_code is None or totp_step(totp_secret, totp_code, now) is None
    ):
        raise ServiceError("the code from the authenticator app does not match")
    async with app.sessions() as session, session.begin():
        staff_id = await staff_repo.take_enrolment(session, token_hash(token), now)
        member = None if staff_id is None else await staff_repo.get_staff(session, staff_id)
        if member is None:
            raise ServiceError("this enrolment token is unknown, used or expired")
        check_strength(password, [member.name, "intake"])
        params = app.settings.kdf_profile.params
        login_hash = await asyncio.to_thread(hash_password, password, params)
        totp = totp_secret or new_totp_secret()
        await staff_repo.activate(session, member.id, password_hash=login_hash, totp_secret=totp)
        if totp_secret is not None and totp_code is not None:
            step = totp_step(totp_secret, totp_code, now)
            if step is not None:
                await staff_repo.accept_totp_step(session, member.id, step)
        codes = tuple(new_recovery_code() for _ in range(RECOVERY_CODES))
        await staff_repo.replace_recovery_codes(
            session, member.id, [recovery_code_hash(code) for code in codes]
        )
        key_print = None
        if Role.KEYHOLDER in member.roles:
            private = StaffPrivateKey.generate()
            wrapped = await asyncio.to_thread(wrap_staff_key, private, password, params)
            await staff_repo.put_staff_key(session, member.id, wrapped, now.date())
            key_print = private.fingerprint
        await audit.append(session, actor=member.name, action="staff.enrol", target=member.name)
    return Enrolled(member.name, member.roles, otpauth_uri(member.name, totp), key_print, codes)


TOTP_DIGITS = 6


def totp_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The time step a TOTP code belongs to (this one or a neighbour, for clock drift), or
    None. Whether the step was used before is the caller's (the database's) question."""
    typed = "".join(ch for ch in code if not ch.isspace())
    if len(typed) != TOTP_DIGITS or not typed.isascii() or not typed.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), typed):
            return step
    return None


async def _invite(session: AsyncSession, app: App, staff_id: bytes) -> tuple[str, dt.datetime]:
    token = secrets.token_hex(32)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=app.settings.enrolment_hours)
    await staff_repo.add_enrolment(
        session, token_hash=token_hash(token), staff_id=staff_id, expires_at=expires
    )
    return token, expires


async def disable(app: App, name: str, *, actor: str) -> StaffInfo:
    """Disable an account: it can no longer log in; its live sessions end (the web
    checks the account on every request)."""
    async with app.sessions() as session, session.begin():
        member = await staff_repo.by_name(session, name)
        if member is None:
            raise ServiceError(f"there is no member named {name}")
        await staff_repo.set_state(session, member.id, StaffState.DISABLED)
        await audit.append(session, actor=actor, action="staff.disable", target=member.name)
    return member


async def reenrol(app: App, name: str, *, actor: str) -> Invitation:
    """Start over: credentials, key pair, grants and recovery codes are deleted and a new
    one-time enrolment link is issued. A key-holder then needs new grants."""
    async with app.sessions() as session, session.begin():
        member = await staff_repo.by_name(session, name)
        if member is None:
            raise ServiceError(f"there is no member named {name}")
        await staff_repo.reset(session, member.id)
        token, expires = await _invite(session, app, member.id)
        await audit.append(session, actor=actor, action="staff.reenrol", target=member.name)
    return Invitation(
        name=member.name,
        roles=member.roles,
        token=token,
        link=f"{app.settings.admin_public_url}/enrol/{token}",
        expires_at=expires,
    )


async def list_members(app: App) -> list[StaffInfo]:
    async with app.sessions() as session:
        return await staff_repo.list_staff(session)


def key_fingerprint(member: StaffInfo) -> str | None:
    """The fingerprint a granter compares out of band with the member's own."""
    return None if member.public_key is None else fingerprint(key_id(member.public_key))

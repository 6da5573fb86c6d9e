"""Staff accounts: invitation by one-time enrolment token, enrolment by the member.

Nobody sets another person's password. An admin (or the operator at the console) creates
a pending account and receives a one-time token; the member uses it to set their own
password and second factor, and a key-holder's key pair is generated then, wrapped under
that password. Tokens are stored only as SHA-256 hashes (they carry 256 random bits, so
a slow hash adds nothing) and are deleted when used or expired.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import pyotp

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
from intake_bot.storage.models import Role
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


async def add_member(
    app: App, name: str, roles: Iterable[Role], *, actor: str = "console"
) -> Invitation:
    """Create a pending account and a one-time enrolment token for it."""
    clean = check_name(name)
    wanted = frozenset(roles)
    if not wanted:
        raise ServiceError("give at least one role: admin, keyholder or reviewer")
    # Hex: a token never starts with "-", which a command line would take for an option.
    token = secrets.token_hex(32)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=app.settings.enrolment_hours)
    async with app.sessions() as session, session.begin():
        if await staff_repo.name_taken(session, clean):
            raise ServiceError(f"a member named {clean} exists")
        staff_id = random_id()
        await staff_repo.add_staff(
            session, staff_id=staff_id, name=clean, roles=wanted, day=dt.datetime.now(dt.UTC).date()
        )
        await staff_repo.add_enrolment(
            session, token_hash=token_hash(token), staff_id=staff_id, expires_at=expires
        )
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


async def enrol(app: App, token: str, password: Secret) -> Enrolled:
    """The member sets their password (and gets a key pair if they are a key-holder)."""
    now = dt.datetime.now(dt.UTC)
    async with app.sessions() as session, session.begin():
        staff_id = await staff_repo.take_enrolment(session, token_hash(token), now)
        member = None if staff_id is None else await staff_repo.get_staff(session, staff_id)
        if member is None:
            raise ServiceError("this enrolment token is unknown, used or expired")
        check_strength(password, [member.name, "intake"])
        params = app.settings.kdf_profile.params
        login_hash = await asyncio.to_thread(hash_password, password, params)
        totp = new_totp_secret()
        await staff_repo.activate(session, member.id, password_hash=login_hash, totp_secret=totp)
        key_print = None
        if Role.KEYHOLDER in member.roles:
            private = StaffPrivateKey.generate()
            wrapped = await asyncio.to_thread(wrap_staff_key, private, password, params)
            await staff_repo.put_staff_key(session, member.id, wrapped, now.date())
            key_print = private.fingerprint
        await audit.append(session, actor=member.name, action="staff.enrol", target=member.name)
    return Enrolled(member.name, member.roles, otpauth_uri(member.name, totp), key_print)


async def list_members(app: App) -> list[StaffInfo]:
    async with app.sessions() as session:
        return await staff_repo.list_staff(session)


def key_fingerprint(member: StaffInfo) -> str | None:
    """The fingerprint a granter compares out of band with the member's own."""
    return None if member.public_key is None else fingerprint(key_id(member.public_key))

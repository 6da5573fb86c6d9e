"""``intake init``: a new installation's keys, pin and first admin, in one go.

The first admin is also the first key-holder, and sets their own password here. Until a
second key-holder is granted the keys or a key backup exists, losing that one password
loses every report: the CLI says so.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from intake_bot.bootstrap import App
from intake_bot.crypto import (
    OrgPrivateKey,
    Secret,
    SigningPrivateKey,
    StaffPrivateKey,
    format_pin,
    grant_org_key,
    grant_signing_key,
    hash_password,
    random_id,
    wrap_staff_key,
)
from intake_bot.storage import audit, migrate
from intake_bot.storage import keys as key_repo
from intake_bot.storage import staff as staff_repo
from intake_bot.storage.models import Role

from .accounts import check_name, new_totp_secret, otpauth_uri
from .errors import ServiceError
from .passwords import check_strength


@dataclass(frozen=True, slots=True)
class Installation:
    signing_fingerprint: str
    org_key_id: str
    org_fingerprint: str
    admin: str
    admin_key_fingerprint: str
    otpauth_uri: str
    pin_path: Path


async def initialise(app: App, admin_name: str, password: Secret) -> Installation:
    """Create everything a new installation needs; refuse if one exists."""
    settings = app.settings
    name = check_name(admin_name)
    check_strength(password, [name, "intake"])
    pin_path = settings.signing_key_pin
    if pin_path.exists():
        raise ServiceError(f"already initialised: {pin_path} exists")
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)
    pin_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    await migrate.upgrade(app.engine)
    async with app.sessions() as session:
        if await key_repo.signing_key(session) is not None:
            raise ServiceError("already initialised: the database holds keys")

    params = settings.kdf_profile.params
    signer = SigningPrivateKey.generate()
    org = OrgPrivateKey.generate()
    holder = StaffPrivateKey.generate()
    wrapped = await asyncio.to_thread(wrap_staff_key, holder, password, params)
    login_hash = await asyncio.to_thread(hash_password, password, params)
    totp = new_totp_secret()
    staff_id = random_id()
    today = dt.datetime.now(dt.UTC).date()

    temp_pin = pin_path.with_name(f".{pin_path.name}.tmp")
    temp_pin.write_text(format_pin(signer.public), encoding="utf-8")
    try:
        async with app.sessions() as session, session.begin():
            await key_repo.add_signing_key(session, signer.public, today)
            signed = org.sign_public(signer)
            await key_repo.add_org_key(session, signed, today)
            await staff_repo.add_staff(
                session, staff_id=staff_id, name=name, roles=[Role.ADMIN, Role.KEYHOLDER], day=today
            )
            await staff_repo.activate(session, staff_id, password_hash=login_hash, totp_secret=totp)
            await staff_repo.put_staff_key(session, staff_id, wrapped, today)
            await key_repo.add_org_grant(
                session,
                org_key_id=org.key_id,
                staff_id=staff_id,
                sealed=grant_org_key(org, holder.public_key),
                granted_by=None,
                day=today,
            )
            await key_repo.add_signing_grant(
                session,
                signing_key_id=signer.public.key_id,
                staff_id=staff_id,
                sealed=grant_signing_key(signer, holder.public_key),
                granted_by=None,
                day=today,
            )
            await audit.append(
                session,
                actor="console",
                action="init",
                target=name,
                details={"org_key": org.key_id.hex(), "signing_key": signer.public.key_id.hex()},
            )
    except BaseException:
        temp_pin.unlink(missing_ok=True)
        raise
    os.chmod(temp_pin, 0o444)
    os.rename(temp_pin, pin_path)
    return Installation(
        signing_fingerprint=signer.public.fingerprint,
        org_key_id=org.key_id.hex(),
        org_fingerprint=signed.fingerprint,
        admin=name,
        admin_key_fingerprint=holder.fingerprint,
        otpauth_uri=otpauth_uri(name, totp),
        pin_path=pin_path,
    )

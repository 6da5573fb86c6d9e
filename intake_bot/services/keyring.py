"""Keys as the services use them: the pinned signing key, the verified active org key,
and a key-holder's unlocked keyring.

Plaintext private keys exist only inside a :class:`Keyring`, which lives for one staff
session (or one CLI command) and is never stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from intake_bot.bootstrap import App
from intake_bot.crypto import (
    DataKey,
    DecryptionError,
    KdfParams,
    OrgPrivateKey,
    SealedDataKey,
    Secret,
    SigningPrivateKey,
    SigningPublicKey,
    VerifiedOrgKey,
    fingerprint,
    grant_org_key,
    grant_signing_key,
    key_id,
    open_data_key,
    open_org_grant,
    open_signing_grant,
    parse_pin,
    unwrap_staff_key,
    verify_org_key,
    verify_password,
)
from intake_bot.storage import audit
from intake_bot.storage import keys as key_repo
from intake_bot.storage import staff as staff_repo

from .errors import ServiceError


def read_pin(path: Path) -> SigningPublicKey:
    """The pinned org signing key; :class:`ServiceError` if the pin is missing or garbled."""
    try:
        return parse_pin(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ServiceError(f"signing key pin {path} is missing: run 'intake init'") from None
    except (OSError, UnicodeDecodeError, ValueError):
        raise ServiceError(f"signing key pin {path} is unreadable or not a pin file") from None


async def encryption_key(session: AsyncSession, pinned: SigningPublicKey) -> VerifiedOrgKey:
    """The active org key, only if its signature verifies against the pin.

    A database row swapped by an adversary raises :class:`~intake_bot.crypto.SignatureError`
    and nothing is encrypted.
    """
    signed = await key_repo.active_org_key(session)
    if signed is None:
        raise ServiceError("there is no active organisation key: run 'intake init'")
    return verify_org_key(pinned, signed)


@dataclass(slots=True)
class Keyring:
    """A key-holder's unsealed org private keys, by key id. Never stored, never logged."""

    staff_id: bytes
    org_keys: dict[bytes, OrgPrivateKey] = field(repr=False)
    signing: SigningPrivateKey | None = field(default=None, repr=False)
    """The org signing key, when it was asked for (``pinned``) and granted to them."""

    def open_data_key(self, sealed: Mapping[bytes, SealedDataKey]) -> DataKey:
        """A report's DEK from whichever of its sealed copies this keyring can open."""
        for kid, box in sealed.items():
            key = self.org_keys.get(kid)
            if key is not None:
                return open_data_key(box, key)
        raise DecryptionError


async def unlock(
    session: AsyncSession,
    name: str,
    password: Secret,
    floor: KdfParams,
    pinned: SigningPublicKey | None = None,
) -> Keyring:
    """Check a key-holder's password and open every org key granted to them (and, given
    the pinned key, the signing key if they hold it).

    Wrong name, wrong password, no key pair: one :class:`ServiceError` that does not say
    which. A damaged grant raises :class:`~intake_bot.crypto.DecryptionError`.
    """
    refused = ServiceError("unknown member, wrong password, or not a key-holder")
    creds = await staff_repo.credentials(session, name)
    if creds is None:
        raise refused
    if not await asyncio.to_thread(verify_password, creds.password_hash, password):
        raise refused
    wrapped = await staff_repo.staff_key(session, creds.staff_id)
    if wrapped is None:
        raise refused
    private = await asyncio.to_thread(unwrap_staff_key, wrapped, password, floor)
    grants = await key_repo.org_grants(session, creds.staff_id)
    signing = None
    if pinned is not None:
        sealed = await key_repo.signing_grant(session, creds.staff_id, pinned.key_id)
        signing = None if sealed is None else open_signing_grant(sealed, private, pinned)
    return Keyring(
        staff_id=creds.staff_id,
        org_keys={kid: open_org_grant(sealed, private, kid) for kid, sealed in grants.items()},
        signing=signing,
    )


@dataclass(frozen=True, slots=True)
class Granted:
    grantee: str
    fingerprint: str
    org_keys: tuple[str, ...]
    """Ids (hex) of the org keys newly granted."""
    signing_key: bool


def normalise_fingerprint(text: str) -> str:
    """A fingerprint as people type it (case, spaces, dashes forgiven), in canonical form."""
    hexes = "".join(ch for ch in text.upper() if ch in "0123456789ABCDEF")
    return " ".join(hexes[i : i + 4] for i in range(0, len(hexes), 4))


async def grant_keys(
    app: App, granter: str, password: Secret, grantee: str, expected_fingerprint: str
) -> Granted:
    """A key-holder seals every org key they hold (and the signing key) to another
    key-holder, after checking the grantee's key fingerprint as compared out of band.

    A fingerprint that does not match is refused: a tampered database could otherwise
    slip in a key of the adversary's under a colleague's name.
    """
    pinned = read_pin(app.settings.signing_key_pin)
    async with app.sessions() as session, session.begin():
        ring = await unlock(session, granter, password, app.settings.kdf_profile.floor, pinned)
        target = await staff_repo.credentials(session, grantee)
        wrapped = None if target is None else await staff_repo.staff_key(session, target.staff_id)
        if target is None or wrapped is None:
            raise ServiceError(f"{grantee} is not an enrolled key-holder")
        found = fingerprint(key_id(wrapped.public_key))
        if normalise_fingerprint(expected_fingerprint) != found:
            raise ServiceError(
                f"the fingerprint does not match {grantee}'s key: grant refused "
                "(compare it with them again, out of band)"
            )
        held = await key_repo.org_grants(session, target.staff_id)
        today = dt.datetime.now(dt.UTC).date()
        new = [kid for kid in ring.org_keys if kid not in held]
        for kid in new:
            await key_repo.add_org_grant(
                session,
                org_key_id=kid,
                staff_id=target.staff_id,
                sealed=grant_org_key(ring.org_keys[kid], wrapped.public_key),
                granted_by=ring.staff_id,
                day=today,
            )
        signing = ring.signing is not None and (
            await key_repo.signing_grant(session, target.staff_id, pinned.key_id) is None
        )
        if signing and ring.signing is not None:
            await key_repo.add_signing_grant(
                session,
                signing_key_id=pinned.key_id,
                staff_id=target.staff_id,
                sealed=grant_signing_key(ring.signing, wrapped.public_key),
                granted_by=ring.staff_id,
                day=today,
            )
        await audit.append(
            session,
            actor=granter,
            action="keys.grant",
            target=grantee,
            details={"org_keys": ",".join(k.hex() for k in new), "signing_key": signing},
        )
    return Granted(grantee, found, tuple(k.hex() for k in new), signing)

"""Keys as the services use them: the pinned signing key, the verified active org key,
and a key-holder's unlocked keyring.

Plaintext private keys exist only inside a :class:`Keyring`, which lives for one staff
session (or one CLI command) and is never stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from intake_bot.crypto import (
    DataKey,
    DecryptionError,
    KdfParams,
    OrgPrivateKey,
    SealedDataKey,
    Secret,
    SigningPublicKey,
    VerifiedOrgKey,
    open_data_key,
    open_org_grant,
    parse_pin,
    unwrap_staff_key,
    verify_org_key,
    verify_password,
)
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

    def open_data_key(self, sealed: Mapping[bytes, SealedDataKey]) -> DataKey:
        """A report's DEK from whichever of its sealed copies this keyring can open."""
        for kid, box in sealed.items():
            key = self.org_keys.get(kid)
            if key is not None:
                return open_data_key(box, key)
        raise DecryptionError


async def unlock(session: AsyncSession, name: str, password: Secret, floor: KdfParams) -> Keyring:
    """Check a key-holder's password and open every org key granted to them.

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
    return Keyring(
        staff_id=creds.staff_id,
        org_keys={kid: open_org_grant(sealed, private, kid) for kid, sealed in grants.items()},
    )

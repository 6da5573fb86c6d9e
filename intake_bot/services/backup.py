"""Key backups: every key a key-holder holds, in a file encrypted under a passphrase.

A backup is what recovers the installation when every key-holder has lost their password.
Make one right after ``intake init`` and after every rotation, keep it offline in two
places, and keep its passphrase apart from it.

* **Export** runs as a key-holder who holds the signing key; the file holds the signing
  key and every org key their keyring holds (current, live and, if still granted,
  retired). Keys whose private material is gone from the database cannot be included.
* **Import** gives a (newly enrolled) key-holder grants of the keys in a backup that this
  installation still uses: the signing key only if it is the pinned one (a backup of
  another installation is refused), an org key only if it exists here, is not retired and
  its stored public key and signature verify against the pin.

.. warning:: A backup keeps every key it was made with for as long as the file exists.
   Retiring a key (after a leak, say) does not reach backups made before: destroy those.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from intake_bot.bootstrap import App
from intake_bot.config import KdfProfile
from intake_bot.crypto import (
    KDF_INSECURE_TEST,
    KDF_SENSITIVE,
    DecryptionError,
    KdfParams,
    OrgPrivateKey,
    Plaintext,
    Secret,
    SignatureError,
    SigningPrivateKey,
    SigningPublicKey,
    fingerprint,
    grant_org_key,
    grant_signing_key,
    open_backup,
    seal_backup,
    verify_org_key,
)
from intake_bot.storage import audit
from intake_bot.storage import keys as key_repo
from intake_bot.storage import staff as staff_repo
from intake_bot.storage.models import OrgKeyState

from .errors import ServiceError
from .keyring import read_pin, unlock
from .passwords import check_strength

FORMAT = "intake-key-backup-v1"
"""The ``format`` field of a backup's (encrypted) content."""

PASSPHRASE_SCORE = 4
"""zxcvbn score a backup passphrase needs: the file may be copied and attacked offline."""

CURRENT, LIVE, RETIRED = "current", "live", "retired"


@dataclass(frozen=True, slots=True)
class BackupKey:
    """An org key in a backup, as shown to the operator (no private material)."""

    key_id: str
    """Hex."""
    fingerprint: str
    state: str
    """current (new reports are sealed to it), live (older reports use it) or retired."""


@dataclass(frozen=True, slots=True)
class Exported:
    blob: bytes = field(repr=False)
    """The backup file's bytes (encrypted): write them where they are to be kept."""
    created: dt.date
    signing_fingerprint: str
    org_keys: tuple[BackupKey, ...]
    """Every org key the file holds."""


@dataclass(frozen=True, slots=True)
class Skipped:
    key_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Imported:
    name: str
    org_keys: tuple[str, ...]
    """Ids (hex) of the org keys newly granted."""
    signing_key: bool
    """Whether the signing key was newly granted."""
    skipped: tuple[Skipped, ...]
    """Keys in the backup that were not granted, and why."""


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def backup_params(profile: KdfProfile) -> KdfParams:
    """Argon2id cost of a new backup: libsodium's SENSITIVE, except under the test profile."""
    return KDF_INSECURE_TEST if profile is KdfProfile.INSECURE_TEST else KDF_SENSITIVE


def _check_passphrase(name: str, password: Secret, passphrase: Secret) -> None:
    if passphrase == password:
        raise ServiceError("the backup passphrase must differ from your password")
    hints = [name, "intake", password.reveal().decode("utf-8", "replace")]
    check_strength(passphrase, hints, min_score=PASSPHRASE_SCORE, what="backup passphrase")


async def export_backup(app: App, name: str, password: Secret, passphrase: Secret) -> Exported:
    """A backup of every key ``name`` holds, encrypted under ``passphrase`` (zxcvbn score 4,
    not their password). Refused unless they hold the signing key. Audited, without secrets.
    """
    _check_passphrase(name, password, passphrase)
    settings = app.settings
    pinned = read_pin(settings.signing_key_pin)
    async with app.sessions() as session:
        ring = await unlock(session, name, password, settings.kdf_profile.floor, pinned)
        if ring.signing is None:
            raise ServiceError(
                f"{name} does not hold the signing key: a backup must include it "
                "(ask a key-holder who holds it to make the backup)"
            )
        current = await key_repo.current_key_id(session)
        states = {kid: await key_repo.org_key_state(session, kid) for kid in ring.org_keys}
    created = _today()

    def state_of(kid: bytes) -> str:
        if kid == current:
            return CURRENT
        return RETIRED if states[kid] is OrgKeyState.RETIRED else LIVE

    order = {CURRENT: 0, LIVE: 1, RETIRED: 2}
    kids = sorted(ring.org_keys, key=lambda kid: (order[state_of(kid)], kid))
    content = {
        "format": FORMAT,
        "created": created.isoformat(),
        "signing_key": {
            "id": pinned.key_id.hex(),
            "public_key": pinned.raw.hex(),
            "seed": ring.signing.seed().reveal().hex(),
        },
        "org_keys": [
            {
                "id": kid.hex(),
                "public_key": ring.org_keys[kid].public_key.hex(),
                "private_key": ring.org_keys[kid].raw().reveal().hex(),
                "state": state_of(kid),
            }
            for kid in kids
        ],
    }
    plain = Plaintext(json.dumps(content, sort_keys=True).encode("utf-8"))
    del content
    blob = await asyncio.to_thread(
        seal_backup, passphrase, plain, backup_params(settings.kdf_profile)
    )
    included = tuple(BackupKey(kid.hex(), fingerprint(kid), state_of(kid)) for kid in kids)
    async with app.sessions() as session, session.begin():
        await audit.append(
            session,
            actor=name,
            action="keys.export-backup",
            details={
                "org_keys": ",".join(key.key_id for key in included),
                "signing_key": True,
            },
        )
    return Exported(blob, created, pinned.fingerprint, included)


@dataclass(frozen=True, slots=True)
class _OrgEntry:
    key: OrgPrivateKey
    stated_id: bytes
    stated_public: bytes


@dataclass(frozen=True, slots=True)
class _Content:
    signing: SigningPrivateKey
    org_keys: tuple[_OrgEntry, ...]


def _parse(plain: Plaintext) -> _Content:
    """The decrypted content; :class:`ServiceError` if it is not a backup this version reads."""
    refused = ServiceError("the backup opened but its content is not understood")

    def raw(value: Any, size: int) -> bytes:
        if not isinstance(value, str):
            raise refused
        out = bytes.fromhex(value)
        if len(out) != size:
            raise refused
        return out

    try:
        data = json.loads(plain.reveal())
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise refused
        signing = SigningPrivateKey(Secret(raw(data["signing_key"]["seed"], 32)))
        entries = tuple(
            _OrgEntry(
                key=OrgPrivateKey(Secret(raw(entry["private_key"], 32))),
                stated_id=raw(entry["id"], 16),
                stated_public=raw(entry["public_key"], 32),
            )
            for entry in data["org_keys"]
        )
    except (ValueError, KeyError, TypeError):
        raise refused from None
    return _Content(signing, entries)


async def import_backup(
    app: App, name: str, password: Secret, blob: bytes, passphrase: Secret
) -> Imported:
    """Grant key-holder ``name`` the keys of a backup that this installation uses.

    The backup's signing key must be the pinned one (else: another installation, refused).
    Each org key is granted only if it exists here, is not retired, its stored public key
    and signature verify against the pin and match the backup's private key; keys already
    granted are skipped. Audited.
    """
    settings = app.settings
    pinned = read_pin(settings.signing_key_pin)
    async with app.sessions() as session:
        ring = await unlock(session, name, password, settings.kdf_profile.floor)
    try:
        plain = await asyncio.to_thread(open_backup, passphrase, blob, settings.kdf_profile.floor)
    except DecryptionError:
        raise ServiceError(
            "cannot open the backup: wrong passphrase, or the file is damaged or not an "
            "intake key backup"
        ) from None
    content = _parse(plain)
    del plain
    if content.signing.public.raw != pinned.raw:
        raise ServiceError(
            "this backup belongs to another installation: its signing key "
            f"{content.signing.public.fingerprint} is not the pinned {pinned.fingerprint}"
        )
    today = _today()
    granted: list[str] = []
    skipped: list[Skipped] = []
    async with app.sessions() as session, session.begin():
        wrapped = await staff_repo.staff_key(session, ring.staff_id)
        if wrapped is None:
            raise ServiceError(f"{name} is not an enrolled key-holder")
        held = await key_repo.org_grants(session, ring.staff_id)
        for entry in content.org_keys:
            kid = entry.key.key_id
            reason = await _refusal(session, pinned, entry, kid in held)
            if reason is not None:
                skipped.append(Skipped(kid.hex(), reason))
                continue
            await key_repo.add_org_grant(
                session,
                org_key_id=kid,
                staff_id=ring.staff_id,
                sealed=grant_org_key(entry.key, wrapped.public_key),
                granted_by=ring.staff_id,
                day=today,
            )
            granted.append(kid.hex())
        signing = await key_repo.signing_grant(session, ring.staff_id, pinned.key_id) is None
        if signing:
            await key_repo.add_signing_grant(
                session,
                signing_key_id=pinned.key_id,
                staff_id=ring.staff_id,
                sealed=grant_signing_key(content.signing, wrapped.public_key),
                granted_by=ring.staff_id,
                day=today,
            )
        else:
            skipped.append(Skipped(pinned.key_id.hex(), "signing key: already granted"))
        await audit.append(
            session,
            actor=name,
            action="keys.import-backup",
            target=name,
            details={
                "org_keys": ",".join(granted),
                "signing_key": signing,
                "skipped": len(skipped),
            },
        )
    return Imported(name, tuple(granted), signing, tuple(skipped))


async def _refusal(
    session: AsyncSession, pinned: SigningPublicKey, entry: _OrgEntry, already_held: bool
) -> str | None:
    """Why an org key of the backup is not granted, or None to grant it."""
    kid = entry.key.key_id
    if entry.stated_id != kid or entry.stated_public != entry.key.public_key:
        return "its private key does not match its recorded public key"
    if already_held:
        return "already granted"
    stored = await key_repo.org_key(session, kid)
    if stored is None:
        return "not an org key of this installation"
    if await key_repo.org_key_state(session, kid) is OrgKeyState.RETIRED:
        return "retired"
    try:
        verified = verify_org_key(pinned, stored)
    except SignatureError:
        return "its stored signature does not verify against the pin"
    if verified.public_key != entry.key.public_key:
        return "its stored public key differs from the backup's"
    return None

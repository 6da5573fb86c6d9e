"""Key rotation and revocation, run as a key-holder (their password opens the old keys).

* **Revoke** removes a member's grants. They may have copied keys or data keys before:
  follow with a rotation (and, for data keys they may have copied, re-encryption).
* **Rotate** creates a new org key signed by the signing key, makes it current at once
  (the bot seals every new draft to it from the next transaction on), grants it to every
  key-holder who held the old one, and records a re-wrap job.
* **Re-wrap** seals each report's data key (drafts included) to the new key and makes that
  copy the one in use, in small committed batches. The work left is simply what still uses
  the old key, so a crash loses at most one uncommitted batch, and running it again
  resumes; two runs at once skip each other's reports.
* **Retire** deletes the old key's sealed copies and grants and marks it retired, in one
  transaction that the database refuses (a foreign key) while any report still uses its
  copy sealed to that key.

Re-wrap keeps each report's data key: someone who copied data keys while they had access
can still read those reports. Only re-encryption (new data keys) closes that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from intake_bot.bootstrap import App
from intake_bot.crypto import (
    OrgPrivateKey,
    Secret,
    fingerprint,
    grant_org_key,
    open_data_key,
    random_id,
    seal_data_key,
    verify_org_key,
)
from intake_bot.storage import audit
from intake_bot.storage import keys as key_repo
from intake_bot.storage import staff as staff_repo
from intake_bot.storage.models import KeyJob, KeyJobKind, OrgKeyState

from .errors import ServiceError
from .keyring import Keyring, read_pin, unlock

REWRAP_BATCH = 200
"""Reports per committed transaction: small enough that the bot's writes never wait long
for the lock (SQLite), large enough that the commits do not dominate."""

Progress = Callable[[int, int], None]
"""Called after each batch with (done so far, still to do)."""


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


async def _unlock(app: App, name: str, password: Secret) -> Keyring:
    pinned = read_pin(app.settings.signing_key_pin)
    async with app.sessions() as session:
        return await unlock(session, name, password, app.settings.kdf_profile.floor, pinned)


@dataclass(frozen=True, slots=True)
class Revoked:
    name: str
    org_grants: int
    signing_grant: bool


async def revoke(app: App, name: str, password: Secret, member: str) -> Revoked:
    """Remove every grant ``member`` holds. Refused if they are the only one holding a live
    org key (nobody could open its reports any more) or if it is yourself."""
    ring = await _unlock(app, name, password)
    async with app.sessions() as session, session.begin():
        target = await staff_repo.by_name(session, member)
        if target is None:
            raise ServiceError(f"there is no member named {member}")
        if target.id == ring.staff_id:
            raise ServiceError("you cannot revoke your own keys: ask another key-holder")
        for info in await key_repo.list_org_keys(session):
            if info.state is OrgKeyState.ACTIVE and list(info.holders) == [target.name]:
                raise ServiceError(
                    f"{member} is the only holder of key {info.key.fingerprint}: grant it to "
                    "someone else first, or every report sealed to it is lost"
                )
        org, signing = await key_repo.revoke(session, target.id)
        await audit.append(
            session,
            actor=name,
            action="keys.revoke",
            target=target.name,
            details={"org_grants": org, "signing_grant": bool(signing)},
        )
    return Revoked(target.name, org, bool(signing))


@dataclass(frozen=True, slots=True)
class Rotated:
    key_id: bytes
    fingerprint: str
    previous: bytes
    granted_to: tuple[str, ...]
    to_rewrap: int


async def rotate(app: App, name: str, password: Secret) -> Rotated:
    """A new current org key, signed and granted to the old key's holders; a re-wrap job."""
    ring = await _unlock(app, name, password)
    if ring.signing is None:
        raise ServiceError(f"{name} does not hold the signing key, which signs the new key")
    pinned = read_pin(app.settings.signing_key_pin)
    new = OrgPrivateKey.generate()
    signed = new.sign_public(ring.signing)
    verify_org_key(pinned, signed)  # the pin must accept it, or the bot would refuse it
    today = _today()
    async with app.sessions() as session, session.begin():
        previous = await key_repo.current_key_id(session)
        if previous is None:
            raise ServiceError("there is no current organisation key: run 'intake init'")
        if previous not in ring.org_keys:
            raise ServiceError(f"{name} does not hold the current organisation key")
        holders = await key_repo.holders(session, previous)
        await key_repo.add_org_key(session, signed, today)
        for holder in holders:
            await key_repo.add_org_grant(
                session,
                org_key_id=new.key_id,
                staff_id=holder.staff_id,
                sealed=grant_org_key(new, holder.public_key),
                granted_by=ring.staff_id,
                day=today,
            )
        await key_repo.start_job(
            session,
            kind=KeyJobKind.REWRAP,
            from_key=previous,
            to_key=new.key_id,
            actor=name,
            day=today,
            job_id=random_id(),
        )
        waiting = await key_repo.depending_only_on(session, previous)
        await audit.append(
            session,
            actor=name,
            action="keys.rotate",
            target=new.key_id.hex(),
            details={"previous": previous.hex(), "holders": len(holders), "reports": waiting},
        )
    return Rotated(
        new.key_id,
        fingerprint(new.key_id),
        previous,
        tuple(h.name for h in holders),
        waiting,
    )


@dataclass(frozen=True, slots=True)
class Rewrapped:
    moved: int
    jobs: int
    left: int


async def rewrap(
    app: App,
    name: str,
    password: Secret,
    *,
    progress: Progress | None = None,
    batch: int = REWRAP_BATCH,
) -> Rewrapped:
    """Run (or resume) every open re-wrap job to its end."""
    ring = await _unlock(app, name, password)
    return await rewrap_with(app, ring, name, progress=progress, batch=batch)


async def rewrap_with(
    app: App, ring: Keyring, name: str, *, progress: Progress | None = None, batch: int = 200
) -> Rewrapped:
    """:func:`rewrap` with keys already unlocked (the admin session's)."""
    pinned = read_pin(app.settings.signing_key_pin)
    moved_total = 0
    async with app.sessions() as session:
        jobs = _chain_order(await key_repo.open_jobs(session, KeyJobKind.REWRAP))
    for job in jobs:
        old = ring.org_keys.get(job.from_key_id)
        if old is None or job.to_key_id not in ring.org_keys:
            raise ServiceError(f"{name} does not hold both keys of the re-wrap")
        async with app.sessions() as session:
            signed = await key_repo.org_key(session, job.to_key_id)
            done = job.done
            left = await key_repo.depending_only_on(session, job.from_key_id)
        if signed is None:
            raise ServiceError("the re-wrap's new key is missing")
        target = verify_org_key(pinned, signed)
        if progress is not None:
            progress(done, left)
        while True:
            async with app.sessions() as session, session.begin():
                todo = await key_repo.next_to_rewrap(session, job.from_key_id, batch)
                moved = 0
                for report_id, sealed in todo:
                    dek = open_data_key(sealed, old)
                    if await key_repo.move_report_key(
                        session,
                        report_id,
                        job.from_key_id,
                        job.to_key_id,
                        seal_data_key(dek, target),
                    ):
                        moved += 1
                left = await key_repo.depending_only_on(session, job.from_key_id)
                await key_repo.job_progress(session, job.id, moved, _today() if left == 0 else None)
                if left == 0:
                    await audit.append(
                        session,
                        actor=name,
                        action="keys.rewrap",
                        target=job.to_key_id.hex(),
                        details={"previous": job.from_key_id.hex(), "reports": done + moved},
                    )
            done += moved
            moved_total += moved
            if progress is not None:
                progress(done, left)
            if left == 0 or not todo:
                break
    async with app.sessions() as session:
        remaining = sum([await key_repo.depending_only_on(session, j.from_key_id) for j in jobs])
    return Rewrapped(moved_total, len(jobs), remaining)


def _chain_order(jobs: list[KeyJob]) -> list[KeyJob]:
    """Open jobs oldest rotation first (A->B before B->C), whatever their start dates: a
    later job run first would finish with nothing to move, and the earlier one would then
    leave its reports on a key no job moves them off."""
    by_target = {job.to_key_id: job for job in jobs}

    def depth(job: KeyJob) -> int:
        steps = 0
        while (earlier := by_target.get(job.from_key_id)) is not None and steps < len(jobs):
            job, steps = earlier, steps + 1
        return steps

    return sorted(jobs, key=depth)


@dataclass(frozen=True, slots=True)
class Retired:
    key_id: bytes
    fingerprint: str
    sealed_copies_removed: int


async def retire(app: App, name: str, password: Secret, key_text: str) -> Retired:
    """Retire a live, non-current org key no report depends on any more."""
    ring = await _unlock(app, name, password)
    hexes = "".join(ch for ch in key_text.lower() if ch in "0123456789abcdef")
    async with app.sessions() as session, session.begin():
        found = [
            info.key.key_id
            for info in await key_repo.list_org_keys(session)
            if info.key.key_id.hex() == hexes
            or info.key.fingerprint.replace(" ", "").lower() == hexes
        ]
        if len(found) != 1:
            raise ServiceError(f"there is no organisation key {key_text}")
        key_id = found[0]
        if await key_repo.org_key_state(session, key_id) is OrgKeyState.RETIRED:
            raise ServiceError(f"key {fingerprint(key_id)} is retired already")
        if await key_repo.current_key_id(session) == key_id:
            raise ServiceError("the current key cannot be retired: rotate first")
        if any(
            job.to_key_id == key_id for job in await key_repo.open_jobs(session, KeyJobKind.REWRAP)
        ):
            raise ServiceError(
                f"a re-wrap to key {fingerprint(key_id)} is still open: "
                "run 'intake keys rewrap' first"
            )
        waiting = await key_repo.depending_only_on(session, key_id)
        if waiting:
            raise ServiceError(
                f"{waiting} reports still depend only on key {fingerprint(key_id)}: "
                "run 'intake keys rewrap' first"
            )
    try:
        async with app.sessions() as session, session.begin():
            removed = await key_repo.retire_org_key(session, key_id, ring.staff_id, _today())
            await audit.append(
                session,
                actor=name,
                action="keys.retire",
                target=key_id.hex(),
                details={"sealed_copies_removed": removed},
            )
    except IntegrityError:
        # A report started with this key between the check and the retirement.
        raise ServiceError(
            f"reports still depend only on key {fingerprint(key_id)}: "
            "run 'intake keys rewrap' first"
        ) from None
    return Retired(key_id, fingerprint(key_id), removed)

"""The append-only audit log: a hash chain whose head row serialises appends.

An append first bumps the head row (``UPDATE … RETURNING``), which takes the row lock on
PostgreSQL and the write lock on SQLite, so concurrent appenders queue and the chain
never forks. Verification walks the whole chain; comparing with a head exported earlier
(and signed, see :func:`intake_bot.crypto.sign_audit_head`) also detects a cut-off tail.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from intake_bot.crypto import GENESIS_HASH, chain_hash, encode_fields

from .models import AuditEntry, AuditHead

_DETAIL_TYPES = str | int | bool | None


class AuditChainError(Exception):
    """The chain does not verify; the message names the first bad sequence number."""


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    details: dict[str, _DETAIL_TYPES]


def _utc_text(at: dt.datetime) -> str:
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


def _encode(seq: int, at: dt.datetime, *fields: str) -> bytes:
    """Canonical bytes of an entry: seq, UTC time, actor, action, target, details."""
    return encode_fields(seq, _utc_text(at), *fields)


async def append(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    target: str = "",
    details: Mapping[str, _DETAIL_TYPES] | None = None,
    at: dt.datetime | None = None,
) -> int:
    """Append one entry in the caller's transaction; returns its sequence number.

    Never put reporter content in an entry: actors are staff names or ``console``, targets
    are ids, details are counts and key ids.
    """
    when = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    result = await session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.hash)
    )
    seq, previous = result.one()
    body = json.dumps(dict(details or {}), sort_keys=True, ensure_ascii=False)
    digest = chain_hash(previous, _encode(seq, when, actor, action, target, body))
    session.add(
        AuditEntry(
            seq=seq,
            at=when,
            actor=actor,
            action=action,
            target=target,
            details=body,
            prev_hash=previous,
            hash=digest,
        )
    )
    await session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=digest))
    await session.flush()
    return int(seq)


async def head(session: AsyncSession) -> Head:
    row = await session.get(AuditHead, 1)
    if row is None:
        raise AuditChainError("the audit head row is missing")
    return Head(row.seq, row.hash)


async def entries(session: AsyncSession, *, after: int = 0, limit: int = 100) -> list[Entry]:
    rows = await session.scalars(
        select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(limit)
    )
    return [
        Entry(row.seq, row.at, row.actor, row.action, row.target, json.loads(row.details))
        for row in rows
    ]


async def verify(session: AsyncSession, exported: Head | None = None) -> Head:
    """Check every link, the head row and (if given) an exported head; return the head.

    Raises :class:`AuditChainError` at the first inconsistency: an edited entry (hash
    mismatch), a deleted one (gap or broken link), a head row that does not match the last
    entry, or an exported head whose entry is missing or different (a cut-off tail).
    """
    previous, expected_seq = GENESIS_HASH, 1
    exported_ok = exported is None or (exported.seq == 0 and exported.hash == GENESIS_HASH)
    stream = await session.stream_scalars(select(AuditEntry).order_by(AuditEntry.seq))
    async for row in stream:
        if row.seq != expected_seq:
            raise AuditChainError(f"entry {expected_seq} is missing")
        if row.prev_hash != previous:
            raise AuditChainError(f"entry {row.seq} does not link to entry {row.seq - 1}")
        recomputed = chain_hash(
            previous, _encode(row.seq, row.at, row.actor, row.action, row.target, row.details)
        )
        if recomputed != row.hash:
            raise AuditChainError(f"entry {row.seq} was altered")
        if exported is not None and row.seq == exported.seq:
            if row.hash != exported.hash:
                raise AuditChainError(f"entry {row.seq} differs from the exported head")
            exported_ok = True
        previous, expected_seq = row.hash, expected_seq + 1
    current = await head(session)
    if current.seq != expected_seq - 1 or current.hash != previous:
        raise AuditChainError(f"the head does not match entry {expected_seq - 1}")
    if not exported_ok:
        raise AuditChainError("entries up to the exported head are missing")
    return current


async def for_target(
    session: AsyncSession,
    target: str,
    *,
    limit: int = 200,
    actions: Collection[str] | None = None,
    exclude: Collection[str] = (),
) -> list[Entry]:
    """Entries about one target (a report id), newest first (the ``audit_log_by_target``
    index), optionally only the given ``actions`` or all but those in ``exclude``."""
    query = select(AuditEntry).where(AuditEntry.target == target)
    if actions is not None:
        query = query.where(AuditEntry.action.in_(list(actions)))
    if exclude:
        query = query.where(AuditEntry.action.not_in(list(exclude)))
    rows = await session.scalars(query.order_by(AuditEntry.seq.desc()).limit(limit))
    return [
        Entry(row.seq, row.at, row.actor, row.action, row.target, json.loads(row.details))
        for row in rows
    ]


async def newest(
    session: AsyncSession, *, before: int | None = None, limit: int = 100
) -> list[Entry]:
    """A page of entries, newest first, older than ``before``."""
    query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEntry.seq < before)
    return [
        Entry(row.seq, row.at, row.actor, row.action, row.target, json.loads(row.details))
        for row in await session.scalars(query)
    ]

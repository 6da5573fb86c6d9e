"""The audit hash chain on both databases: appends, tampering, truncation, concurrency.

Tampering is done the way an adversary with the database would do it: raw SQL that
bypasses the application, including the careful variants that also fix up the head row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from intake_bot.crypto import (
    GENESIS_HASH,
    SignatureError,
    SigningPrivateKey,
    chain_hash,
    sign_audit_head,
    verify_audit_head,
)
from intake_bot.storage import audit
from intake_bot.storage.audit import AuditChainError, Head
from intake_bot.storage.db import session_factory
from intake_bot.storage.models import AuditEntry, AuditHead

Sessions = async_sessionmaker[AsyncSession]

START = dt.datetime(2024, 5, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)


@pytest.fixture
def sessions(engine: AsyncEngine) -> Sessions:
    return session_factory(engine)


async def _append(sessions: Sessions, count: int, *, first: int = 1) -> list[int]:
    """Append ``count`` entries, one transaction each; returns their sequence numbers."""
    seqs = []
    for n in range(first, first + count):
        async with sessions() as session, session.begin():
            seqs.append(
                await audit.append(
                    session,
                    actor="Aynur Əliyeva" if n % 2 else "console",
                    action="report.view",
                    target=f"report-{n}",
                    details={"n": n, "unlocked": n % 2 == 0, "key": "ab12", "note": None},
                    at=START + dt.timedelta(minutes=n),
                )
            )
    return seqs


async def _verify(sessions: Sessions, exported: Head | None = None) -> Head:
    async with sessions() as session:
        return await audit.verify(session, exported)


async def _tamper(sessions: Sessions, statement: Any) -> None:
    async with sessions() as session, session.begin():
        result = await session.execute(statement)
        assert getattr(result, "rowcount", 1) == 1


def _rewind_head(seq: int, digest: bytes) -> Any:
    return update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=digest)


# --- Appending and verifying --------------------------------------------------------------


async def test_empty_chain_verifies_to_genesis(sessions: Sessions) -> None:
    assert await _verify(sessions) == Head(0, GENESIS_HASH)


async def test_appends_chain_and_verify(sessions: Sessions) -> None:
    assert await _append(sessions, 5) == [1, 2, 3, 4, 5]
    verified = await _verify(sessions)
    async with sessions() as session:
        assert await audit.head(session) == verified
        listed = await audit.entries(session)
        rows = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    assert verified.seq == 5
    assert verified.hash == rows[-1].hash != GENESIS_HASH
    assert [row.prev_hash for row in rows] == [GENESIS_HASH] + [row.hash for row in rows[:-1]]
    assert [(e.seq, e.actor, e.target) for e in listed] == [
        (n, "Aynur Əliyeva" if n % 2 else "console", f"report-{n}") for n in range(1, 6)
    ]
    assert listed[1].details == {"n": 2, "unlocked": True, "key": "ab12", "note": None}
    for n, entry in enumerate(listed, start=1):
        at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=dt.UTC)
        assert at == START + dt.timedelta(minutes=n)


async def test_entries_pages_through_the_log(sessions: Sessions) -> None:
    await _append(sessions, 5)
    async with sessions() as session:
        assert [e.seq for e in await audit.entries(session, after=1, limit=2)] == [2, 3]
        assert [e.seq for e in await audit.entries(session, after=3)] == [4, 5]


async def test_an_append_rolled_back_leaves_no_trace(sessions: Sessions) -> None:
    """An append shares the caller's transaction: if that fails, neither entry nor head move."""
    await _append(sessions, 2)
    before = await _verify(sessions)

    async def failing_action() -> None:
        async with sessions() as session, session.begin():
            await audit.append(session, actor="console", action="keys.rotate")
            raise RuntimeError("the action failed")

    with pytest.raises(RuntimeError):
        await failing_action()
    assert await _verify(sessions) == before
    assert await _append(sessions, 1, first=3) == [3]
    assert (await _verify(sessions)).seq == 3


# --- Tampering ----------------------------------------------------------------------------


EDITS: list[tuple[str, Any]] = [
    ("action", "report.delete"),
    ("actor", "someone else"),
    ("target", "report-99"),
    ("details", '{"n": 3, "unlocked": false, "key": "ab12", "note": "x"}'),
    ("at", START + dt.timedelta(days=1)),
]


async def test_an_edited_entry_is_detected(sessions: Sessions) -> None:
    """Each field of a middle entry, edited alone, breaks it; put back, the chain verifies."""
    await _append(sessions, 5)
    async with sessions() as session:
        original = await session.get_one(AuditEntry, 3)
    for column, value in EDITS:
        entry_3 = update(AuditEntry).where(AuditEntry.seq == 3)
        await _tamper(sessions, entry_3.values({column: value}))
        with pytest.raises(AuditChainError, match="entry 3 was altered"):
            await _verify(sessions)
        await _tamper(sessions, entry_3.values({column: getattr(original, column)}))
        assert (await _verify(sessions)).seq == 5, column


async def test_a_deleted_entry_is_detected(sessions: Sessions) -> None:
    """Deleting the first, a middle or the last entry (head row left alone) fails."""
    await _append(sessions, 5)
    table = AuditEntry.__table__
    for seq in (1, 3, 5):
        async with sessions() as session:
            row = (await session.execute(select(table).where(table.c.seq == seq))).one()
        await _tamper(sessions, delete(AuditEntry).where(AuditEntry.seq == seq))
        with pytest.raises(AuditChainError):
            await _verify(sessions)
        await _tamper(sessions, insert(AuditEntry).values(row._asdict()))
        assert (await _verify(sessions)).seq == 5, seq


async def test_a_relinked_entry_is_detected(sessions: Sessions) -> None:
    """Deleting a middle entry and renumbering the rest leaves a broken link."""
    await _append(sessions, 5)
    await _tamper(sessions, delete(AuditEntry).where(AuditEntry.seq == 3))
    async with sessions() as session, session.begin():
        for seq in (4, 5):
            await session.execute(
                update(AuditEntry).where(AuditEntry.seq == seq).values(seq=seq - 1)
            )
        await session.execute(update(AuditHead).values(seq=4))
    with pytest.raises(AuditChainError, match="entry 3 does not link"):
        await _verify(sessions)


async def test_a_missing_head_row_is_detected(sessions: Sessions) -> None:
    await _append(sessions, 2)
    await _tamper(sessions, delete(AuditHead))
    with pytest.raises(AuditChainError, match="head row is missing"):
        await _verify(sessions)


async def test_a_truncated_tail_is_caught_only_by_an_exported_head(sessions: Sessions) -> None:
    """A careful attacker cuts the last entries and rewinds the head row to match.

    The chain that is left is consistent, so plain verification passes; the head exported
    (and signed) before the cut no longer matches.
    """
    await _append(sessions, 5)
    exported = await _verify(sessions)
    async with sessions() as session:
        third = await session.get_one(AuditEntry, 3)
    async with sessions() as session, session.begin():
        await session.execute(delete(AuditEntry).where(AuditEntry.seq > 3))
        await session.execute(_rewind_head(3, third.hash))

    assert await _verify(sessions) == Head(3, third.hash)
    with pytest.raises(AuditChainError, match="missing"):
        await _verify(sessions, exported)


async def test_a_rewritten_chain_is_caught_only_by_an_exported_head(sessions: Sessions) -> None:
    """An attacker who edits entry 2 and recomputes every later hash and the head row."""
    await _append(sessions, 5)
    exported = await _verify(sessions)
    async with sessions() as session, session.begin():
        rows = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        previous = rows[0].hash
        rows[1].action = "report.view-nothing"
        for row in rows[1:]:
            # The same canonical encoding the application hashes (what an insider could copy).
            encoded = audit._encode(row.seq, row.at, row.actor, row.action, row.target, row.details)
            row.prev_hash, row.hash = previous, chain_hash(previous, encoded)
            previous = row.hash
        await session.flush()
        await session.execute(_rewind_head(5, previous))

    assert await _verify(sessions) == Head(5, previous)
    with pytest.raises(AuditChainError, match="differs from the exported head"):
        await _verify(sessions, exported)


async def test_an_earlier_exported_head_still_verifies(sessions: Sessions) -> None:
    await _append(sessions, 3)
    exported = await _verify(sessions)
    await _append(sessions, 3, first=4)
    current = await _verify(sessions, exported)
    assert current.seq == 6
    assert current != exported
    assert await _verify(sessions, current) == current


async def test_an_exported_head_from_another_chain_is_refused(sessions: Sessions) -> None:
    await _append(sessions, 3)
    genuine = await _verify(sessions)
    with pytest.raises(AuditChainError, match="differs"):
        await _verify(sessions, Head(genuine.seq, bytes(32)))
    with pytest.raises(AuditChainError, match="differs"):
        await _verify(sessions, Head(2, genuine.hash))


async def test_the_head_signature_can_be_checked(sessions: Sessions) -> None:
    await _append(sessions, 3)
    current = await _verify(sessions)
    signer = SigningPrivateKey.generate()
    signature = sign_audit_head(signer, current.seq, current.hash)

    verify_audit_head(signer.public, current.seq, current.hash, signature)
    with pytest.raises(SignatureError):
        verify_audit_head(signer.public, current.seq - 1, current.hash, signature)
    with pytest.raises(SignatureError):
        verify_audit_head(signer.public, current.seq, bytes(32), signature)
    with pytest.raises(SignatureError):
        verify_audit_head(SigningPrivateKey.generate().public, current.seq, current.hash, signature)


# --- Concurrency and time zones -----------------------------------------------------------


async def test_concurrent_appends_never_fork_the_chain(sessions: Sessions) -> None:
    """4 writers x 15 appends, each in its own session and transaction: seq 1..60, no gaps."""
    writers, per_writer = 4, 15

    async def writer(number: int) -> list[int]:
        seqs = []
        for n in range(per_writer):
            async with sessions() as session, session.begin():
                seqs.append(
                    await audit.append(
                        session, actor=f"writer-{number}", action="test.append", details={"n": n}
                    )
                )
            await asyncio.sleep(0)
        return seqs

    results = await asyncio.gather(*(writer(number) for number in range(writers)))
    returned = sorted(seq for seqs in results for seq in seqs)
    total = writers * per_writer
    assert returned == list(range(1, total + 1))
    for seqs in results:
        assert seqs == sorted(seqs)
    async with sessions() as session:
        stored = await audit.entries(session, limit=total + 10)
    assert [e.seq for e in stored] == list(range(1, total + 1))
    # Each writer's entries are all there, in the order it wrote them.
    for number in range(writers):
        mine = [e.details["n"] for e in stored if e.actor == f"writer-{number}"]
        assert mine == list(range(per_writer))
    assert (await _verify(sessions)).seq == total


async def test_an_entry_stamped_in_another_time_zone_verifies(sessions: Sessions) -> None:
    """``at`` is an instant; an aware time in Baku (UTC+4) must not break the chain."""
    baku = dt.timezone(dt.timedelta(hours=4))
    async with sessions() as session, session.begin():
        await audit.append(session, actor="console", action="init", at=START.astimezone(baku))
    assert (await _verify(sessions)).seq == 1

"""Triage changes by staff, each applied and audited in one transaction.

The rules (which status may follow which, close reasons, labels) are the pure
:mod:`intake_bot.triage`; this module loads the current state, asks the rules, stores the
result and appends the audit entry that the report page shows as its history. Notes are
encrypted under the report's key like answers.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from intake_bot.bootstrap import App
from intake_bot.crypto import PayloadKind, Plaintext
from intake_bot.storage import audit
from intake_bot.storage import inbox as inbox_repo
from intake_bot.storage import staff as staff_repo
from intake_bot.storage.audit import Entry
from intake_bot.storage.models import Role, StaffState
from intake_bot.triage import CloseReason, Priority, Status, Triage, TriageError, close_as_spam
from intake_bot.triage import move as move_status

from .errors import ServiceError
from .keyring import Keyring
from .reports import OpenReport, report_key, save_payload

NOTE_MAX = 10_000
READS = ("report.view", "report.file")
"""Audit actions that record reading a report, not changing it."""
READS_SHOWN = 50


def _target(report_id: bytes) -> str:
    return report_id.hex()


async def _current(session: AsyncSession, report_id: bytes) -> Triage:
    row = await inbox_repo.row(session, report_id)
    if row is None:
        raise ServiceError("there is no such report")
    reason = CloseReason(row.close_reason) if row.close_reason else None
    return Triage(Status(row.triage_status), reason)


async def change_status(
    app: App, actor: str, report_id: bytes, status: Status, reason: CloseReason | None
) -> Triage:
    async with app.sessions() as session, session.begin():
        new = move_status(await _current(session, report_id), status, reason)
        await inbox_repo.set_status(
            session, report_id, new.status.value, new.reason.value if new.reason else None
        )
        await audit.append(
            session,
            actor=actor,
            action="report.status",
            target=_target(report_id),
            details={
                "status": new.status.value,
                "reason": new.reason.value if new.reason else None,
            },
        )
    return new


async def close_spam(app: App, actor: str, report_ids: Iterable[bytes]) -> int:
    """Close every given open report as spam; returns how many were closed."""
    closed = 0
    async with app.sessions() as session, session.begin():
        for report_id in dict.fromkeys(report_ids):
            row = await inbox_repo.row(session, report_id)
            if row is None:
                continue
            reason = CloseReason(row.close_reason) if row.close_reason else None
            new = close_as_spam(Triage(Status(row.triage_status), reason))
            if new is None:
                continue
            await inbox_repo.set_status(
                session, report_id, new.status.value, CloseReason.SPAM.value
            )
            await audit.append(
                session,
                actor=actor,
                action="report.status",
                target=_target(report_id),
                details={
                    "status": Status.CLOSED.value,
                    "reason": CloseReason.SPAM.value,
                    "bulk": True,
                },
            )
            closed += 1
    return closed


async def set_priority(app: App, actor: str, report_id: bytes, priority: Priority) -> None:
    async with app.sessions() as session, session.begin():
        await _current(session, report_id)
        await inbox_repo.set_priority(session, report_id, priority.value)
        await audit.append(
            session,
            actor=actor,
            action="report.priority",
            target=_target(report_id),
            details={"priority": priority.value},
        )


async def assignable(app: App) -> list[str]:
    """Names of active members who can triage (the assignee choices)."""
    async with app.sessions() as session:
        members = await staff_repo.list_staff(session)
    return [
        m.name
        for m in members
        if m.state is StaffState.ACTIVE and m.roles & {Role.KEYHOLDER, Role.REVIEWER}
    ]


async def assign(app: App, actor: str, report_id: bytes, name: str | None) -> None:
    async with app.sessions() as session, session.begin():
        await _current(session, report_id)
        staff_id = None
        if name:
            member = await staff_repo.by_name(session, name)
            if (
                member is None
                or member.state is not StaffState.ACTIVE
                or not member.roles & {Role.KEYHOLDER, Role.REVIEWER}
            ):
                raise TriageError("assignee_unknown")
            staff_id = member.id
        await inbox_repo.set_assignee(session, report_id, staff_id)
        await audit.append(
            session,
            actor=actor,
            action="report.assign",
            target=_target(report_id),
            details={"assignee": name or None},
        )


async def set_labels(app: App, actor: str, report_id: bytes, labels: frozenset[str]) -> None:
    from intake_bot.storage import reports as report_repo  # noqa: PLC0415

    async with app.sessions() as session, session.begin():
        await _current(session, report_id)
        await report_repo.set_labels(session, report_id, set(labels))
        await audit.append(
            session,
            actor=actor,
            action="report.labels",
            target=_target(report_id),
            details={"labels": ", ".join(sorted(labels))},
        )


async def link(app: App, actor: str, report_id: bytes, other_id: bytes) -> None:
    if other_id == report_id:
        raise TriageError("link_self")
    async with app.sessions() as session, session.begin():
        await _current(session, report_id)
        if await inbox_repo.row(session, other_id) is None:
            raise TriageError("link_unknown")
        if await inbox_repo.link(session, report_id, other_id):
            for one, other in ((report_id, other_id), (other_id, report_id)):
                await audit.append(
                    session,
                    actor=actor,
                    action="report.link",
                    target=_target(one),
                    details={"other": other.hex()},
                )


async def unlink(app: App, actor: str, report_id: bytes, other_id: bytes) -> None:
    async with app.sessions() as session, session.begin():
        await _current(session, report_id)
        if not await inbox_repo.unlink(session, report_id, other_id):
            return
        for one, other in ((report_id, other_id), (other_id, report_id)):
            await audit.append(
                session,
                actor=actor,
                action="report.unlink",
                target=_target(one),
                details={"other": other.hex()},
            )


async def add_note(app: App, actor: str, ring: Keyring, report_id: bytes, text: str) -> None:
    """An internal note, encrypted under the report's key (the audit says only that one
    was written)."""
    clean = text.strip()
    if not clean:
        raise TriageError("note_empty")
    if len(clean) > NOTE_MAX:
        raise TriageError("note_too_long")
    async with app.sessions() as session, session.begin():
        await _current(session, report_id)
        dek = await report_key(session, ring, report_id)
        body = {"author": actor, "at": dt.datetime.now(dt.UTC).isoformat(), "text": clean}
        await save_payload(
            session,
            OpenReport(report_id, dek),
            PayloadKind.NOTE,
            Plaintext(json.dumps(body, ensure_ascii=False).encode("utf-8")),
        )
        await audit.append(session, actor=actor, action="report.note", target=_target(report_id))


async def record_view(app: App, actor: str, report_id: bytes, *, content: bool) -> None:
    async with app.sessions() as session, session.begin():
        await audit.append(
            session,
            actor=actor,
            action="report.view",
            target=_target(report_id),
            details={"content": content},
        )


async def record_file(app: App, actor: str, report_id: bytes, file_id: bytes, how: str) -> None:
    async with app.sessions() as session, session.begin():
        await audit.append(
            session,
            actor=actor,
            action="report.file",
            target=_target(report_id),
            details={"file": file_id.hex(), "as": how},
        )


async def history(
    app: App, report_id: bytes, limit: int = 200, reads: int = READS_SHOWN
) -> list[Entry]:
    """Triage changes (up to ``limit``) and the latest views and downloads (up to
    ``reads``) of one report from the audit log, newest first. Counted apart, so that a
    much-read report does not push its changes off the page."""
    target = _target(report_id)
    async with app.sessions() as session:
        changes = await audit.for_target(session, target, limit=limit, exclude=READS)
        seen = await audit.for_target(session, target, limit=reads, actions=READS)
    return sorted([*changes, *seen], key=lambda entry: entry.seq, reverse=True)

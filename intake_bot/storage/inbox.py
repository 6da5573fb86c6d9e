"""Repository of the staff inbox and the clear triage fields of reports.

The inbox is read a page at a time by walking an index from a cursor (keyset pagination):
a page costs the same at report 50 and at report 100,000, and no query loads every row.
Nothing here sees content; the summary line and notes are decrypted by the caller.

A draft still being written is not shown to staff unless it is urgent (ARCHITECTURE.md:
an unfinished draft becomes an incomplete report for staff, "urgent ones appear in the
inbox at once"). Reporters who were not told otherwise may still cancel it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    delete,
    func,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from .models import Attachment, Report, ReportLabel, ReportLink, ReportState, Staff

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class InboxFilter:
    """What the inbox is narrowed to; ``None`` means any."""

    status: str | None = None
    priority: str | None = None
    assignee: bytes | None = None
    unassigned: bool = False
    label: str | None = None
    urgent: bool | None = None
    incomplete: bool | None = None


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after the last row of a page, in inbox order."""

    urgent: bool
    created_on: dt.date
    id: bytes

    def encode(self) -> str:
        return f"{int(self.urgent)}.{self.created_on.isoformat()}.{self.id.hex()}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """A cursor from a query string, or None if it is not one (a forged value)."""
        try:
            urgent, day, rid = text.split(".")
            report_id = bytes.fromhex(rid)
            if urgent not in ("0", "1") or len(report_id) != 16:
                return None
            return cls(urgent == "1", dt.date.fromisoformat(day), report_id)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class InboxRow:
    id: bytes
    state: ReportState
    urgent: bool
    created_on: dt.date
    triage_status: str
    close_reason: str | None
    priority: str
    assignee: str | None
    labels: tuple[str, ...]
    files: int


@dataclass(frozen=True, slots=True)
class InboxPage:
    rows: list[InboxRow]
    next: Cursor | None


def _visible() -> ColumnElement[bool]:
    """Reports staff see: everything but drafts that are not urgent."""
    return or_(Report.state != ReportState.DRAFT.value, Report.urgent.is_(True))


def _conditions(wanted: InboxFilter) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = [_visible()]
    if wanted.status is not None:
        found.append(Report.triage_status == wanted.status)
    if wanted.priority is not None:
        found.append(Report.priority == wanted.priority)
    if wanted.unassigned:
        found.append(Report.assignee_id.is_(None))
    elif wanted.assignee is not None:
        found.append(Report.assignee_id == wanted.assignee)
    if wanted.label is not None:
        # The label's reports through report_labels_by_label, then sorted: on SQLite a
        # page costs as many rows as the label has (14 ms for 15,000). A correlated EXISTS
        # made SQLite walk the inbox index instead, probing report after report until 50
        # matched: for a label on a few old reports, the whole inbox (0.14 s at 100,000;
        # bench/inbox.py). PostgreSQL plans both forms alike, choosing by the label's size.
        found.append(
            Report.id.in_(select(ReportLabel.report_id).where(ReportLabel.label == wanted.label))
        )
    if wanted.urgent is not None:
        found.append(Report.urgent.is_(wanted.urgent))
    if wanted.incomplete is True:
        found.append(Report.state != ReportState.SUBMITTED.value)
    elif wanted.incomplete is False:
        found.append(Report.state == ReportState.SUBMITTED.value)
    return found


async def page(
    session: AsyncSession,
    wanted: InboxFilter,
    after: Cursor | None = None,
    size: int = PAGE_SIZE,
) -> InboxPage:
    """One page of the inbox: urgent first, then newest, then by id."""
    order = (Report.urgent.desc(), Report.created_on.desc(), Report.id.desc())
    query = (
        select(Report, Staff.name)
        .outerjoin(Staff, Staff.id == Report.assignee_id)
        .where(*_conditions(wanted))
        .order_by(*order)
        .limit(size + 1)
    )
    if after is not None:
        query = query.where(
            tuple_(Report.urgent, Report.created_on, Report.id)
            < tuple_(after.urgent, after.created_on, after.id)
        )
    rows = (await session.execute(query)).all()
    more = len(rows) > size
    rows = rows[:size]
    ids = [report.id for report, _ in rows]
    labels = await labels_of(session, ids)
    files = await file_counts(session, ids)
    result = [
        InboxRow(
            id=report.id,
            state=ReportState(report.state),
            urgent=report.urgent,
            created_on=report.created_on,
            triage_status=report.triage_status,
            close_reason=report.close_reason,
            priority=report.priority,
            assignee=assignee,
            labels=tuple(labels.get(report.id, ())),
            files=files.get(report.id, 0),
        )
        for report, assignee in rows
    ]
    last = result[-1] if result else None
    cursor = Cursor(last.urgent, last.created_on, last.id) if more and last else None
    return InboxPage(result, cursor)


async def row(session: AsyncSession, report_id: bytes) -> InboxRow | None:
    """One report's clear fields, as the inbox shows them (None for a report staff do not
    see: none with that id, or a draft that is not urgent)."""
    found = (
        await session.execute(
            select(Report, Staff.name)
            .outerjoin(Staff, Staff.id == Report.assignee_id)
            .where(Report.id == report_id, _visible())
        )
    ).first()
    if found is None:
        return None
    report, assignee = found
    labels = await labels_of(session, [report_id])
    files = await file_counts(session, [report_id])
    return InboxRow(
        id=report.id,
        state=ReportState(report.state),
        urgent=report.urgent,
        created_on=report.created_on,
        triage_status=report.triage_status,
        close_reason=report.close_reason,
        priority=report.priority,
        assignee=assignee,
        labels=tuple(labels.get(report_id, ())),
        files=files.get(report_id, 0),
    )


async def labels_of(session: AsyncSession, ids: Iterable[bytes]) -> dict[bytes, list[str]]:
    wanted = list(ids)
    found: dict[bytes, list[str]] = {}
    if not wanted:
        return found
    rows = await session.execute(
        select(ReportLabel.report_id, ReportLabel.label)
        .where(ReportLabel.report_id.in_(wanted))
        .order_by(ReportLabel.label)
    )
    for rid, label in rows:
        found.setdefault(rid, []).append(label)
    return found


async def file_counts(session: AsyncSession, ids: Iterable[bytes]) -> dict[bytes, int]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = await session.execute(
        select(Attachment.report_id, func.count())
        .where(Attachment.report_id.in_(wanted))
        .group_by(Attachment.report_id)
    )
    return {rid: int(count) for rid, count in rows}


async def all_labels(session: AsyncSession, limit: int = 200) -> list[str]:
    """Labels in use, for the filter list: one index seek per label (a loose index scan,
    written as a recursive query), so the cost does not grow with the number of labelled
    reports. A plain SELECT DISTINCT reads all of report_labels on both databases."""
    found = select(func.min(ReportLabel.label).label("label"), literal_column("1").label("n")).cte(
        "labels", recursive=True
    )
    following = (
        select(func.min(ReportLabel.label)).where(ReportLabel.label > found.c.label)
    ).scalar_subquery()
    found = found.union_all(
        select(following, found.c.n + literal_column("1")).where(
            found.c.label.is_not(None), found.c.n < limit
        )
    )
    rows = await session.scalars(
        select(found.c.label).where(found.c.label.is_not(None)).order_by(found.c.label)
    )
    return list(rows)


async def set_status(
    session: AsyncSession, report_id: bytes, status: str, reason: str | None
) -> None:
    await session.execute(
        update(Report)
        .where(Report.id == report_id)
        .values(triage_status=status, close_reason=reason)
    )
    await session.flush()


async def set_priority(session: AsyncSession, report_id: bytes, priority: str) -> None:
    await session.execute(update(Report).where(Report.id == report_id).values(priority=priority))
    await session.flush()


async def set_assignee(session: AsyncSession, report_id: bytes, staff_id: bytes | None) -> None:
    await session.execute(update(Report).where(Report.id == report_id).values(assignee_id=staff_id))
    await session.flush()


async def link(session: AsyncSession, report_id: bytes, other_id: bytes) -> bool:
    """Link two reports both ways; False if they already were."""
    if await session.get(ReportLink, (report_id, other_id)) is not None:
        return False
    session.add_all(
        [
            ReportLink(report_id=report_id, other_id=other_id),
            ReportLink(report_id=other_id, other_id=report_id),
        ]
    )
    await session.flush()
    return True


async def unlink(session: AsyncSession, report_id: bytes, other_id: bytes) -> bool:
    """Remove the link both ways; False if there was none."""
    result = await session.execute(
        delete(ReportLink).where(
            tuple_(ReportLink.report_id, ReportLink.other_id).in_(
                [(report_id, other_id), (other_id, report_id)]
            )
        )
    )
    await session.flush()
    return bool(cast(CursorResult[Any], result).rowcount)


async def links(session: AsyncSession, report_id: bytes) -> list[bytes]:
    rows = await session.scalars(
        select(ReportLink.other_id)
        .where(ReportLink.report_id == report_id)
        .order_by(ReportLink.other_id)
    )
    return list(rows)

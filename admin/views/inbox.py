"""The inbox: clear triage fields for everyone, a decrypted summary line and the number of
files for key-holders; filters; keyset pages; bulk close as spam."""

from __future__ import annotations

from aiohttp import web

from intake_bot.services import triaging
from intake_bot.storage import audit
from intake_bot.storage import inbox as inbox_repo
from intake_bot.storage import staff as staff_repo
from intake_bot.triage import Priority, Status

from .. import content
from ..permissions import Permission
from ..state import state_of, translator_of
from .common import hex_id, render, see_other, viewer

YES_NO = {"yes": True, "no": False}


async def _filter(request: web.Request) -> tuple[inbox_repo.InboxFilter, dict[str, str]]:
    """The filter from the query string; values that are not valid choices are ignored."""
    query = request.query
    chosen: dict[str, str] = {}
    status = query.get("status", "")
    priority = query.get("priority", "")
    label = query.get("label", "")[:40]
    urgent = query.get("urgent", "")
    incomplete = query.get("incomplete", "")
    assignee_name = query.get("assignee", "")[:64]
    assignee = None
    if assignee_name and assignee_name != "-":
        async with state_of(request).app.sessions() as session:
            member = await staff_repo.by_name(session, assignee_name)
        assignee = member.id if member is not None else b"\x00" * 16
    wanted = inbox_repo.InboxFilter(
        status=status if status in Status.__members__.values() else None,
        priority=priority if priority in Priority.__members__.values() else None,
        assignee=assignee,
        unassigned=assignee_name == "-",
        label=label or None,
        urgent=YES_NO.get(urgent),
        incomplete=YES_NO.get(incomplete),
    )
    for key, value in (
        ("status", wanted.status),
        ("priority", wanted.priority),
        ("assignee", assignee_name or None),
        ("label", wanted.label),
        ("urgent", urgent if urgent in YES_NO else None),
        ("incomplete", incomplete if incomplete in YES_NO else None),
    ):
        if value:
            chosen[key] = value
    return wanted, chosen


async def inbox(request: web.Request) -> web.Response:
    state = state_of(request)
    who = viewer(request)
    wanted, chosen = await _filter(request)
    after = inbox_repo.Cursor.decode(request.query.get("after", ""))
    ring = who.keyring(state.sessions) if who.can(Permission.CONTENT) else None
    material = None
    async with state.app.sessions() as session:
        page = await inbox_repo.page(session, wanted, after)
        labels = await inbox_repo.all_labels(session)
        if ring is not None:
            material = await content.summary_material(session, [row.id for row in page.rows])
    summaries = (
        {} if material is None or ring is None else content.summary_lines(state, ring, material)
    )
    if summaries:
        async with state.app.sessions() as session, session.begin():
            await audit.append(
                session,
                actor=who.member.name,
                action="inbox.summaries",
                details={"reports": len(summaries)},
            )
    return render(
        request,
        "inbox.html",
        {
            "page": page,
            "summaries": summaries,
            "show_content": ring is not None,
            "chosen": chosen,
            "statuses": list(Status),
            "priorities": list(Priority),
            "labels": labels,
            "assignees": await triaging.assignable(state.app),
            "next": page.next.encode() if page.next else None,
            "first_page": after is not None,
        },
    )


async def close_spam(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    form = await request.post()
    ids = [found for value in form.getall("report", []) if (found := hex_id(str(value)))]
    if not ids:
        _ = translator_of(request)
        raise web.HTTPBadRequest(text=_("Choose at least one report."))
    await triaging.close_spam(state.app, viewer(request).member.name, ids[:500])
    raise see_other("/")

"""One report: clear triage fields and history for every role that may see the inbox;
decrypted answers, files and notes for key-holders; triage forms for triage roles.
Every view and every file fetched is audited."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from intake_bot.crypto import CryptoError
from intake_bot.services import triaging
from intake_bot.storage import inbox as inbox_repo
from intake_bot.storage import reports as report_repo
from intake_bot.triage import CloseReason, Priority, Status, TriageError, allowed, parse_labels

from .. import content, rendering
from ..permissions import Permission
from ..state import state_of, translator_of
from .common import hex_id, not_found, render, route_id, see_other, viewer

TRIAGE_MESSAGES = {
    "status_not_allowed": "That status cannot follow the current one.",
    "close_reason_needed": "Choose why the report is closed.",
    "reason_only_when_closing": "A reason is given only when closing.",
    "label_length": "A label has 1 to 40 characters.",
    "label_characters": "A label has only letters, digits, spaces, '-' and '_'.",
    "too_many_labels": "At most 12 labels.",
    "assignee_unknown": "That member cannot be assigned.",
    "link_self": "A report cannot be linked to itself.",
    "link_unknown": "There is no report with that id.",
    "note_empty": "The note is empty.",
    "note_too_long": "The note is too long (at most 10,000 characters).",
}


async def _page(
    request: web.Request, report_id: bytes, *, error: str | None = None, status: int = 200
) -> web.Response:
    state = state_of(request)
    who = viewer(request)
    _ = translator_of(request)
    async with state.app.sessions() as session:
        row = await inbox_repo.row(session, report_id)
        if row is None:
            raise not_found(request)
        linked = await inbox_repo.links(session, report_id)
        view: rendering.ReportView | None = None
        images: dict[str, bool] = {}
        locked = False
        ring = who.keyring(state.sessions) if who.can(Permission.CONTENT) else None
        if who.can(Permission.CONTENT) and ring is None:
            locked = True
        elif who.can(Permission.CONTENT) and ring is not None:
            try:
                dek, view = await content.report_view(session, state, ring, report_id, _.language)
                stored = set(await report_repo.attachments(session, report_id))
                for item in view.files:
                    file_id = hex_id(item.id)
                    if file_id in stored and file_id is not None:
                        head = await content.first_bytes(state.app.blobs, dek, file_id)
                        images[item.id] = content.sniff_image(head) is not None
            except (CryptoError, ValueError, KeyError):
                view, locked = None, True
    await triaging.record_view(state.app, who.member.name, report_id, content=view is not None)
    history = await triaging.history(state.app, report_id)
    current = Status(row.triage_status)
    return render(
        request,
        "report.html",
        {
            "row": row,
            "report_hex": report_id.hex(),
            "view": view,
            "images": images,
            "locked": locked,
            "links": [other.hex() for other in linked],
            "history": history,
            "next_statuses": sorted(allowed(current), key=list(Status).index),
            "reasons": list(CloseReason),
            "priorities": list(Priority),
            "assignees": await triaging.assignable(state.app),
            "error": error,
        },
        status=status,
    )


async def report(request: web.Request) -> web.Response:
    return await _page(request, route_id(request, "report"))


async def _download(request: web.Request, *, inline: bool) -> web.StreamResponse:
    state = state_of(request)
    who = viewer(request)
    report_id = route_id(request, "report")
    file_id = route_id(request, "file")
    ring = who.keyring(state.sessions)
    async with state.app.sessions() as session:
        if file_id not in await report_repo.attachments(session, report_id) or ring is None:
            raise not_found(request)
        try:
            dek, view = await content.report_view(
                session, state, ring, report_id, translator_of(request).language
            )
        except (CryptoError, ValueError, KeyError):
            raise not_found(request) from None
    item = next((f for f in view.files if f.id == file_id.hex()), None)
    name = item.name if item is not None else "file"
    mime = "application/octet-stream"
    if inline:
        try:
            mime = (
                content.sniff_image(await content.first_bytes(state.app.blobs, dek, file_id)) or ""
            )
        except CryptoError:
            mime = ""
        if not mime:
            raise not_found(request)
    await triaging.record_file(
        state.app, who.member.name, report_id, file_id, "image" if inline else "download"
    )
    response = web.StreamResponse(
        headers={
            "Content-Type": mime,
            "Content-Disposition": ("inline" if inline else "attachment")
            + f"; filename*=UTF-8''{quote(name, safe='')}",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        }
    )
    stream = content.stream_file(state.app.blobs, dek, file_id)
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        first = b""
    except CryptoError:
        raise not_found(request) from None
    await response.prepare(request)
    await response.write(first)
    async for piece in stream:
        await response.write(piece)
    await response.write_eof()
    return response


async def download(request: web.Request) -> web.StreamResponse:
    return await _download(request, inline=False)


async def image(request: web.Request) -> web.StreamResponse:
    return await _download(request, inline=True)


async def _triage(request: web.Request, change: str) -> web.StreamResponse:
    state = state_of(request)
    who = viewer(request)
    report_id = route_id(request, "report")
    form = await request.post()
    actor = who.member.name
    try:
        if change == "status":
            reason = str(form.get("reason", ""))
            await triaging.change_status(
                state.app,
                actor,
                report_id,
                Status(str(form.get("status", ""))),
                CloseReason(reason) if reason else None,
            )
        elif change == "priority":
            await triaging.set_priority(
                state.app, actor, report_id, Priority(str(form.get("priority", "")))
            )
        elif change == "assign":
            await triaging.assign(
                state.app, actor, report_id, str(form.get("assignee", "")) or None
            )
        elif change == "labels":
            labels = parse_labels(str(form.get("labels", ""))[:2000])
            await triaging.set_labels(state.app, actor, report_id, labels)
        elif change == "link":
            text = str(form.get("other", "")).strip().rstrip("/").rsplit("/", 1)[-1]
            await triaging.link(state.app, actor, report_id, hex_id(text.lower()) or b"\x00" * 16)
        elif change == "unlink":
            other = hex_id(str(form.get("other", "")))
            if other is not None:
                await triaging.unlink(state.app, actor, report_id, other)
        elif change == "note":
            ring = who.keyring(state.sessions)
            if ring is None:
                raise not_found(request)
            await triaging.add_note(state.app, actor, ring, report_id, str(form.get("note", "")))
    except TriageError as exc:
        _ = translator_of(request)
        message = _(TRIAGE_MESSAGES.get(exc.code, "That change is not possible."))
        return await _page(request, report_id, error=message, status=400)
    except ValueError:
        _ = translator_of(request)
        return await _page(request, report_id, error=_("That change is not possible."), status=400)
    raise see_other(f"/reports/{report_id.hex()}")


async def change_status(request: web.Request) -> web.StreamResponse:
    return await _triage(request, "status")


async def change_priority(request: web.Request) -> web.StreamResponse:
    return await _triage(request, "priority")


async def change_assignee(request: web.Request) -> web.StreamResponse:
    return await _triage(request, "assign")


async def change_labels(request: web.Request) -> web.StreamResponse:
    return await _triage(request, "labels")


async def add_link(request: web.Request) -> web.StreamResponse:
    return await _triage(request, "link")


async def remove_link(request: web.Request) -> web.StreamResponse:
    return await _triage(request, "unlink")


async def add_note(request: web.Request) -> web.StreamResponse:
    return await _triage(request, "note")

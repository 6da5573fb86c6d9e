"""One report: clear triage fields and history for every role that may see the inbox;
decrypted answers, files and notes for key-holders; triage forms for triage roles.
Every view and every file fetched is audited."""

from __future__ import annotations

from urllib.parse import quote

import structlog
from aiohttp import web

from intake_bot.crypto import CryptoError
from intake_bot.services import triaging
from intake_bot.services.errors import ServiceError
from intake_bot.storage import inbox as inbox_repo
from intake_bot.storage import reports as report_repo
from intake_bot.triage import CloseReason, Priority, Status, TriageError, allowed, parse_labels

from .. import content, rendering
from ..i18n import N_
from ..permissions import Permission
from ..state import state_of, translator_of
from .common import hex_id, not_found, render, route_id, see_other, viewer

TRIAGE_MESSAGES = {
    "status_not_allowed": N_("That status cannot follow the current one."),
    "close_reason_needed": N_("Choose why the report is closed."),
    "reason_only_when_closing": N_("A reason is given only when closing."),
    "label_length": N_("A label has 1 to 40 characters."),
    "label_characters": N_("A label has only letters, digits, spaces, '-' and '_'."),
    "too_many_labels": N_("At most 12 labels."),
    "assignee_unknown": N_("That member cannot be assigned."),
    "link_self": N_("A report cannot be linked to itself."),
    "link_unknown": N_("There is no report with that id."),
    "note_empty": N_("The note is empty."),
    "note_too_long": N_("The note is too long (at most 10,000 characters)."),
}

log = structlog.get_logger("intake.admin")


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
        damaged: dict[str, bool] = {}
        locked = False
        ring = who.keyring(state.sessions) if who.can(Permission.CONTENT) else None
        if who.can(Permission.CONTENT) and ring is None:
            locked = True
        elif who.can(Permission.CONTENT) and ring is not None:
            try:
                dek, view = await content.report_view(session, state, ring, report_id, _)
            except (CryptoError, ValueError):
                view, locked = None, True
            stored = set(await report_repo.attachments(session, report_id)) if view else set()
            for item in view.files if view is not None else ():
                file_id = hex_id(item.id)
                if file_id is None or file_id not in stored:
                    continue
                # A file that does not decrypt is marked, not a reason to hide the report.
                try:
                    head = await content.first_bytes(state.app.blobs, dek, file_id)
                except (CryptoError, OSError):
                    damaged[item.id] = True
                    continue
                images[item.id] = content.sniff_image(head) is not None
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
            "damaged": damaged,
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
    """Stream one decrypted file.

    Nothing is sent until the first piece (up to 256 KiB of ciphertext, several records)
    has decrypted and authenticated: a damaged or swapped file is a 404. A record that
    fails later, after the 200 and the headers went out, cuts the connection without
    ending the body (no last chunk; fewer bytes than Content-Length), so the browser and
    any client report a failed download instead of saving a truncated file as complete.
    """
    state = state_of(request)
    who = viewer(request)
    report_id = route_id(request, "report")
    file_id = route_id(request, "file")
    ring = who.keyring(state.sessions)
    async with state.app.sessions() as session:
        if (
            ring is None
            or await inbox_repo.row(session, report_id) is None
            or file_id not in await report_repo.attachments(session, report_id)
        ):
            raise not_found(request)
        try:
            dek, view = await content.report_view(
                session, state, ring, report_id, translator_of(request)
            )
        except (CryptoError, ValueError):
            raise not_found(request) from None
    item = next((f for f in view.files if f.id == file_id.hex()), None)
    name = item.name if item is not None else "file"
    mime = "application/octet-stream"
    if inline:
        try:
            mime = (
                content.sniff_image(await content.first_bytes(state.app.blobs, dek, file_id)) or ""
            )
        except (CryptoError, OSError):
            mime = ""
        if not mime:
            raise not_found(request)
    await triaging.record_file(
        state.app, who.member.name, report_id, file_id, "image" if inline else "download"
    )
    headers = {
        "Content-Type": mime,
        "Content-Disposition": ("inline" if inline else "attachment")
        + f"; filename*=UTF-8''{quote(name, safe='')}",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    if item is not None:
        headers["Content-Length"] = str(item.size)
    response = web.StreamResponse(headers=headers)
    stream = content.stream_file(state.app.blobs, dek, file_id)
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        first = b""
    except (CryptoError, OSError):
        raise not_found(request) from None
    await response.prepare(request)
    sent = len(first)
    await response.write(first)
    try:
        async for piece in stream:
            sent += len(piece)
            await response.write(piece)
    except (CryptoError, OSError) as exc:
        log.warning("file download cut: the file failed to decrypt", error=type(exc).__name__)
        _cut(request)
        return response
    if item is not None and sent != item.size:
        log.warning("file download cut: its size differs from the manifest")
        _cut(request)
        return response
    await response.write_eof()
    return response


def _cut(request: web.Request) -> None:
    """Abort the connection mid-response: the body never ends the way a complete one does."""
    if request.transport is not None:
        request.transport.abort()


async def download(request: web.Request) -> web.StreamResponse:
    return await _download(request, inline=False)


async def image(request: web.Request) -> web.StreamResponse:
    return await _download(request, inline=True)


async def _apply(request: web.Request, change: str, report_id: bytes) -> None:
    """Make one triage change from the posted form (raises what the services raise)."""
    state = state_of(request)
    who = viewer(request)
    form = await request.post()
    actor = who.member.name
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
        await triaging.assign(state.app, actor, report_id, str(form.get("assignee", "")) or None)
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


async def _triage(request: web.Request, change: str) -> web.StreamResponse:
    state = state_of(request)
    report_id = route_id(request, "report")
    async with state.app.sessions() as session:
        if await inbox_repo.row(session, report_id) is None:
            raise not_found(request)
    _ = translator_of(request)
    try:
        await _apply(request, change, report_id)
    except TriageError as exc:
        message = _(TRIAGE_MESSAGES.get(exc.code, "That change is not possible."))
        return await _page(request, report_id, error=message, status=400)
    except ServiceError:
        # The report went away between the check above and the change.
        raise not_found(request) from None
    except CryptoError:
        return await _page(
            request, report_id, error=_("Your keys cannot open this report."), status=403
        )
    except ValueError:
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

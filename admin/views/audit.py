"""The audit log (admins): entries newest first, chain verification on request, and the
head signed with the org signing key at the latest key-holder unlock, for export."""

from __future__ import annotations

from aiohttp import web

from intake_bot.crypto import SignatureError, verify_audit_head
from intake_bot.services.auditing import SignedHead
from intake_bot.storage import audit
from intake_bot.storage.models import AuditCheckpoint

from ..state import state_of, translator_of
from .common import render, viewer

PAGE = 100


async def _checkpoint(request: web.Request) -> AuditCheckpoint | None:
    from sqlalchemy import select  # noqa: PLC0415

    async with state_of(request).app.sessions() as session:
        return await session.scalar(
            select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1)
        )


async def page(request: web.Request) -> web.Response:
    state = state_of(request)
    _ = translator_of(request)
    before_text = request.query.get("before", "")
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    before = (
        int(before_text)
        if before_text.isascii() and before_text.isdigit() and len(before_text) < 19
        else None
    )
    verified: str | None = None
    problem: str | None = None
    checkpoint = await _checkpoint(request)
    async with state.app.sessions() as session:
        entries = await audit.newest(session, before=before, limit=PAGE)
        if request.query.get("verify") == "1":
            exported = None if checkpoint is None else audit.Head(checkpoint.seq, checkpoint.hash)
            try:
                if checkpoint is not None:
                    verify_audit_head(
                        state.pinned, checkpoint.seq, checkpoint.hash, checkpoint.signature
                    )
                head = await audit.verify(session, exported)
                verified = _("The chain verifies: %(count)s entries.", count=head.seq)
            except SignatureError:
                problem = _("The signed head does not verify against the pinned signing key.")
            except audit.AuditChainError as exc:
                problem = _("The audit log does not verify: %(problem)s", problem=str(exc))
    async with state.app.sessions() as session, session.begin():
        await audit.append(session, actor=viewer(request).member.name, action="audit.view")
    return render(
        request,
        "audit.html",
        {
            "entries": entries,
            "older": entries[-1].seq if len(entries) == PAGE else None,
            "verified": verified,
            "problem": problem,
            "checkpoint": checkpoint,
        },
    )


async def export_head(request: web.Request) -> web.Response:
    checkpoint = await _checkpoint(request)
    if checkpoint is None:
        _ = translator_of(request)
        raise web.HTTPNotFound(
            text=_("No head has been signed yet: it is signed when a key-holder logs in.")
        )
    body = SignedHead(checkpoint.seq, checkpoint.hash, checkpoint.signature).to_json()
    return web.Response(
        text=body + "\n",
        content_type="application/json",
        headers={"Content-Disposition": "attachment; filename=intake-audit-head.json"},
    )

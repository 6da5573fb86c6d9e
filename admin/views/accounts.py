"""Accounts (admins): add a member (a one-time enrolment link), disable, re-enrol.

Each change asks for the admin's password again. Disabling or re-enrolling ends the
member's live sessions at once; a re-enrolled key-holder has a new key pair and needs new
grants from a key-holder.
"""

from __future__ import annotations

from aiohttp import web

from intake_bot.services import ServiceError, accounts, signin
from intake_bot.storage.models import Role

from ..state import password_field, state_of, translator_of
from .common import render, viewer


async def _page(request: web.Request, status: int = 200, **extra: object) -> web.Response:
    members = await accounts.list_members(state_of(request).app)
    return render(
        request,
        "accounts.html",
        {
            "members": members,
            "fingerprints": {m.name: accounts.key_fingerprint(m) for m in members},
            "roles": list(Role),
            **extra,
        },
        status=status,
    )


async def page(request: web.Request) -> web.Response:
    return await _page(request)


async def _reauthenticated(request: web.Request) -> bool:
    state = state_of(request)
    member = viewer(request).member
    key = state.sign_in_backoff.key("name", member.name)
    if state.sign_in_backoff.wait(key) > 0:
        return False
    form = await request.post()
    ok = await signin.recheck_password(state.app, member, password_field(form))
    if not ok:
        state.sign_in_backoff.fail(key)
    return ok


async def add(request: web.Request) -> web.Response:
    state = state_of(request)
    _ = translator_of(request)
    form = await request.post()
    if not await _reauthenticated(request):
        return await _page(request, 403, error=_("Your password is wrong."))
    roles = [Role(str(r)) for r in form.getall("role", []) if r in Role.__members__.values()]
    try:
        invite = await accounts.add_member(
            state.app, str(form.get("name", ""))[:200], roles, actor=viewer(request).member.name
        )
    except ServiceError:
        return await _page(
            request,
            400,
            error=_(
                "Choose a free name of letters, digits, '.', '-' or '_' and at least one role."
            ),
        )
    return await _page(request, invite=invite)


async def disable(request: web.Request) -> web.Response:
    return await _change(request, "disable")


async def reenrol(request: web.Request) -> web.Response:
    return await _change(request, "reenrol")


async def _change(request: web.Request, what: str) -> web.Response:
    state = state_of(request)
    _ = translator_of(request)
    who = viewer(request)
    form = await request.post()
    name = str(form.get("name", ""))[:200]
    if name == who.member.name:
        return await _page(request, 400, error=_("You cannot do this to your own account."))
    if not await _reauthenticated(request):
        return await _page(request, 403, error=_("Your password is wrong."))
    try:
        if what == "disable":
            member = await accounts.disable(state.app, name, actor=who.member.name)
            state.sessions.end_for(member.id)
            return await _page(request, done=_("%(name)s is disabled.", name=name))
        invite = await accounts.reenrol(state.app, name, actor=who.member.name)
    except ServiceError:
        return await _page(request, 404, error=_("There is no such member."))
    async with state.app.sessions() as session:
        from intake_bot.storage import staff as staff_repo  # noqa: PLC0415

        found = await staff_repo.by_name(session, name)
    if found is not None:
        state.sessions.end_for(found.id)
    return await _page(request, invite=invite, reenrolled=True)

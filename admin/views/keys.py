"""Keys (key-holders): the inventory of org keys and the pinned signing key, the member's
own fingerprint, and granting keys to another key-holder after comparing theirs."""

from __future__ import annotations

from aiohttp import web

from intake_bot.crypto import fingerprint, key_id
from intake_bot.services import ServiceError, accounts, keyring
from intake_bot.storage import keys as key_repo
from intake_bot.storage.models import Role, StaffState

from ..state import password_field, state_of, translator_of
from .common import render, viewer


async def _page(request: web.Request, status: int = 200, **extra: object) -> web.Response:
    state = state_of(request)
    who = viewer(request)
    async with state.app.sessions() as session:
        inventory = await key_repo.list_org_keys(session)
    members = await accounts.list_members(state.app)
    mine = next((m for m in members if m.id == who.member.id), None)
    ring = who.keyring(state.sessions)
    grantees = [
        m.name
        for m in members
        if m.state is StaffState.ACTIVE
        and Role.KEYHOLDER in m.roles
        and m.public_key is not None
        and m.id != who.member.id
    ]
    return render(
        request,
        "keys.html",
        {
            "inventory": inventory,
            "signing_fingerprint": state.pinned.fingerprint,
            "own_fingerprint": None
            if mine is None or mine.public_key is None
            else fingerprint(key_id(mine.public_key)),
            "grantees": grantees,
            # A key-holder without grants has an (empty) keyring: they hold nothing to give.
            "holds_keys": ring is not None and bool(ring.org_keys),
            **extra,
        },
        status=status,
    )


async def page(request: web.Request) -> web.Response:
    return await _page(request)


async def grant(request: web.Request) -> web.Response:
    state = state_of(request)
    _ = translator_of(request)
    who = viewer(request)
    key = state.sign_in_backoff.key("name", who.member.name)
    if state.sign_in_backoff.wait(key) > 0:
        return await _page(request, 429, error=_("Too many attempts. Wait and try again."))
    form = await request.post()
    grantee = str(form.get("grantee", ""))[:200]
    try:
        done = await keyring.grant_keys(
            state.app,
            who.member.name,
            password_field(form),
            grantee,
            str(form.get("fingerprint", ""))[:200],
        )
    except ServiceError as exc:
        text = str(exc)
        if "fingerprint" in text:
            error = _(
                "The fingerprint does not match %(name)s's key: nothing was granted. "
                "Compare it with them again, out of band.",
                name=grantee,
            )
        elif "wrong password" in text:
            state.sign_in_backoff.fail(key)
            error = _("Your password is wrong.")
        else:
            error = _("%(name)s is not an enrolled key-holder.", name=grantee)
        return await _page(request, 400, error=error)
    if done.signing_key:
        message = _(
            "%(name)s now holds the organisation keys you hold (%(count)s newly granted) "
            "and the signing key.",
            name=done.grantee,
            count=len(done.org_keys),
        )
    else:
        message = _(
            "%(name)s now holds the organisation keys you hold (%(count)s newly granted).",
            name=done.grantee,
            count=len(done.org_keys),
        )
    return await _page(request, done=message)

"""Log in (password, then second factor, then the unlock), log out, own password, language.

Both failure kinds of the password step look the same to the browser, whatever the reason
(unknown name, wrong password, disabled account), and cost the same Argon2id work. Failed
attempts slow down per name and per client (:mod:`admin.throttle`); the second factor has
its own, separate slow-down per account and client.
"""

from __future__ import annotations

import math
import unicodedata

from aiohttp import web

from intake_bot.crypto import CryptoError, Plaintext, Secret
from intake_bot.services import ServiceError, accounts, signin
from intake_bot.storage import staff as staff_repo
from intake_bot.storage.models import Role

from ..i18n import LANGUAGES
from ..security import set_cookie
from ..sessions import Stage, pack_keyring
from ..state import COOKIE, LANG_COOKIE, PENDING, PENDING_TICKET, VIEWER, state_of, translator_of
from .common import render, see_other, viewer

LOOPBACK = frozenset({"127.0.0.1", "::1"})


def _client(request: web.Request) -> str:
    """The client address the slow-down counts by (in memory only, as a keyed hash).

    Behind a reverse proxy every request comes from the proxy; with
    ``INTAKE_ADMIN_BEHIND_PROXY`` the address the proxy appended last to
    ``X-Forwarded-For`` counts instead, and only for requests from the loopback (where the
    proxy runs), so nobody else can choose their own address.
    """
    remote = request.remote or ""
    if state_of(request).app.settings.admin_behind_proxy and remote in LOOPBACK:
        forwarded = request.headers.getall("X-Forwarded-For", [])
        last = forwarded[-1].split(",")[-1].strip() if forwarded else ""
        if last:
            return last[:64]
    return remote


def _account(name: str) -> str:
    """The name as the account is looked up (trimmed, NFC): one slow-down per account,
    however the name is spelled (NFD, spaces around it)."""
    try:
        return accounts.check_name(name)
    except ServiceError:
        return name.strip()


def _throttled(request: web.Request, template: str, wait: float) -> web.Response:
    _ = translator_of(request)
    seconds = max(1, math.ceil(wait))
    page = render(
        request,
        template,
        {"error": _("Too many attempts. Wait %(seconds)s seconds and try again.", seconds=seconds)},
        status=429,
    )
    page.headers["Retry-After"] = str(seconds)
    return page


async def login_form(request: web.Request) -> web.Response:
    return render(request, "login.html", {})


async def login(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    _ = translator_of(request)
    form = await request.post()
    name = str(form.get("name", ""))[:200]
    password = Secret(str(form.get("password", "")).encode("utf-8")[:1024])
    keys = (
        state.sign_in_backoff.key("name", _account(name)),
        state.sign_in_backoff.key("client", _client(request)),
    )
    wait = state.sign_in_backoff.wait(*keys)
    if wait > 0:
        return _throttled(request, "login.html", wait)
    attempt = await signin.check_password(state.app, name, password)
    if not attempt.ok or attempt.member is None:
        state.sign_in_backoff.fail(*keys)
        return render(
            request,
            "login.html",
            {"error": _("The name or the password is wrong.")},
            status=401,
        )
    state.sign_in_backoff.succeed(*keys)
    # Whatever session this browser had ends: its cookie is about to be replaced.
    signed_in = request.get(VIEWER)
    for earlier in (request.get(PENDING), None if signed_in is None else signed_in.session):
        if earlier is not None:
            state.sessions.end(earlier)
    ticket, _session = state.sessions.start(
        attempt.member.id, Stage.SECOND_FACTOR, Plaintext(password.reveal())
    )
    response = see_other("/login/code")
    set_cookie(
        response,
        COOKIE,
        ticket.encode(),
        secure=state.app.settings.admin_secure_cookies,
        max_age=None,
    )
    raise response


async def second_factor_form(request: web.Request) -> web.Response:
    if PENDING not in request:
        raise see_other("/login")
    return render(request, "second_factor.html", {})


async def second_factor(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    _ = translator_of(request)
    pending = request.get(PENDING)
    ticket = request.get(PENDING_TICKET)
    if pending is None or ticket is None:
        raise see_other("/login")
    async with state.app.sessions() as db:
        member = await staff_repo.get_staff(db, pending.staff_id)
    if member is None:
        raise see_other("/login")
    keys = (
        state.second_factor_backoff.key("staff", member.id),
        state.second_factor_backoff.key("client", _client(request)),
    )
    wait = state.second_factor_backoff.wait(*keys)
    if wait > 0:
        return _throttled(request, "second_factor.html", wait)
    form = await request.post()
    code = str(form.get("code", ""))[:64]
    if not await signin.check_second_factor(state.app, member, code):
        state.second_factor_backoff.fail(*keys)
        return render(
            request,
            "second_factor.html",
            {"error": _("That code is wrong or was used already. Wait for the next one.")},
            status=401,
        )
    state.second_factor_backoff.succeed(*keys)
    password = state.sessions.open(ticket, pending)
    state.sessions.end(pending)
    secret = None
    failed = False
    if password is not None and Role.KEYHOLDER in member.roles:
        try:
            unlocked = await signin.unlock_keys(state.app, member, Secret(password.reveal()))
            secret = pack_keyring(unlocked.keyring)
        except (ServiceError, CryptoError):
            # Signed in without keys, visibly and on the record: a grant that does not
            # open may have been tampered with.
            failed = True
            await signin.record_unlock_failure(state.app, member)
    new_ticket, session = state.sessions.start(member.id, Stage.SIGNED_IN, secret)
    session.keys_failed = failed
    response = see_other("/")
    set_cookie(
        response,
        COOKIE,
        new_ticket.encode(),
        secure=state.app.settings.admin_secure_cookies,
        max_age=None,
    )
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    member = viewer(request)
    state.sessions.end(member.session)
    await signin.record_logout(state.app, member.member)
    response = see_other("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


async def password_form(request: web.Request) -> web.Response:
    return render(request, "password.html", {})


async def change_password(request: web.Request) -> web.Response:
    state = state_of(request)
    _ = translator_of(request)
    member = viewer(request).member
    key = state.sign_in_backoff.key("name", member.name)
    wait = state.sign_in_backoff.wait(key)
    if wait > 0:
        return _throttled(request, "password.html", wait)
    form = await request.post()
    old = Secret(str(form.get("current", "")).encode("utf-8")[:1024])
    new = Secret(str(form.get("new", "")).encode("utf-8")[:1024])
    if str(form.get("new", "")) != str(form.get("repeat", "")):
        return render(
            request, "password.html", {"error": _("The two new passwords differ.")}, status=400
        )
    try:
        await signin.change_password(state.app, member, old, new)
    except ServiceError as exc:
        if "current password" in str(exc):
            state.sign_in_backoff.fail(key)
            message = _("The current password is wrong.")
        else:
            message = _("The new password is too weak: use a longer passphrase of unrelated words.")
        return render(request, "password.html", {"error": message}, status=400)
    # Whoever else holds a session of this member (the reason to change it, perhaps) is out.
    state.sessions.end_for(member.id, keep=viewer(request).session)
    return render(request, "password.html", {"done": True})


def _safe_next(target: str) -> str:
    """Only a path on this site (no scheme, no //host): an open redirect phishes staff.

    Browsers, and yarl when aiohttp builds the Location header, drop tabs and newlines
    and read a backslash as a slash, so ``/<tab>/host`` or ``/\\host`` would leave the
    site: any control character, space or backslash sends the member to the inbox."""
    if (
        not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in target)
    ):
        return "/"
    return target


async def language(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    form = await request.post()
    chosen = str(form.get("language", ""))
    if chosen not in LANGUAGES:
        _ = translator_of(request)
        raise web.HTTPBadRequest(text=_("Unknown language."))
    member = request.get(VIEWER)
    response = see_other(_safe_next(str(form.get("next", "/"))))
    if member is not None:
        await signin.set_language(state.app, member.member, chosen)
    set_cookie(
        response,
        LANG_COOKIE,
        chosen,
        secure=state.app.settings.admin_secure_cookies,
        max_age=365 * 24 * 3600,
    )
    raise response

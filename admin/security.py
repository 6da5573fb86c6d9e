"""Web security: the headers of every response and the middlewares every request passes.

:func:`on_prepare` (``on_response_prepare``) gives every response, just before it is sent
(pages, errors, streamed downloads, aiohttp's own error pages), a strict
Content-Security-Policy, ``frame-ancestors 'none'``, no referrer, nosniff and
``Cache-Control: no-store``. The middlewares, outermost first:

1. :func:`sessions` — the session cookie to a :class:`~admin.state.Viewer`; the account is
   read from the database on every request, so disabling or re-enrolling it ends its
   sessions at once and role changes apply at once.
2. :func:`errors` — client errors as a page in the member's language.
3. :func:`access` — the route's permission from :data:`admin.routes.PERMISSIONS`; a route
   without one is refused (fail closed).
4. :func:`csrf` — every state-changing request carries the session's token (or, before
   login, an HMAC of the pre-login cookie); compared in constant time.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp.typedefs import Middleware

from intake_bot.storage import staff as staff_repo
from intake_bot.storage.models import StaffState

from .i18n import DEFAULT, LANGUAGES, Translator, negotiate
from .pages import render
from .permissions import Permission, permissions_of
from .sessions import Stage, Ticket
from .state import (
    COOKIE,
    LANG_COOKIE,
    PENDING,
    PENDING_TICKET,
    PRE,
    PRE_COOKIE,
    TRANSLATOR,
    VIEWER,
    Viewer,
    state_of,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _set_headers(response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Cache-Control"] = "no-store"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the same headers on every response just before it is sent,
    including those the middleware cannot reach — a handler's streamed download (which
    keeps its own, stricter policy) and the 500 page aiohttp makes for a crash."""
    _set_headers(response)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Client errors as a page in the member's language (their text is already translated)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or TRANSLATOR not in request:
            raise
        page = render(
            request,
            "error.html",
            {"status": exc.status, "message": exc.text if exc.content_type == "text/plain" else ""},
            status=exc.status,
        )
        for name in ("Retry-After", "Allow"):
            if name in exc.headers:
                page.headers[name] = exc.headers[name]
        return page


def set_cookie(
    response: web.StreamResponse, name: str, value: str, *, secure: bool, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        secure=secure,
        samesite="Strict",
        path="/",
        max_age=max_age,
    )


@web.middleware
async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = state_of(request)
    language = negotiate(request.headers.get("Accept-Language", ""))
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        language = chosen
    ticket = Ticket.decode(request.cookies.get(COOKIE, ""))
    session = None if ticket is None else state.sessions.get(ticket)
    if ticket is not None and session is not None:
        async with state.app.sessions() as db:
            member = await staff_repo.get_staff(db, session.staff_id)
            stored_language = await staff_repo.language(db, session.staff_id)
        if member is None or member.state is not StaffState.ACTIVE:
            state.sessions.end_for(session.staff_id)
        elif session.stage is Stage.SIGNED_IN:
            request[VIEWER] = Viewer(member, session, ticket, permissions_of(member.roles))
            language = stored_language if stored_language in LANGUAGES else language
        else:
            request[PENDING] = session
            request[PENDING_TICKET] = ticket
    request[TRANSLATOR] = Translator(
        language, state.catalogues.get(language, state.catalogues[DEFAULT])
    )
    request[PRE] = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(32)
    response = await handler(request)
    if PRE_COOKIE not in request.cookies and not response.prepared:
        set_cookie(
            response,
            PRE_COOKIE,
            request[PRE],
            secure=state.app.settings.admin_secure_cookies,
            max_age=None,
        )
    return response


def access_middleware(permissions: Mapping[str, Permission]) -> Middleware:
    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route
        if request.match_info.http_exception is not None:
            raise request.match_info.http_exception
        _ = request[TRANSLATOR]
        needed = permissions.get(route.name or "")
        if needed is None:
            raise web.HTTPForbidden(text=_("This page is not open to anyone."))
        if needed is Permission.PUBLIC:
            return await handler(request)
        viewer = request.get(VIEWER)
        if viewer is None:
            if request.method in SAFE_METHODS:
                raise web.HTTPSeeOther("/login")
            raise web.HTTPForbidden(text=_("Log in first."))
        if not viewer.can(needed):
            raise web.HTTPForbidden(text=_("Your role does not allow this."))
        return await handler(request)

    return access


@web.middleware
async def csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in SAFE_METHODS:
        return await handler(request)
    form = await request.post()
    sent = str(form.get("csrf", ""))
    viewer = request.get(VIEWER)
    pending = request.get(PENDING)
    if viewer is not None:
        expected = viewer.session.csrf
    elif pending is not None:
        expected = pending.csrf
    else:
        pre = request.cookies.get(PRE_COOKIE)
        expected = state_of(request).form_token(pre) if pre else ""
    if not expected or not secrets.compare_digest(sent.encode(), expected.encode()):
        _ = request[TRANSLATOR]
        raise web.HTTPForbidden(
            text=_("This form has expired. Go back, reload the page and try again.")
        )
    return await handler(request)

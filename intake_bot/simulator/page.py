"""The chat page: a Telegram-like private chat with the bot, in a browser, with no network.

Organisations try the whole system on a laptop with it: each browser tab plays one
simulated user (``/chat?user=<id>``), so two tabs can play two reporters side by side.
The page is static HTML, CSS and vanilla JavaScript from ``web/`` (no framework, no CDN,
no web fonts) and does everything through the control API (:mod:`.control`): it creates
and lists users, sends text, files, albums and forwards, presses buttons, and long-polls
``/control/chats/<id>/transcript?changed_after=<version>`` to show the bot's messages,
edits and deletions live. The routes:

* ``GET /`` -> a redirect to ``/chat`` (the query string kept).
* ``GET /chat`` -> the page; without ``?user=`` it opens on the user picker.
* ``GET /chat/static/<name>`` -> its stylesheet, script and icon (nothing else).
* ``GET /chat/api/bot`` -> ``{"bot": {"id", "first_name", "username"}}`` for the header.

Every response carries a strict Content-Security-Policy (no inline script or style, no
``eval``, nothing from another origin), ``X-Content-Type-Options: nosniff`` and
``Referrer-Policy: no-referrer``. The script renders all message text, names and captions
with ``textContent``, never as HTML, so whatever a bot or a user writes shows literally.

.. warning:: Like the control API, the page has no authentication: anyone who can open it
   can read every chat and speak as any user. Bind the simulator to 127.0.0.1 only.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from aiohttp import web

from .state import SIMULATOR

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""Only the page's own files; images may also be ``data:`` and ``blob:`` (local previews)."""

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

ASSETS: Final = {
    "chat.css": "text/css",
    "chat.js": "text/javascript",
    "icon.svg": "image/svg+xml",
}
"""The files under ``/chat/static/`` and their types: an allow-list, so no path tricks."""

_PAGE: Final = "chat.html"


def routes() -> list[web.RouteDef]:
    return [
        web.get("/", redirect_to_chat),
        web.get("/chat", chat_page),
        web.get("/chat/static/{name}", static_asset),
        web.get("/chat/api/bot", bot_info),
    ]


async def redirect_to_chat(request: web.Request) -> web.StreamResponse:
    location = "/chat" + (f"?{request.query_string}" if request.query_string else "")
    return _secured(web.Response(status=302, headers={"Location": location}))


async def chat_page(request: web.Request) -> web.StreamResponse:
    return _secured(web.Response(body=_read(_PAGE), content_type="text/html", charset="utf-8"))


async def static_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    content_type = ASSETS.get(name)
    if content_type is None:
        return _secured(web.Response(status=404, text="no such file"))
    charset = None if content_type.startswith("image/") else "utf-8"
    return _secured(web.Response(body=_read(name), content_type=content_type, charset=charset))


async def bot_info(request: web.Request) -> web.StreamResponse:
    bot = request.app[SIMULATOR].bot
    body = {"bot": {"id": bot.id, "first_name": bot.first_name, "username": bot.username}}
    return _secured(web.json_response(body))


def _read(name: str) -> bytes:
    """A file of ``web/``, read at each request so that edits show on reload."""
    return resources.files("intake_bot.simulator").joinpath("web", name).read_bytes()


def _secured(response: web.Response) -> web.Response:
    response.headers.update(SECURITY_HEADERS)
    return response

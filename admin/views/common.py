"""Helpers shared by the handlers: rendering with the common context, ids from URLs."""

from __future__ import annotations

from aiohttp import web

from ..pages import render
from ..state import VIEWER, Viewer, translator_of

__all__ = ["hex_id", "not_found", "render", "route_id", "see_other", "viewer"]

ID_HEX = 32


def see_other(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


def viewer(request: web.Request) -> Viewer:
    """The signed-in member (the access middleware guarantees one on non-public routes)."""
    return request[VIEWER]


def hex_id(text: str) -> bytes | None:
    """A 16-byte id from 32 hex digits, or None for anything else (forged URLs)."""
    if len(text) != ID_HEX:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def route_id(request: web.Request, name: str) -> bytes:
    found = hex_id(request.match_info.get(name, ""))
    if found is None:
        raise not_found(request)
    return found


def not_found(request: web.Request) -> web.HTTPNotFound:
    _ = translator_of(request)
    return web.HTTPNotFound(text=_("There is no such page."))

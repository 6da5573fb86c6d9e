"""The interface's own static files (a style sheet, an icon): a fixed list, no directory
listing, no path from the URL ever reaches the file system."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

FILES = {"admin.css": "text/css", "icon.svg": "image/svg+xml"}


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in FILES:
        raise web.HTTPNotFound
    body = (resources.files("admin") / "static" / name).read_bytes()
    return web.Response(body=body, content_type=FILES[name])

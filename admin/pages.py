"""Rendering a page: the template plus what every page needs (translator, member, CSRF
token, languages). Templates autoescape everything; nothing from a report is marked safe."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from .i18n import LANGUAGES
from .permissions import Permission
from .state import PENDING, PRE, VIEWER, state_of, translator_of


def common_context(request: web.Request) -> dict[str, object]:
    """What every template sees: the translator, the member, CSRF tokens, languages."""
    who = request.get(VIEWER)
    pending = request.get(PENDING)
    state = state_of(request)
    if who is not None:
        csrf = who.session.csrf
    elif pending is not None:
        csrf = pending.csrf
    else:
        csrf = state.form_token(request.get(PRE, ""))
    return {
        "_": translator_of(request),
        "me": who,
        "csrf": csrf,
        "languages": LANGUAGES,
        "language": translator_of(request).language,
        "path": request.path_qs,
        "P": Permission,
    }


def render(
    request: web.Request, template: str, context: Mapping[str, Any], *, status: int = 200
) -> web.Response:
    return aiohttp_jinja2.render_template(
        template, request, {**common_context(request), **context}, status=status
    )

"""Every route of the staff interface with the permission it needs: the one table the
router is built from and the access middleware reads. A route missing here does not
exist; a route whose name has no permission is refused (see :mod:`admin.security`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from .permissions import Permission
from .static import static_file
from .views import accounts, audit, auth, enrol, inbox, keys, report

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REPORT = "/reports/{report:[0-9a-f]{32}}"
FILE = REPORT + "/files/{file:[0-9a-f]{32}}"


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    name: str
    permission: Permission


ROUTES: tuple[Route, ...] = (
    Route("GET", "/static/{name}", static_file, "static", Permission.PUBLIC),
    Route("GET", "/login", auth.login_form, "login-form", Permission.PUBLIC),
    Route("POST", "/login", auth.login, "login", Permission.PUBLIC),
    Route("GET", "/login/code", auth.second_factor_form, "second-factor-form", Permission.PUBLIC),
    Route("POST", "/login/code", auth.second_factor, "second-factor", Permission.PUBLIC),
    Route("POST", "/language", auth.language, "language", Permission.PUBLIC),
    Route("GET", "/enrol/{token}", enrol.enrol_form, "enrol-form", Permission.PUBLIC),
    Route("POST", "/enrol/{token}", enrol.enrol, "enrol", Permission.PUBLIC),
    Route("POST", "/logout", auth.logout, "logout", Permission.SIGNED_IN),
    Route("GET", "/account/password", auth.password_form, "password-form", Permission.SIGNED_IN),
    Route("POST", "/account/password", auth.change_password, "password", Permission.SIGNED_IN),
    Route("GET", "/", inbox.inbox, "inbox", Permission.INBOX),
    Route("POST", "/reports/close-spam", inbox.close_spam, "close-spam", Permission.TRIAGE),
    Route("GET", REPORT, report.report, "report", Permission.INBOX),
    Route("POST", REPORT + "/status", report.change_status, "report-status", Permission.TRIAGE),
    Route(
        "POST", REPORT + "/priority", report.change_priority, "report-priority", Permission.TRIAGE
    ),
    Route(
        "POST", REPORT + "/assignee", report.change_assignee, "report-assignee", Permission.TRIAGE
    ),
    Route("POST", REPORT + "/labels", report.change_labels, "report-labels", Permission.TRIAGE),
    Route("POST", REPORT + "/links", report.add_link, "report-link", Permission.TRIAGE),
    Route("POST", REPORT + "/unlink", report.remove_link, "report-unlink", Permission.TRIAGE),
    Route("POST", REPORT + "/notes", report.add_note, "report-note", Permission.CONTENT),
    Route("GET", FILE, report.download, "file", Permission.CONTENT),
    Route("GET", FILE + "/image", report.image, "file-image", Permission.CONTENT),
    Route("GET", "/keys", keys.page, "keys", Permission.KEYS),
    Route("POST", "/keys/grant", keys.grant, "keys-grant", Permission.KEYS),
    Route("POST", "/keys/revoke", keys.revoke, "keys-revoke", Permission.KEYS),
    Route("POST", "/keys/rotate", keys.rotate, "keys-rotate", Permission.KEYS),
    Route("POST", "/keys/rewrap", keys.start_rewrap, "keys-rewrap", Permission.KEYS),
    Route("POST", "/keys/retire", keys.retire, "keys-retire", Permission.KEYS),
    Route("GET", "/accounts", accounts.page, "accounts", Permission.ACCOUNTS),
    Route("POST", "/accounts", accounts.add, "accounts-add", Permission.ACCOUNTS),
    Route("POST", "/accounts/disable", accounts.disable, "accounts-disable", Permission.ACCOUNTS),
    Route("POST", "/accounts/reenrol", accounts.reenrol, "accounts-reenrol", Permission.ACCOUNTS),
    Route("GET", "/audit", audit.page, "audit", Permission.AUDIT),
    Route("GET", "/audit/head", audit.export_head, "audit-head", Permission.AUDIT),
)

PERMISSIONS: dict[str, Permission] = {route.name: route.permission for route in ROUTES}


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler, name=route.name)

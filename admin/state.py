"""What the web application holds for its lifetime, and what each request learns.

One :class:`AdminState` per process (under :data:`STATE`), built by :func:`admin.app.create_app`.
Per request, the session middleware stores a :class:`Viewer` (or nothing, before login)
under :data:`VIEWER`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from babel.support import NullTranslations

from intake_bot.bootstrap import App
from intake_bot.crypto import Secret, SigningPublicKey
from intake_bot.questionnaire.model import Questionnaire
from intake_bot.services.keyring import Keyring
from intake_bot.services.rotation import REWRAP_BATCH
from intake_bot.storage.staff import StaffInfo

from .i18n import Translator
from .permissions import Permission
from .rendering import Questionnaires
from .rewrap import RewrapRun
from .sessions import SessionStore, StaffSession, Ticket, unpack_keyring
from .throttle import Backoff

COOKIE = "intake_session"
PRE_COOKIE = "intake_pre"
"""A random value set before login; forms without a session carry an HMAC of it (CSRF)."""
LANG_COOKIE = "intake_lang"


@dataclass(slots=True)
class AdminState:
    app: App
    pinned: SigningPublicKey
    sessions: SessionStore
    sign_in_backoff: Backoff
    second_factor_backoff: Backoff
    catalogues: dict[str, NullTranslations]
    questionnaires: Questionnaires
    current_questionnaire: Questionnaire
    clock: Callable[[], float] = time.monotonic
    form_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    pending_totp: dict[bytes, tuple[str, float]] = field(default_factory=dict, repr=False)
    """Enrolment token hash -> (the TOTP secret shown, when): the form shows the same QR
    code again after a mistake; kept in memory only, for an hour at most."""
    rewrap: RewrapRun | None = None
    """The re-wrap started from the Keys page (the last one, running or ended): at most
    one runs per process; cancelled at shutdown."""
    rewrap_batch: int = REWRAP_BATCH

    def form_token(self, pre: str) -> str:
        """The CSRF token of a form shown before login, bound to the pre-login cookie."""
        return hmac.new(self.form_key, pre.encode(), hashlib.sha256).hexdigest()


STATE: web.AppKey[AdminState] = web.AppKey("intake_admin_state", AdminState)


@dataclass(slots=True)
class Viewer:
    """The signed-in member making this request."""

    member: StaffInfo
    session: StaffSession
    ticket: Ticket
    permissions: frozenset[Permission]

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def keyring(self, store: SessionStore) -> Keyring | None:
        """The member's unsealed keys from the session vault, if they hold any."""
        packed = store.open(self.ticket, self.session)
        return None if packed is None else unpack_keyring(packed)


PRE: web.RequestKey[str] = web.RequestKey("intake_pre", str)
PENDING: web.RequestKey[StaffSession] = web.RequestKey("intake_pending", StaffSession)
PENDING_TICKET: web.RequestKey[Ticket] = web.RequestKey("intake_pending_ticket", Ticket)
VIEWER: web.RequestKey[Viewer] = web.RequestKey("intake_viewer", Viewer)
TRANSLATOR: web.RequestKey[Translator] = web.RequestKey("intake_translator", Translator)


def state_of(request: web.Request) -> AdminState:
    return request.app[STATE]


def viewer_of(request: web.Request) -> Viewer | None:
    found = request.get(VIEWER)
    return found if isinstance(found, Viewer) else None


def translator_of(request: web.Request) -> Translator:
    found = request.get(TRANSLATOR)
    if isinstance(found, Translator):
        return found
    return Translator("en", NullTranslations())


def password_field(request_data: object, name: str = "password") -> Secret:
    """A password from a posted form, as a :class:`Secret` (never kept as a str)."""
    value = request_data.get(name, "") if hasattr(request_data, "get") else ""
    return Secret(str(value).encode("utf-8"))

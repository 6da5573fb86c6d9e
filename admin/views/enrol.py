"""Enrolment from a one-time link: the member sets their password and second factor.

The page shows a TOTP secret (QR code and text); the member types a password twice and the
code their app shows, so the second factor is confirmed before the account is active. The
same secret is shown again after a mistake (kept in memory for an hour, by the token's
hash). Recovery codes are shown once, on success; key-holders also see their key's
fingerprint, which a colleague compares before granting them keys.
"""

from __future__ import annotations

import segno
from aiohttp import web

from intake_bot.crypto import Secret
from intake_bot.services import ServiceError, accounts

from ..state import state_of, translator_of
from .common import render

PENDING_TOTP_SECONDS = 3600.0
MAX_PENDING = 1000


def _secret_for(request: web.Request, token: str) -> str:
    state = state_of(request)
    now = state.clock()
    for key, (_, at) in list(state.pending_totp.items()):
        if now - at > PENDING_TOTP_SECONDS:
            del state.pending_totp[key]
    key = accounts.token_hash(token)
    found = state.pending_totp.get(key)
    if found is None:
        if len(state.pending_totp) >= MAX_PENDING:
            state.pending_totp.clear()
        found = (accounts.new_totp_secret(), now)
        state.pending_totp[key] = found
    return found[0]


def _form(request: web.Request, token: str, name: str, **extra: object) -> dict[str, object]:
    secret = _secret_for(request, token)
    uri = accounts.otpauth_uri(name, secret)
    return {
        "name": name,
        "token": token,
        "totp_secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "qr": segno.make(uri, error="m").svg_data_uri(scale=4, border=2),
        **extra,
    }


async def enrol_form(request: web.Request) -> web.Response:
    token = request.match_info["token"][:128]
    name = await accounts.enrolment_name(state_of(request).app, token)
    if name is None:
        _ = translator_of(request)
        raise web.HTTPNotFound(
            text=_("This enrolment link is unknown, used or expired. Ask an admin for a new one.")
        )
    return render(request, "enrol.html", _form(request, token, name))


async def enrol(request: web.Request) -> web.Response:
    state = state_of(request)
    _ = translator_of(request)
    token = request.match_info["token"][:128]
    name = await accounts.enrolment_name(state.app, token)
    if name is None:
        raise web.HTTPNotFound(
            text=_("This enrolment link is unknown, used or expired. Ask an admin for a new one.")
        )
    form = await request.post()
    password = str(form.get("password", ""))[:1024]
    if password != str(form.get("repeat", ""))[:1024]:
        error = _("The two passwords differ.")
        return render(request, "enrol.html", _form(request, token, name, error=error), status=400)
    secret = _secret_for(request, token)
    try:
        done = await accounts.enrol(
            state.app,
            token,
            Secret(password.encode("utf-8")),
            totp_secret=secret,
            totp_code=str(form.get("code", ""))[:64],
        )
    except ServiceError as exc:
        if "authenticator" in str(exc):
            error = _("The code from the authenticator app does not match. Check the app's clock.")
        elif "weak" in str(exc) or "longer" in str(exc):
            error = _(
                "The password is too weak: use a longer passphrase of several unrelated words."
            )
        else:
            error = _("This enrolment link is unknown, used or expired.")
        return render(request, "enrol.html", _form(request, token, name, error=error), status=400)
    state.pending_totp.pop(accounts.token_hash(token), None)
    return render(
        request,
        "enrolled.html",
        {
            "name": done.name,
            "recovery_codes": done.recovery_codes,
            "fingerprint": done.key_fingerprint,
        },
    )

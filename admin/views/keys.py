"""Keys (key-holders): the inventory of org keys and the pinned signing key, the member's
own fingerprint, and every key operation — grant, revoke, rotate, re-wrap, retire.

Each operation asks for the password again (the sign-in throttle counts wrong ones) and
needs keys opened in this session: a key-holder who holds none is offered nothing. The
re-wrap runs in the background of this process (:mod:`admin.rewrap`) with the session's
keys; the page shows its progress from ``key_jobs`` on each reload.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from intake_bot.crypto import CryptoError, Secret, fingerprint, key_id
from intake_bot.services import ServiceError, accounts, keyring, rotation, signin
from intake_bot.services.keyring import Keyring, read_pin
from intake_bot.storage import audit
from intake_bot.storage import keys as key_repo
from intake_bot.storage import staff as staff_repo
from intake_bot.storage.models import KeyJobKind, OrgKeyState, Role, StaffState

from .. import rewrap
from ..i18n import N_
from ..sessions import pack_keyring
from ..state import password_field, state_of, translator_of
from .common import render, see_other, viewer

REWRAP_ERRORS: dict[rewrap.RewrapError, str] = {
    rewrap.RewrapError.KEYS: N_(
        "The re-wrap stopped: the keys of the session that started it do not open both keys "
        "of the job. A key-holder who holds both can resume it."
    ),
    rewrap.RewrapError.CRYPTO: N_(
        "The re-wrap stopped: a report key or the new key did not open or verify. The data "
        "may have been damaged or altered: tell the other key-holders before resuming."
    ),
    rewrap.RewrapError.DATABASE: N_(
        "The re-wrap stopped on a database error. Nothing of the interrupted batch was "
        "saved; resume it."
    ),
    rewrap.RewrapError.UNEXPECTED: N_(
        "The re-wrap stopped on an unexpected error. Nothing of the interrupted batch was "
        "saved; resume it."
    ),
}


@dataclass(frozen=True, slots=True)
class KeyRow:
    key: str
    """The key id in hex (what the forms send)."""
    fingerprint: str
    state: str
    """``current``, ``previous`` (live, not current) or ``retired``."""
    created_on: str
    retired_on: str | None
    retired_by: str | None
    depending: int
    holders: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class JobRow:
    source: str
    target: str
    done: int
    total: int


async def _page(request: web.Request, status: int = 200, **extra: object) -> web.Response:
    state = state_of(request)
    who = viewer(request)
    async with state.app.sessions() as session:
        inventory = await key_repo.list_org_keys(session)
        current = await key_repo.current_key_id(session)
        depending = {
            info.key.key_id: await key_repo.depending_only_on(session, info.key.key_id)
            for info in inventory
        }
        jobs = [
            JobRow(
                fingerprint(job.from_key_id),
                fingerprint(job.to_key_id),
                job.done,
                job.done + await key_repo.depending_only_on(session, job.from_key_id),
            )
            for job in await key_repo.open_jobs(session, KeyJobKind.REWRAP)
        ]
    rows = [
        KeyRow(
            key=info.key.key_id.hex(),
            fingerprint=info.key.fingerprint,
            state="retired"
            if info.state is OrgKeyState.RETIRED
            else "current"
            if info.key.key_id == current
            else "previous",
            created_on=info.created_on.isoformat(),
            retired_on=None if info.retired_on is None else info.retired_on.isoformat(),
            retired_by=info.retired_by,
            depending=depending[info.key.key_id],
            holders=info.holders,
        )
        for info in inventory
    ]
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
    run = state.rewrap
    _ = translator_of(request)
    return render(
        request,
        "keys.html",
        {
            "inventory": rows,
            "signing_fingerprint": state.pinned.fingerprint,
            "own_fingerprint": None
            if mine is None or mine.public_key is None
            else fingerprint(key_id(mine.public_key)),
            "grantees": grantees,
            "revocable": _revocable(rows, who.member.name),
            "retirable": [row for row in rows if row.state == "previous"],
            "jobs": jobs,
            "run": run,
            "run_error": None if run is None or run.error is None else _(REWRAP_ERRORS[run.error]),
            # A key-holder without grants has an (empty) keyring: they hold nothing to give.
            "holds_keys": ring is not None and bool(ring.org_keys),
            "holds_signing": ring is not None and ring.signing is not None,
            "after_revoke": False,
            **extra,
        },
        status=status,
    )


def _revocable(rows: list[KeyRow], own: str) -> list[str]:
    """Members other than the viewer holding a grant of a live key."""
    return sorted({name for row in rows if row.state != "retired" for name in row.holders} - {own})


async def page(request: web.Request) -> web.Response:
    return await _page(request)


def _session_ring(request: web.Request) -> Keyring | None:
    ring = viewer(request).keyring(state_of(request).sessions)
    return ring if ring is not None and ring.org_keys else None


async def _refused(request: web.Request) -> web.Response | None:
    """The page with the reason when the viewer may not act now: no keys in this session,
    too many wrong passwords, or a wrong password (counted by the sign-in throttle and
    audited); None when they may go on."""
    state = state_of(request)
    _ = translator_of(request)
    member = viewer(request).member
    if _session_ring(request) is None:
        return await _page(
            request, 403, error=_("You hold no keys in this session: this needs a key-holder.")
        )
    key = state.sign_in_backoff.key("name", member.name)
    if state.sign_in_backoff.wait(key) > 0:
        return await _page(request, 429, error=_("Too many attempts. Wait and try again."))
    form = await request.post()
    if not await signin.recheck_password(state.app, member, password_field(form)):
        state.sign_in_backoff.fail(key)
        return await _page(request, 403, error=_("Your password is wrong."))
    return None


async def _reopen_keys(request: web.Request, password: Secret) -> Keyring | None:
    """Open the viewer's grants again and put them in the session's vault (after a
    rotation, the new key); None, and the vault unchanged, if they do not open."""
    state = state_of(request)
    who = viewer(request)
    settings = state.app.settings
    try:
        async with state.app.sessions() as session:
            ring = await keyring.unlock(
                session,
                who.member.name,
                password,
                settings.kdf_profile.floor,
                read_pin(settings.signing_key_pin),
            )
    except (ServiceError, CryptoError):
        return None
    state.sessions.reseal(who.ticket, who.session, pack_keyring(ring))
    return ring


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


async def revoke(request: web.Request) -> web.Response:
    state = state_of(request)
    _ = translator_of(request)
    who = viewer(request)
    refused = await _refused(request)
    if refused is not None:
        return refused
    form = await request.post()
    name = str(form.get("member", ""))[:200]
    async with state.app.sessions() as session:
        inventory = await key_repo.list_org_keys(session)
    holders = {
        holder
        for info in inventory
        if info.state is not OrgKeyState.RETIRED
        for holder in info.holders
    } - {who.member.name}
    if name not in holders:
        return await _page(
            request, 400, error=_("%(name)s holds no keys you can revoke.", name=name)
        )
    try:
        done = await rotation.revoke(state.app, who.member.name, password_field(form), name)
    except ServiceError as exc:
        if "only holder" in str(exc):
            error = _(
                "%(name)s is the only holder of a key: grant it to another key-holder first, "
                "or every report sealed to it is lost.",
                name=name,
            )
        else:
            error = _("%(name)s holds no keys you can revoke.", name=name)
        return await _page(request, 400, error=error)
    async with state.app.sessions() as session:
        target = await staff_repo.by_name(session, done.name)
    if target is not None:
        # Their open sessions hold the keys unsealed: end them now.
        state.sessions.end_for(target.id)
    return await _page(
        request,
        done=_(
            "The keys of %(name)s are revoked and their sessions ended. They may have kept "
            "copies of keys and of the reports they could read: rotate the organisation key "
            "now so that new reports are sealed to a key they never held.",
            name=done.name,
        ),
        after_revoke=True,
    )


async def rotate(request: web.Request) -> web.Response:
    state = state_of(request)
    _ = translator_of(request)
    who = viewer(request)
    refused = await _refused(request)
    if refused is not None:
        return refused
    form = await request.post()
    password = password_field(form)
    try:
        done = await rotation.rotate(state.app, who.member.name, password)
    except ServiceError as exc:
        if "signing key" in str(exc):
            error = _("Rotating needs the signing key, which you do not hold.")
        else:
            error = _("Rotating needs the current organisation key, which you do not hold.")
        return await _page(request, 400, error=error)
    # This session gets the new key at once (to re-wrap, and to open new reports); the
    # other key-holders get it at their next sign-in.
    await _reopen_keys(request, password)
    return await _page(
        request,
        done=_(
            "The new key %(fingerprint)s is current: new reports are sealed to it. "
            "%(count)s reports still use the previous key: re-wrap them below. Other "
            "key-holders receive the new key when they next sign in.",
            fingerprint=done.fingerprint,
            count=done.to_rewrap,
        ),
    )


async def start_rewrap(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    _ = translator_of(request)
    who = viewer(request)
    if state.rewrap is not None and state.rewrap.running:
        return await _page(request, 409, error=_("A re-wrap is running already."))
    refused = await _refused(request)
    if refused is not None:
        return refused
    async with state.app.sessions() as session:
        jobs = await key_repo.open_jobs(session, KeyJobKind.REWRAP)
    if not jobs:
        return await _page(request, 400, error=_("There is nothing to re-wrap."))
    needed = {job.from_key_id for job in jobs} | {job.to_key_id for job in jobs}
    ring = _session_ring(request)
    if ring is None or not needed <= ring.org_keys.keys():
        # Rotated in another session: the password just given opens the new grants.
        ring = await _reopen_keys(request, password_field(await request.post()))
    if ring is None or not needed <= ring.org_keys.keys():
        return await _page(
            request,
            400,
            error=_("You do not hold both keys of the re-wrap: a key-holder who does must run it."),
        )
    if state.rewrap is not None and state.rewrap.running:
        return await _page(request, 409, error=_("A re-wrap is running already."))
    state.rewrap = rewrap.start(state.app, ring, who.member.name, batch=state.rewrap_batch)
    async with state.app.sessions() as session, session.begin():
        await audit.append(
            session,
            actor=who.member.name,
            action="keys.rewrap.start",
            details={"jobs": len(jobs)},
        )
    raise see_other("/keys")


async def retire(request: web.Request) -> web.Response:
    state = state_of(request)
    _ = translator_of(request)
    who = viewer(request)
    refused = await _refused(request)
    if refused is not None:
        return refused
    form = await request.post()
    chosen = str(form.get("key", ""))[:64].lower()
    async with state.app.sessions() as session:
        inventory = {info.key.key_id.hex(): info for info in await key_repo.list_org_keys(session)}
        current = await key_repo.current_key_id(session)
    info = inventory.get(chosen) if len(chosen) == 32 else None
    if info is None:
        return await _page(request, 400, error=_("There is no such key."))
    if info.state is OrgKeyState.RETIRED:
        return await _page(
            request,
            400,
            error=_("Key %(fingerprint)s is retired already.", fingerprint=info.key.fingerprint),
        )
    if info.key.key_id == current:
        return await _page(
            request, 400, error=_("The current key cannot be retired: rotate first.")
        )
    try:
        done = await rotation.retire(state.app, who.member.name, password_field(form), chosen)
    except ServiceError:
        async with state.app.sessions() as session:
            waiting = await key_repo.depending_only_on(session, info.key.key_id)
        if waiting:
            error = _(
                "Key %(fingerprint)s cannot be retired: %(count)s reports still depend on it. "
                "Finish the re-wrap first.",
                fingerprint=info.key.fingerprint,
                count=waiting,
            )
        else:
            # A re-wrap to this key is still open (reports may yet move onto it).
            error = _(
                "Key %(fingerprint)s cannot be retired yet: finish the open re-wrap first.",
                fingerprint=info.key.fingerprint,
            )
        return await _page(request, 400, error=error)
    return await _page(
        request,
        done=_(
            "Key %(fingerprint)s is retired: its grants and its %(count)s sealed copies of "
            "report keys are deleted.",
            fingerprint=done.fingerprint,
            count=done.sealed_copies_removed,
        ),
    )

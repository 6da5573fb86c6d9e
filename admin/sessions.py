"""Server-side staff sessions, in memory only.

The browser holds one cookie: a random session id and a random vault key. The server keeps
only the SHA-256 of the id, and the session's secrets (a key-holder's unsealed org keys
and signing key, or between the two sign-in steps the typed password) encrypted under the
vault key (:func:`intake_bot.crypto.seal_vault`). Nothing is written to disk: a restart
ends every session. Sessions end at logout, after :attr:`idle` without a request, at
:attr:`lifetime` whatever happens, and when the account is disabled or re-enrolled (the
middleware checks the account on every request).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from intake_bot.crypto import (
    DecryptionError,
    OrgPrivateKey,
    Plaintext,
    Secret,
    SigningPrivateKey,
    new_vault_key,
    open_vault,
    seal_vault,
)
from intake_bot.services.keyring import Keyring

ID_BYTES = 32
SECOND_FACTOR_SECONDS = 300.0
"""How long the password step stays valid while the member types the second factor."""
MAX_SESSIONS = 10_000
"""Oldest sessions go first beyond this: an unauthenticated flood cannot exhaust memory."""
SWEEP_SECONDS = 60.0
"""Expired sessions (and their sealed keys) are dropped at least this often while requests
come in, not only when their own browser comes back."""


class Stage(StrEnum):
    SECOND_FACTOR = "second_factor"
    SIGNED_IN = "signed_in"


@dataclass(slots=True)
class StaffSession:
    key: bytes
    """SHA-256 of the session id (the id itself is only in the cookie)."""
    staff_id: bytes
    stage: Stage
    csrf: str = field(repr=False)
    created: float
    seen: float
    vault: bytes | None = field(default=None, repr=False)
    keys_failed: bool = False
    """A key-holder whose keys did not open at sign-in (a damaged or altered grant)."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """What the cookie carries: the session id and the vault key."""

    session_id: bytes = field(repr=False)
    vault_key: Secret = field(repr=False)

    def encode(self) -> str:
        raw = self.session_id + self.vault_key.reveal()
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Ticket | None:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) != ID_BYTES + 32:
            return None
        return cls(raw[:ID_BYTES], Secret(raw[ID_BYTES:]))


def _key(session_id: bytes) -> bytes:
    return hashlib.sha256(session_id).digest()


def pack_keyring(ring: Keyring) -> Plaintext:
    """A keyring as bytes for the vault: staff id, signing seed (or none), org keys."""
    out = bytearray(ring.staff_id)
    if ring.signing is None:
        out += b"\x00"
    else:
        out += b"\x01" + ring.signing.seed().reveal()
    for kid, key in ring.org_keys.items():
        out += kid + key.raw().reveal()
    return Plaintext(bytes(out))


def unpack_keyring(packed: Plaintext) -> Keyring:
    raw = packed.reveal()
    staff_id, rest = raw[:16], raw[16:]
    signing = None
    if rest[:1] == b"\x01":
        signing, rest = SigningPrivateKey(Secret(rest[1:33])), rest[33:]
    else:
        rest = rest[1:]
    org_keys = {
        rest[i : i + 16]: OrgPrivateKey(Secret(rest[i + 16 : i + 48]))
        for i in range(0, len(rest), 48)
    }
    return Keyring(staff_id=staff_id, org_keys=org_keys, signing=signing)


class SessionStore:
    def __init__(
        self,
        *,
        idle: float,
        lifetime: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle = idle
        self.lifetime = lifetime
        self._clock = clock
        self._sessions: dict[bytes, StaffSession] = {}
        self._swept = clock()

    def __len__(self) -> int:
        return len(self._sessions)

    def start(
        self, staff_id: bytes, stage: Stage, secret: Plaintext | None = None
    ) -> tuple[Ticket, StaffSession]:
        """A new session (replacing nothing: a new id at each sign-in step)."""
        self._prune()
        ticket = Ticket(secrets.token_bytes(ID_BYTES), new_vault_key())
        now = self._clock()
        session = StaffSession(
            key=_key(ticket.session_id),
            staff_id=staff_id,
            stage=stage,
            csrf=secrets.token_urlsafe(32),
            created=now,
            seen=now,
        )
        if secret is not None:
            session.vault = seal_vault(ticket.vault_key, session.key, secret)
        self._sessions[session.key] = session
        return ticket, session

    def get(self, ticket: Ticket) -> StaffSession | None:
        """The live session for a cookie (its idle clock restarts), or None."""
        now = self._clock()
        if now - self._swept > SWEEP_SECONDS:
            self._sweep(now)
        key = _key(ticket.session_id)
        session = self._sessions.get(key)
        if session is None:
            return None
        if self._expired(session, now):
            self._sessions.pop(key, None)
            return None
        session.seen = now
        return session

    def open(self, ticket: Ticket, session: StaffSession) -> Plaintext | None:
        """The session's vault contents, or None (no vault, or a cookie that does not fit)."""
        if session.vault is None:
            return None
        try:
            return open_vault(ticket.vault_key, session.key, session.vault)
        except DecryptionError:
            return None

    def reseal(self, ticket: Ticket, session: StaffSession, secret: Plaintext) -> None:
        """Replace the session's vault contents (a key-holder's keys after a rotation)."""
        session.vault = seal_vault(ticket.vault_key, session.key, secret)

    def end(self, session: StaffSession) -> None:
        self._sessions.pop(session.key, None)

    def end_for(self, staff_id: bytes, *, keep: StaffSession | None = None) -> int:
        """End every session of one member (disabled, re-enrolled), or every one but
        ``keep`` (their password changed); returns how many."""
        doomed = [
            k
            for k, s in self._sessions.items()
            if s.staff_id == staff_id and (keep is None or k != keep.key)
        ]
        for key in doomed:
            del self._sessions[key]
        return len(doomed)

    def _expired(self, session: StaffSession, now: float) -> bool:
        limit = SECOND_FACTOR_SECONDS if session.stage is Stage.SECOND_FACTOR else self.idle
        return now - session.seen > limit or now - session.created > self.lifetime

    def _sweep(self, now: float) -> None:
        self._swept = now
        for key, session in list(self._sessions.items()):
            if self._expired(session, now):
                del self._sessions[key]

    def _prune(self) -> None:
        self._sweep(self._clock())
        while len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions.values(), key=lambda s: s.seen)
            del self._sessions[oldest.key]

"""The audit log's exported head: signed by a key-holder with the org signing key.

An exported head (sequence number, hash, signature) kept outside the server is what
detects a cut-off tail: the chain alone cannot tell that its last entries were removed.
Signing needs the signing key, which only key-holders hold (sealed to their own key).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from intake_bot.bootstrap import App
from intake_bot.crypto import (
    Secret,
    SignatureError,
    sign_audit_head,
    verify_audit_head,
)
from intake_bot.storage import audit

from .errors import ServiceError
from .keyring import read_pin, unlock

FORMAT = "intake-audit-head-v1"


@dataclass(frozen=True, slots=True)
class SignedHead:
    seq: int
    hash: bytes
    signature: bytes

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "seq": self.seq,
                "hash": self.hash.hex(),
                "signature": self.signature.hex(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SignedHead:
        refused = ServiceError("not an exported audit head")
        try:
            data = json.loads(text)
            head = cls(
                int(data["seq"]), bytes.fromhex(data["hash"]), bytes.fromhex(data["signature"])
            )
        except (ValueError, KeyError, TypeError):
            raise refused from None
        if data.get("format") != FORMAT:
            raise refused
        return head


async def export_head(app: App, name: str, password: Secret) -> SignedHead:
    """Verify the chain, then sign its head as key-holder ``name``; the export is audited
    (and the signed head is that of the chain including this export)."""
    pinned = read_pin(app.settings.signing_key_pin)
    async with app.sessions() as session, session.begin():
        ring = await unlock(session, name, password, app.settings.kdf_profile.floor, pinned)
        if ring.signing is None:
            raise ServiceError(f"{name} does not hold the signing key")
        await audit.verify(session)
        await audit.append(session, actor=name, action="audit.export-head")
        head = await audit.head(session)
    return SignedHead(head.seq, head.hash, sign_audit_head(ring.signing, head.seq, head.hash))


async def verify_log(app: App, exported: SignedHead | None = None) -> audit.Head:
    """Check the whole chain and, if given, that it still holds an exported head signed by
    the pinned org key. Raises :class:`ServiceError` with the first problem."""
    if exported is not None:
        try:
            verify_audit_head(
                read_pin(app.settings.signing_key_pin),
                exported.seq,
                exported.hash,
                exported.signature,
            )
        except SignatureError:
            raise ServiceError(
                "the exported head's signature does not verify against the pin"
            ) from None
    async with app.sessions() as session:
        try:
            return await audit.verify(
                session, None if exported is None else audit.Head(exported.seq, exported.hash)
            )
        except audit.AuditChainError as exc:
            raise ServiceError(f"the audit log does not verify: {exc}") from None

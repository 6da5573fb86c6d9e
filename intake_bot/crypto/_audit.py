"""The audit log's hash chain and the signature over its head.

Each entry's hash is BLAKE2b-256 over (previous hash, the entry's canonical encoding), so
an edited or deleted entry breaks every later link. A truncated tail leaves a valid chain;
it is caught by comparing with a head (sequence number and hash) exported earlier and
signed with the organisation signing key.
"""

from __future__ import annotations

import nacl.hash
from nacl.encoding import RawEncoder

from ._encoding import FORMAT_VERSION, encode_fields
from ._errors import SignatureError
from ._keys import SigningPrivateKey, SigningPublicKey

GENESIS_HASH = bytes(32)
"""The ``previous hash`` of the first entry."""


def chain_hash(previous: bytes, entry: bytes) -> bytes:
    """Hash of one chain link; ``entry`` is the entry's canonical encoding."""
    return nacl.hash.blake2b(
        encode_fields(previous, entry), digest_size=32, person=b"intake-audit", encoder=RawEncoder
    )


def _head_message(seq: int, head: bytes) -> bytes:
    return encode_fields("audit-head", FORMAT_VERSION, seq, head)


def sign_audit_head(signer: SigningPrivateKey, seq: int, head: bytes) -> bytes:
    """Signature over (sequence number, head hash), for export."""
    return signer.sign(_head_message(seq, head))


def verify_audit_head(pinned: SigningPublicKey, seq: int, head: bytes, signature: bytes) -> None:
    """Raise :class:`SignatureError` unless the exported head was signed by the org."""
    try:
        message = _head_message(seq, head)
    except ValueError:
        raise SignatureError from None
    pinned.verify(message, signature)

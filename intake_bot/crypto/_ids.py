"""Random identifiers, key ids and human-comparable fingerprints."""

from __future__ import annotations

import secrets

import nacl.hash
from nacl.encoding import RawEncoder

ID_BYTES = 16
"""128-bit random ids: unguessable, and carry no time or order (promise 4)."""

KEY_ID_BYTES = 16
"""Key id = BLAKE2b-128 of the public key (ARCHITECTURE.md, format version 1)."""


def random_id() -> bytes:
    """A fresh 128-bit random id (reports, slots, files). Never time-ordered."""
    return secrets.token_bytes(ID_BYTES)


def key_id(public_key: bytes) -> bytes:
    """BLAKE2b-128 of a public key, the key's stable identifier."""
    return nacl.hash.blake2b(
        public_key, digest_size=KEY_ID_BYTES, person=b"intake-key-id", encoder=RawEncoder
    )


def fingerprint(kid: bytes) -> str:
    """Render a key id in groups of four hex digits, for comparison out of band."""
    text = kid.hex().upper()
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))

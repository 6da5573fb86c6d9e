"""Wrappers for plaintext and key material, and typed ciphertexts.

Plaintext and secret keys travel inside :class:`Secret` so that a stray ``repr``, an
f-string in a log call, a traceback renderer or ``pickle`` never shows or stores them.
Ciphertexts are :class:`bytes` subclasses, one per kind, so that storage functions can
demand a ciphertext type and mypy refuses plaintext at the call site.
"""

from __future__ import annotations

import hmac
from typing import NoReturn


class Secret:
    """Bytes that must never be printed, logged or pickled.

    .. warning:: ``reveal()`` hands out the raw bytes; call it only at the point of use
       (a primitive, or the one place that renders plaintext) and do not keep the result.
       CPython cannot wipe memory reliably: a secret lives until garbage collection.
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray):
            raise TypeError("Secret holds bytes")
        self._value = bytes(value)

    def reveal(self) -> bytes:
        """Return the raw bytes. Keep the result in as small a scope as possible."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: <SECRET>>"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # A data key never equals a plaintext that happens to hold the same bytes.
        return type(self) is type(other) and hmac.compare_digest(self._value, other._value)

    __hash__ = None  # type: ignore[assignment]  # equal secrets must not leak via hashing

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be pickled")


class Plaintext(Secret):
    """Content from a reporter or staff member: an answer, a document, a note."""

    __slots__ = ()

    @classmethod
    def from_text(cls, text: str) -> Plaintext:
        """Encode text as UTF-8 (the caller normalises it, for example to NFC)."""
        return cls(text.encode("utf-8"))

    def text(self) -> str:
        """Decode as UTF-8; raises ``UnicodeDecodeError`` on non-text content."""
        return self._value.decode("utf-8")


class Ciphertext(bytes):
    """Base of every ciphertext kind; safe to store, to copy and to show by length."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {len(self)} bytes>"


class EncryptedPayload(Ciphertext):
    """An answer, report document, note or message under a report's data key."""


class SealedDataKey(Ciphertext):
    """A report data key sealed to one organisation public key."""


class SealedGrant(Ciphertext):
    """An organisation (or signing) private key sealed to a key-holder's public key."""


class FileCiphertext(Ciphertext):
    """A piece of an encrypted file blob (header or records), as the encryptor emits it."""


class WrappedDraftBox(Ciphertext):
    """A draft's data key and wipe list under the boot secret (unreadable after a reboot)."""


class WrappedPrivateKey(Ciphertext):
    """A key-holder's private key under a key derived from their own password."""

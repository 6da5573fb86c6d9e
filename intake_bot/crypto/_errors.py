"""Errors of the crypto package.

::

    CryptoError                 base: callers at the edge catch this one
    ├── DecryptionError         any failed decryption, unseal, unwrap or key check
    └── SignatureError          an org key or audit head not signed by the pinned key

Both carry one fixed message. Why a ciphertext failed (wrong key, a flipped byte, a moved
payload, a truncated stream, weak stored parameters) is never told: an attacker who can
submit forged ciphertexts must learn nothing from the answer, and a log line must not
carry any detail that could help.
"""


class CryptoError(Exception):
    """Base error of :mod:`intake_bot.crypto`."""


class DecryptionError(CryptoError):
    """Opaque failure of decryption or of a recomputed-key check."""

    def __init__(self) -> None:
        super().__init__("decryption failed")


class SignatureError(CryptoError):
    """A key or head did not verify against the pinned organisation signing key."""

    def __init__(self) -> None:
        super().__init__("signature check failed")

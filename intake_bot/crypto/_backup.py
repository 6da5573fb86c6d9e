"""Key backup files: content encrypted under a passphrase, for safekeeping offline.

Layout of format 1 (every integer big-endian)::

    magic     "intake key backup 1\\n"     20 bytes, the format line
    opslimit  Argon2id passes               8 bytes
    memlimit  Argon2id memory in bytes      8 bytes
    salt      Argon2id salt                16 bytes
    nonce     XChaCha20-Poly1305 nonce     24 bytes
    sealed    ciphertext and 16-byte tag   the rest

The key is Argon2id(passphrase, salt) with the stored cost; the header (magic to nonce,
byte for byte) is the associated data, so no field can be changed without the file
failing to open. Stored costs below the caller's floor are refused (a downgraded file), and
so are costs above :data:`BACKUP_KDF_CEILING`, so that a damaged or hostile file cannot make
the opening machine spend all its memory.

.. warning:: A backup holds private keys. Whoever has the file and the passphrase can
   read every report those keys open, for as long as the file exists, including after the
   keys are retired. Retiring or rotating a key does not reach a backup made before.
"""

from __future__ import annotations

import nacl.bindings
import nacl.exceptions
import nacl.utils

from ._errors import DecryptionError
from ._keys import KDF_INSECURE_TEST, SALT_BYTES, KdfParams, derive_key
from ._secret import Plaintext, Secret

BACKUP_MAGIC = b"intake key backup 1\n"
"""The format line that starts every backup file of format 1."""

BACKUP_KDF_CEILING = KdfParams(opslimit=32, memlimit=4 * 1024**3)
"""The most a backup file may ask of the machine opening it (32 passes, 4 GiB)."""

_NONCE = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
_TAG = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES
_INT = 8
_HEADER = len(BACKUP_MAGIC) + 2 * _INT + SALT_BYTES + _NONCE


def _within_ceiling(params: KdfParams) -> bool:
    return BACKUP_KDF_CEILING.at_least(params)


def seal_backup(passphrase: Secret, content: Plaintext, params: KdfParams) -> bytes:
    """Encrypt ``content`` under Argon2id(passphrase) with a fresh salt and nonce.

    Slow on purpose (Argon2id with ``params``): never call on an event loop. ``ValueError``
    for costs below Argon2id's minimum or above :data:`BACKUP_KDF_CEILING`.

    .. warning:: The result holds whatever ``content`` holds, readable by anyone with the
       passphrase. Keep it offline and the passphrase apart from it.
    """
    if not params.at_least(KDF_INSECURE_TEST) or not _within_ceiling(params):
        raise ValueError("Argon2id cost outside what a backup file may use")
    salt = nacl.utils.random(SALT_BYTES)
    nonce = nacl.utils.random(_NONCE)
    header = (
        BACKUP_MAGIC
        + params.opslimit.to_bytes(_INT, "big")
        + params.memlimit.to_bytes(_INT, "big")
        + salt
        + nonce
    )
    key = derive_key(passphrase, salt, params)
    return header + nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        content.reveal(), header, nonce, key.reveal()
    )


def open_backup(passphrase: Secret, blob: bytes, floor: KdfParams) -> Plaintext:
    """The content of a backup file; :class:`DecryptionError` on any failure.

    Fails closed, without saying which, on a wrong passphrase, a file that is not a backup
    (wrong magic), is truncated or extended, has any byte altered, or stores Argon2id costs
    below ``floor`` or above :data:`BACKUP_KDF_CEILING`. Slow on purpose: never call on an
    event loop.
    """
    if len(blob) < _HEADER + _TAG or not blob.startswith(BACKUP_MAGIC):
        raise DecryptionError
    at = len(BACKUP_MAGIC)
    params = KdfParams(
        opslimit=int.from_bytes(blob[at : at + _INT], "big"),
        memlimit=int.from_bytes(blob[at + _INT : at + 2 * _INT], "big"),
    )
    if not params.at_least(floor) or not _within_ceiling(params):
        raise DecryptionError
    at += 2 * _INT
    salt = blob[at : at + SALT_BYTES]
    nonce = blob[at + SALT_BYTES : _HEADER]
    header = blob[:_HEADER]
    try:
        key = derive_key(passphrase, salt, params)
        return Plaintext(
            nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                blob[_HEADER:], header, nonce, key.reveal()
            )
        )
    except (nacl.exceptions.CryptoError, ValueError, TypeError, MemoryError):
        raise DecryptionError from None

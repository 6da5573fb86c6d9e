"""The session vault: a staff session's unsealed keys, encrypted under a key the server
hands to the browser in the session cookie and does not keep.

.. warning:: Defence in depth only. It keeps private keys out of any stored session state
   and out of a memory dump taken while no request of that session runs; a live, modified
   server sees the cookie and so the keys. Never persist a vault or its key.
"""

from __future__ import annotations

import nacl.bindings
import nacl.exceptions
import nacl.utils

from ._encoding import FORMAT_VERSION, encode_fields
from ._errors import DecryptionError
from ._secret import Plaintext, Secret

VAULT_KEY_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
_NONCE = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES


def new_vault_key() -> Secret:
    return Secret(nacl.utils.random(VAULT_KEY_BYTES))


def _ad(session_id: bytes) -> bytes:
    return encode_fields(FORMAT_VERSION, "session-vault", session_id)


def seal_vault(key: Secret, session_id: bytes, content: Plaintext) -> bytes:
    """Encrypt a session's secrets, bound to the session id (a vault cannot be moved)."""
    nonce = nacl.utils.random(_NONCE)
    return nonce + nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        content.reveal(), _ad(session_id), nonce, key.reveal()
    )


def open_vault(key: Secret, session_id: bytes, vault: bytes) -> Plaintext:
    """The sealed secrets; :class:`DecryptionError` for a wrong key, id or altered vault."""
    if len(key) != VAULT_KEY_BYTES or len(vault) < _NONCE:
        raise DecryptionError
    try:
        return Plaintext(
            nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                vault[_NONCE:], _ad(session_id), vault[:_NONCE], key.reveal()
            )
        )
    except nacl.exceptions.CryptoError:
        raise DecryptionError from None

"""Report data keys and payload encryption.

.. warning:: A data key (DEK) is the whole of a report's secrecy. It is only ever stored
   sealed to organisation public keys (:func:`seal_data_key`) or, for an open draft, wrapped
   under the boot secret. Never log, store or send it in any other form.

Payload format v1: ``0x01 || nonce (24) || XChaCha20-Poly1305-IETF(padded plaintext)``.
The associated data is the length-prefixed encoding of (format version, payload kind,
report id, slot id, part index): a payload copied to another report, slot, part or kind
fails to decrypt. Nonces are random (192 bits), so reuse is not a practical concern.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.utils

from ._encoding import FORMAT_VERSION, encode_fields
from ._errors import DecryptionError
from ._ids import ID_BYTES
from ._keys import OrgPrivateKey, VerifiedOrgKey
from ._padding import pad_payload, unpad_payload
from ._secret import EncryptedPayload, Plaintext, SealedDataKey, Secret

DEK_BYTES = 32
_NONCE = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
_TAG = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES
_VERSION_BYTE = FORMAT_VERSION.to_bytes(1, "big")


class PayloadKind(StrEnum):
    """What a payload holds; bound into its associated data."""

    ANSWER = "answer"
    DRAFT_STATE = "draft-state"
    DOCUMENT = "document"
    MANIFEST = "manifest"
    NOTE = "note"
    MESSAGE = "message"


@dataclass(frozen=True, slots=True)
class PayloadContext:
    """Where a payload belongs. Every field is authenticated with the ciphertext."""

    kind: PayloadKind
    report_id: bytes
    slot_id: bytes
    part: int = 0

    def associated_data(self) -> bytes:
        if (
            len(self.report_id) != ID_BYTES
            or len(self.slot_id) != ID_BYTES
            or not 0 <= self.part < 2**64
        ):
            raise ValueError("payload context needs 16-byte ids and a part from 0 to 2**64 - 1")
        return encode_fields(
            FORMAT_VERSION, self.kind.value, self.report_id, self.slot_id, self.part
        )


class DataKey(Secret):
    """A report's 32-byte data key."""

    __slots__ = ()

    @classmethod
    def generate(cls) -> DataKey:
        return cls(nacl.utils.random(DEK_BYTES))


def seal_data_key(dek: DataKey, org_key: VerifiedOrgKey) -> SealedDataKey:
    """Seal a DEK to an org public key that verified against the pinned signing key."""
    box = nacl.public.SealedBox(nacl.public.PublicKey(org_key.public_key))
    return SealedDataKey(box.encrypt(dek.reveal()))


def open_data_key(sealed: SealedDataKey, org_key: OrgPrivateKey) -> DataKey:
    """Unseal a DEK; :class:`DecryptionError` if it was not sealed to ``org_key``."""
    try:
        raw = org_key.box().decrypt(bytes(sealed))
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise DecryptionError from None
    if len(raw) != DEK_BYTES:
        raise DecryptionError
    return DataKey(raw)


def encrypt_payload(
    dek: DataKey, context: PayloadContext, plaintext: Plaintext
) -> EncryptedPayload:
    """Pad and encrypt ``plaintext`` for exactly the place named by ``context``."""
    nonce = nacl.utils.random(_NONCE)
    ct = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        pad_payload(plaintext.reveal()), context.associated_data(), nonce, dek.reveal()
    )
    return EncryptedPayload(_VERSION_BYTE + nonce + ct)


def decrypt_payload(dek: DataKey, context: PayloadContext, payload: EncryptedPayload) -> Plaintext:
    """Decrypt and unpad; one :class:`DecryptionError` for every kind of failure."""
    blob = bytes(payload)
    if len(blob) < 1 + _NONCE + _TAG or blob[:1] != _VERSION_BYTE:
        raise DecryptionError
    try:
        padded = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            blob[1 + _NONCE :], context.associated_data(), blob[1 : 1 + _NONCE], dek.reveal()
        )
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise DecryptionError from None
    return Plaintext(unpad_payload(padded))

"""Length hiding: power-of-two buckets for payloads, Padmé for files.

Ciphertext lengths are visible at rest. Padding makes a short answer look like any other
short answer and bounds what a file's size can tell to a few percent (Padmé leaks
O(log log n) bits of the length: Nikitin et al., "Reducing Metadata Leakage from Encrypted
Files and Communication with PURBs", PETS 2019).
"""

from __future__ import annotations

import nacl.bindings
import nacl.exceptions

from ._errors import DecryptionError

PAYLOAD_MIN_BUCKET = 256
"""Smallest payload bucket: every short answer encrypts to the same length."""


def payload_bucket(length: int) -> int:
    """The bucket a payload of ``length`` bytes is padded to (room for >= 1 pad byte)."""
    bucket = PAYLOAD_MIN_BUCKET
    while bucket < length + 1:
        bucket *= 2
    return bucket


def pad_payload(data: bytes) -> bytes:
    """``sodium_pad`` to the payload's power-of-two bucket."""
    return nacl.bindings.sodium_pad(data, payload_bucket(len(data)))


def unpad_payload(padded: bytes) -> bytes:
    """Reverse :func:`pad_payload`; a malformed padding is a :class:`DecryptionError`."""
    size = len(padded)
    if size < PAYLOAD_MIN_BUCKET or size & (size - 1):
        raise DecryptionError
    try:
        return nacl.bindings.sodium_unpad(padded, len(padded))
    except (nacl.exceptions.CryptoError, ValueError):
        raise DecryptionError from None


def padme(length: int) -> int:
    """Padmé: round ``length`` up so that only its top O(log log n) bits are kept."""
    if length < 2:
        return length
    exponent = length.bit_length() - 1
    significant = exponent.bit_length()
    last_bits = exponent - significant
    mask = (1 << last_bits) - 1
    return (length + mask) & ~mask

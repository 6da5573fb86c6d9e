"""Streaming file encryption: secretstream in fixed-size records, padded to Padmé.

.. warning:: Never read a whole file into memory and never write plaintext to disk. Feed
   the encryptor chunk by chunk as bytes arrive (from Telegram's download stream) and write
   each ciphertext piece out as it is produced; memory stays at about one record.

Blob format v1::

    0x01 || secretstream header (24) || record_1 || ... || record_n

Each record is ``secretstream_push(used (4 bytes, big-endian) || data (64 KiB, zero-filled
after ``used``))`` with the format byte and file id as associated data, so every record
has the same ciphertext length. The last record is tagged FINAL. The number of records is
``ceil(padme(size) / 64 KiB)`` (at least one), so a blob's length reveals no more than
Padmé does. Decryption rejects a wrong version, a damaged header or record, reordered or
missing records, anything after FINAL, a stream that ends without FINAL, a data record
after a short one, and a record count that does not match the content length.

The per-file key is BLAKE2b(file id, key=DEK, personal="intake-file-v1"): files of one
report never share a stream key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import nacl.bindings as b
import nacl.exceptions
import nacl.hash
from nacl.encoding import RawEncoder

from ._encoding import FORMAT_VERSION, encode_fields
from ._errors import DecryptionError
from ._ids import ID_BYTES
from ._padding import padme
from ._payload import DataKey
from ._secret import FileCiphertext

CHUNK_BYTES = 64 * 1024
"""Plaintext bytes per record (ARCHITECTURE.md: 64 KiB chunks)."""

_LEN_BYTES = 4
_RECORD_PLAIN = _LEN_BYTES + CHUNK_BYTES
RECORD_BYTES = _RECORD_PLAIN + b.crypto_secretstream_xchacha20poly1305_ABYTES
"""Ciphertext bytes per record; every record has this length."""

HEADER_BYTES = 1 + b.crypto_secretstream_xchacha20poly1305_HEADERBYTES
"""Format byte and secretstream header at the start of every blob."""

_VERSION_BYTE = FORMAT_VERSION.to_bytes(1, "big")
_TAG_MESSAGE = b.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL = b.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_ZERO_CHUNK = bytes(CHUNK_BYTES)


def record_count(size: int) -> int:
    """How many records a file of ``size`` plaintext bytes is stored in."""
    return max(1, -(-padme(size) // CHUNK_BYTES))


def encrypted_size(size: int) -> int:
    """The blob length for a file of ``size`` bytes."""
    return HEADER_BYTES + record_count(size) * RECORD_BYTES


def _file_key(dek: DataKey, file_id: bytes) -> bytes:
    if len(file_id) != ID_BYTES:
        raise ValueError("file ids are 16 bytes")
    return nacl.hash.blake2b(
        file_id, digest_size=32, key=dek.reveal(), person=b"intake-file-v1", encoder=RawEncoder
    )


def _record_ad(file_id: bytes) -> bytes:
    return encode_fields(FORMAT_VERSION, "file", file_id)


@dataclass(frozen=True, slots=True)
class FileDigest:
    """What the encryptor measured of the plaintext, for the encrypted manifest."""

    size: int
    sha256: str


class FileEncryptor:
    """Encrypt a file of unknown length in constant memory.

    Call :meth:`header` once, then :meth:`update` with each piece of plaintext as it
    arrives (write out whatever it returns), then iterate :meth:`finish` to the end.
    """

    def __init__(self, dek: DataKey, file_id: bytes) -> None:
        self._state = b.crypto_secretstream_xchacha20poly1305_state()
        self._header = b.crypto_secretstream_xchacha20poly1305_init_push(
            self._state, _file_key(dek, file_id)
        )
        self._ad = _record_ad(file_id)
        self._buffer = bytearray()
        self._size = 0
        self._sha = hashlib.sha256()
        self._records = 0
        self._finished = False
        self._complete = False

    def header(self) -> FileCiphertext:
        return FileCiphertext(_VERSION_BYTE + self._header)

    def _push(self, data: bytes, tag: int) -> bytes:
        record = len(data).to_bytes(_LEN_BYTES, "big") + data + _ZERO_CHUNK[len(data) :]
        self._records += 1
        return b.crypto_secretstream_xchacha20poly1305_push(self._state, record, self._ad, tag)

    def update(self, data: bytes) -> FileCiphertext:
        """Take plaintext; return the ciphertext of every record it completed."""
        if self._finished:
            raise ValueError("encryptor already finished")
        self._size += len(data)
        self._sha.update(data)
        self._buffer += data
        out = bytearray()
        # Keep a full chunk back: only at finish() do we know which record is the last.
        while len(self._buffer) > CHUNK_BYTES:
            out += self._push(bytes(self._buffer[:CHUNK_BYTES]), _TAG_MESSAGE)
            del self._buffer[:CHUNK_BYTES]
        return FileCiphertext(out)

    def finish(self) -> Iterator[FileCiphertext]:
        """Close the input and return the remaining records: last data, padding, FINAL.

        No more :meth:`update` is accepted from this call on; iterate the result to the end
        (records are produced one at a time, so padding costs no memory).
        """
        if self._finished:
            raise ValueError("encryptor already finished")
        self._finished = True
        total = record_count(self._size)
        pending = bytes(self._buffer)
        self._buffer.clear()
        return self._tail(pending, total)

    def _tail(self, pending: bytes, total: int) -> Iterator[FileCiphertext]:
        while self._records < total:
            tag = _TAG_FINAL if self._records == total - 1 else _TAG_MESSAGE
            yield FileCiphertext(self._push(pending, tag))
            pending = b""
        self._complete = True

    def digest(self) -> FileDigest:
        """Size and SHA-256 of the plaintext; only once the FINAL record was produced."""
        if not self._complete:
            raise ValueError("digest before the stream was finished")
        return FileDigest(self._size, self._sha.hexdigest())


class FileDecryptor:
    """Decrypt a blob in constant memory; feed ciphertext in pieces of any size.

    Every failure is one :class:`DecryptionError`; after one, the decryptor is unusable.
    Plaintext returned before a failure must be discarded by the caller.
    """

    def __init__(self, dek: DataKey, file_id: bytes) -> None:
        self._key = _file_key(dek, file_id)
        self._ad = _record_ad(file_id)
        self._state: b.crypto_secretstream_xchacha20poly1305_state | None = None
        self._buffer = bytearray()
        self._records = 0
        self._size = 0
        self._short_seen = False
        self._final = False
        self._failed = False

    def _fail(self) -> DecryptionError:
        self._failed = True
        self._buffer.clear()
        return DecryptionError()

    def update(self, data: bytes) -> bytes:
        """Take ciphertext; return the plaintext of every record it completed."""
        if self._failed:
            raise DecryptionError
        self._buffer += data
        if self._state is None:
            if len(self._buffer) < HEADER_BYTES:
                return b""
            if self._buffer[:1] != _VERSION_BYTE:
                raise self._fail()
            self._state = b.crypto_secretstream_xchacha20poly1305_state()
            try:
                b.crypto_secretstream_xchacha20poly1305_init_pull(
                    self._state, bytes(self._buffer[1:HEADER_BYTES]), self._key
                )
            except (nacl.exceptions.CryptoError, ValueError):
                raise self._fail() from None
            del self._buffer[:HEADER_BYTES]
        out = bytearray()
        while len(self._buffer) >= RECORD_BYTES:
            if self._final:
                raise self._fail()
            out += self._pull(bytes(self._buffer[:RECORD_BYTES]))
            del self._buffer[:RECORD_BYTES]
        if self._final and self._buffer:
            raise self._fail()
        return bytes(out)

    def _pull(self, record: bytes) -> bytes:
        if self._state is None:
            raise self._fail()
        try:
            plain, tag = b.crypto_secretstream_xchacha20poly1305_pull(self._state, record, self._ad)
        except (nacl.exceptions.CryptoError, ValueError):
            raise self._fail() from None
        if tag not in (_TAG_MESSAGE, _TAG_FINAL) or len(plain) != _RECORD_PLAIN:
            raise self._fail()
        used = int.from_bytes(plain[:_LEN_BYTES], "big")
        if used > CHUNK_BYTES or (self._short_seen and used):
            raise self._fail()
        if used < CHUNK_BYTES:
            self._short_seen = True
        self._records += 1
        self._size += used
        if tag == _TAG_FINAL:
            self._final = True
            if self._records != record_count(self._size):
                raise self._fail()
        return plain[_LEN_BYTES : _LEN_BYTES + used]

    def finish(self) -> None:
        """Raise :class:`DecryptionError` unless the whole stream, up to FINAL, was seen."""
        if self._failed or not self._final or self._buffer:
            raise self._fail()

"""Streaming file encryption: round trips, tampering with the stream, and Padmé lengths."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake_bot.crypto import (
    CHUNK_BYTES,
    HEADER_BYTES,
    RECORD_BYTES,
    DataKey,
    DecryptionError,
    FileDecryptor,
    FileDigest,
    FileEncryptor,
    encrypted_size,
    padme,
    random_id,
    record_count,
)

MAX_SIZE = 300 * 1024
EDGE_SIZES = [0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 2 * CHUNK_BYTES, 3 * CHUNK_BYTES]


def _data(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random content (incompressible, so nothing is trivially equal)."""
    return hashlib.shake_256(seed.to_bytes(8, "big")).digest(size)


def _split(data: bytes, pieces: Sequence[int]) -> list[bytes]:
    out = []
    position = 0
    index = 0
    while position < len(data):
        size = pieces[index % len(pieces)]
        out.append(data[position : position + size])
        position += size
        index += 1
    return out


def _encrypt(
    dek: DataKey, file_id: bytes, data: bytes, pieces: Sequence[int] = (CHUNK_BYTES,)
) -> tuple[bytes, FileDigest]:
    encryptor = FileEncryptor(dek, file_id)
    out = [encryptor.header()]
    out += [encryptor.update(piece) for piece in _split(data, pieces)]
    out += list(encryptor.finish())
    return b"".join(out), encryptor.digest()


def _decrypt(
    dek: DataKey, file_id: bytes, blob: bytes, pieces: Sequence[int] = (RECORD_BYTES,)
) -> bytes:
    decryptor = FileDecryptor(dek, file_id)
    out = [decryptor.update(piece) for piece in _split(blob, pieces)]
    decryptor.finish()
    return b"".join(out)


def _records(blob: bytes) -> tuple[bytes, list[bytes]]:
    body = blob[HEADER_BYTES:]
    assert len(body) % RECORD_BYTES == 0
    return blob[:HEADER_BYTES], [
        body[i : i + RECORD_BYTES] for i in range(0, len(body), RECORD_BYTES)
    ]


def _flip(blob: bytes, position: int, mask: int = 0x01) -> bytes:
    out = bytearray(blob)
    out[position] ^= mask
    return bytes(out)


# A four-record file shared by the tampering tests: three full records and a short FINAL one.
DEK = DataKey.generate()
FILE_ID = random_id()
CONTENT = _data(3 * CHUNK_BYTES + 100, seed=1)
BLOB, _ = _encrypt(DEK, FILE_ID, CONTENT)
HEADER, RECORDS = _records(BLOB)


def _assert_rejected(
    blob: bytes,
    dek: DataKey = DEK,
    file_id: bytes = FILE_ID,
    pieces: Sequence[int] = (RECORD_BYTES,),
) -> None:
    """DecryptionError at update() or at finish(); either is a refusal."""
    with pytest.raises(DecryptionError):
        _decrypt(dek, file_id, blob, pieces)


def test_shared_blob_is_valid() -> None:
    """The tampering tests below only mean something if the untouched blob decrypts."""
    assert len(RECORDS) == 4 == record_count(len(CONTENT))
    assert _decrypt(DEK, FILE_ID, BLOB) == CONTENT
    assert _decrypt(DEK, FILE_ID, HEADER + b"".join(RECORDS)) == CONTENT


# ---------------------------------------------------------------------------------------
# Round trips

sizes = st.one_of(st.sampled_from(EDGE_SIZES), st.integers(min_value=0, max_value=MAX_SIZE))
piece_sizes = st.lists(st.integers(min_value=1, max_value=3 * CHUNK_BYTES), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None)
@given(size=sizes, seed=st.integers(0, 2**32), write=piece_sizes, read=piece_sizes)
def test_file_round_trip(size: int, seed: int, write: list[int], read: list[int]) -> None:
    data = _data(size, seed)
    dek = DataKey.generate()
    file_id = random_id()
    blob, digest = _encrypt(dek, file_id, data, write)
    assert digest == FileDigest(size, hashlib.sha256(data).hexdigest())
    assert len(blob) == encrypted_size(size)
    assert (len(blob) - HEADER_BYTES) % RECORD_BYTES == 0, "every record has one length"
    if size >= 32:
        assert blob.find(data[:32]) == -1, "plaintext visible in the blob"
    assert _decrypt(dek, file_id, blob, read) == data


@pytest.mark.parametrize("size", [2**22 + 1, 2**22 + CHUNK_BYTES])
def test_round_trip_with_padding_records(size: int) -> None:
    """Above 4 MiB Padmé adds whole records of padding, also after a full last data record."""
    assert record_count(size) > -(-size // CHUNK_BYTES)
    data = _data(size, seed=size)
    blob, digest = _encrypt(DEK, FILE_ID, data, [1 << 20])
    assert digest.size == size
    assert _decrypt(DEK, FILE_ID, blob, [1 << 20]) == data
    # Dropping the trailing (all-padding) FINAL record is still truncation.
    _assert_rejected(blob[:-RECORD_BYTES])


def test_empty_updates_are_harmless() -> None:
    encryptor = FileEncryptor(DEK, FILE_ID)
    parts = [encryptor.header(), encryptor.update(b""), encryptor.update(b"abc")]
    parts += [encryptor.update(b""), *encryptor.finish()]
    decryptor = FileDecryptor(DEK, FILE_ID)
    assert decryptor.update(b"") == b""
    plain = decryptor.update(b"".join(parts)) + decryptor.update(b"")
    decryptor.finish()
    assert plain == b"abc"


def test_same_file_encrypts_differently_each_time() -> None:
    first, _ = _encrypt(DEK, FILE_ID, b"same photo")
    second, _ = _encrypt(DEK, FILE_ID, b"same photo")
    assert first[:HEADER_BYTES] != second[:HEADER_BYTES]
    assert first != second


def test_encryptor_misuse_is_refused() -> None:
    encryptor = FileEncryptor(DEK, FILE_ID)
    encryptor.update(b"data")
    with pytest.raises(ValueError, match="digest"):
        encryptor.digest()
    list(encryptor.finish())
    with pytest.raises(ValueError, match="finished"):
        encryptor.update(b"more")
    with pytest.raises(ValueError, match="finished"):
        list(encryptor.finish())


@pytest.mark.parametrize("file_id", [b"", bytes(15), bytes(17)])
def test_file_id_must_be_sixteen_bytes(file_id: bytes) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        FileEncryptor(DEK, file_id)
    with pytest.raises(ValueError, match="16 bytes"):
        FileDecryptor(DEK, file_id)


# ---------------------------------------------------------------------------------------
# Flipped bytes


@pytest.mark.parametrize("position", range(HEADER_BYTES))
def test_flipped_header_byte_fails(position: int) -> None:
    """Position 0 is the format version byte; the rest is the secretstream header."""
    _assert_rejected(_flip(BLOB, position))


@pytest.mark.parametrize("version", [0x00, 0x02, 0xFF])
def test_other_format_version_fails(version: int) -> None:
    _assert_rejected(bytes([version]) + BLOB[1:])


@pytest.mark.parametrize("record", [0, 1, 3], ids=["first", "second", "last"])
@pytest.mark.parametrize("offset", [0, 4, RECORD_BYTES // 2, RECORD_BYTES - 1])
def test_flipped_record_byte_fails(record: int, offset: int) -> None:
    _assert_rejected(_flip(BLOB, HEADER_BYTES + record * RECORD_BYTES + offset))


@settings(max_examples=100, deadline=None)
@given(position=st.integers(0, len(BLOB) - 1), mask=st.integers(1, 255))
def test_flipped_byte_anywhere_fails(position: int, mask: int) -> None:
    _assert_rejected(_flip(BLOB, position, mask))


# ---------------------------------------------------------------------------------------
# Stream structure: truncation, order, FINAL, extra data, foreign records


def test_truncation_at_the_boundary_before_final_fails_at_finish() -> None:
    """Every record up to FINAL decrypts fine; only finish() can notice the missing end."""
    decryptor = FileDecryptor(DEK, FILE_ID)
    plain = decryptor.update(BLOB[:-RECORD_BYTES])
    assert plain == CONTENT[: 3 * CHUNK_BYTES]
    with pytest.raises(DecryptionError):
        decryptor.finish()


@pytest.mark.parametrize(
    "cut",
    [
        0,
        1,
        HEADER_BYTES - 1,
        HEADER_BYTES,
        HEADER_BYTES + 1,
        HEADER_BYTES + RECORD_BYTES - 1,
        HEADER_BYTES + RECORD_BYTES,
        HEADER_BYTES + 2 * RECORD_BYTES,
        HEADER_BYTES + 3 * RECORD_BYTES,
        HEADER_BYTES + 3 * RECORD_BYTES + 1,
        len(BLOB) - 17,
        len(BLOB) - 1,
    ],
)
def test_truncated_stream_fails(cut: int) -> None:
    _assert_rejected(BLOB[:cut])


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(0, len(BLOB) - 1), piece=st.integers(1, 2 * RECORD_BYTES))
def test_truncated_anywhere_fails(cut: int, piece: int) -> None:
    _assert_rejected(BLOB[:cut], pieces=[piece])


@pytest.mark.parametrize(("first", "second"), [(0, 1), (1, 2), (2, 3), (0, 3)])
def test_swapped_records_fail(first: int, second: int) -> None:
    records = list(RECORDS)
    records[first], records[second] = records[second], records[first]
    _assert_rejected(HEADER + b"".join(records))


def test_final_less_stream_fails() -> None:
    _assert_rejected(HEADER + b"".join(RECORDS[:-1]))


@pytest.mark.parametrize("dropped", [0, 1, 2])
def test_dropped_middle_record_fails(dropped: int) -> None:
    _assert_rejected(HEADER + b"".join(r for i, r in enumerate(RECORDS) if i != dropped))


def test_duplicated_record_fails() -> None:
    _assert_rejected(HEADER + b"".join([RECORDS[0], RECORDS[0], *RECORDS[1:]]))


@pytest.mark.parametrize("extra", [b"\x00", b"x" * 100, bytes(RECORD_BYTES), BLOB[-RECORD_BYTES:]])
def test_extra_bytes_after_final_fail(extra: bytes) -> None:
    _assert_rejected(BLOB + extra)


def test_extra_bytes_in_a_later_update_fail() -> None:
    decryptor = FileDecryptor(DEK, FILE_ID)
    assert decryptor.update(BLOB) == CONTENT
    with pytest.raises(DecryptionError):
        decryptor.update(b"\x00")


def test_appended_record_from_another_stream_fails() -> None:
    """Even a genuine record under the same DEK and file id cannot follow FINAL."""
    other, _ = _encrypt(DEK, FILE_ID, _data(3 * CHUNK_BYTES + 100, seed=2))
    _, other_records = _records(other)
    _assert_rejected(BLOB + other_records[0])
    _assert_rejected(BLOB + other_records[-1])


def test_record_replaced_from_another_stream_fails() -> None:
    other, _ = _encrypt(DEK, FILE_ID, _data(3 * CHUNK_BYTES + 100, seed=3))
    other_header, other_records = _records(other)
    for index in range(len(RECORDS)):
        records = list(RECORDS)
        records[index] = other_records[index]
        _assert_rejected(HEADER + b"".join(records))
    _assert_rejected(other_header + b"".join(RECORDS))


def test_blob_of_another_file_id_fails() -> None:
    _assert_rejected(BLOB, file_id=random_id())


def test_blob_under_another_dek_fails() -> None:
    _assert_rejected(BLOB, dek=DataKey.generate())


def test_decryptor_stays_failed() -> None:
    """After a failure, even the genuine stream is refused: no partial recovery."""
    decryptor = FileDecryptor(DEK, FILE_ID)
    with pytest.raises(DecryptionError):
        decryptor.update(_flip(BLOB, HEADER_BYTES + 10))
    with pytest.raises(DecryptionError):
        decryptor.update(BLOB)
    with pytest.raises(DecryptionError):
        decryptor.finish()


# ---------------------------------------------------------------------------------------
# Lengths


def test_sizes_one_and_65535_have_one_blob_length() -> None:
    small, _ = _encrypt(DEK, FILE_ID, _data(1))
    large, _ = _encrypt(DEK, FILE_ID, _data(65535))
    assert len(small) == len(large) == HEADER_BYTES + RECORD_BYTES
    bigger, _ = _encrypt(DEK, FILE_ID, _data(CHUNK_BYTES + 1))
    assert len(bigger) == HEADER_BYTES + 2 * RECORD_BYTES, "the next record is visible"


@settings(max_examples=30, deadline=None)
@given(size=st.integers(0, MAX_SIZE), where=st.floats(0, 1))
def test_sizes_with_one_padme_have_one_blob_length(size: int, where: float) -> None:
    other = size + int(where * (padme(size) - size))
    assert padme(other) == padme(size)
    first, _ = _encrypt(DEK, FILE_ID, _data(size))
    second, _ = _encrypt(DEK, FILE_ID, _data(other))
    assert len(first) == len(second) == encrypted_size(size)


def test_large_sizes_in_one_padme_bucket_share_a_record_count() -> None:
    """Sizes are computed, not encrypted: 4 MiB + 1 and 4 MiB + 128 KiB look alike."""
    low, high = 2**22 + 1, 2**22 + 2**17
    assert padme(low) == padme(high) == high
    assert encrypted_size(low) == encrypted_size(high)
    assert encrypted_size(high + 1) > encrypted_size(high)


def test_finish_closes_input_at_once_and_digest_waits_for_final() -> None:
    """finish() refuses more input even before its records are read; the digest (which
    goes into the manifest) is only given once the FINAL record was produced."""
    encryptor = FileEncryptor(DEK, FILE_ID)
    encryptor.header()
    encryptor.update(b"x" * 100)
    tail = encryptor.finish()
    with pytest.raises(ValueError, match="finished"):
        encryptor.update(b"more")
    with pytest.raises(ValueError, match="finished"):
        encryptor.digest()
    list(tail)
    assert encryptor.digest().size == 100

"""The blob store on a real file system: atomic, write-once, ciphertext-only, day-stamped.

No database is involved. Chunks are real :class:`FileCiphertext` from the file encryptor,
so a round trip is checked all the way back to the plaintext.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import re
import stat
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from intake_bot.crypto import (
    CHUNK_BYTES,
    DataKey,
    EncryptedPayload,
    FileCiphertext,
    FileDecryptor,
    FileEncryptor,
    encrypted_size,
    random_id,
)
from intake_bot.storage.blobs import BlobStore

HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    root = tmp_path / "blobs"
    root.mkdir(mode=0o700)
    return BlobStore(root)


def _plaintext(size: int) -> bytes:
    return hashlib.shake_256(size.to_bytes(8, "big")).digest(size)


def _encrypt(
    dek: DataKey, file_id: bytes, data: bytes, piece: int = 50_000
) -> list[FileCiphertext]:
    encryptor = FileEncryptor(dek, file_id)
    out = [encryptor.header()]
    out += [encryptor.update(data[i : i + piece]) for i in range(0, len(data), piece)]
    out += list(encryptor.finish())
    return out


async def _aiter(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        await asyncio.sleep(0)
        yield item


async def _read(store: BlobStore, blob_id: bytes) -> bytes:
    return b"".join([piece async for piece in store.read(blob_id)])


def _files(root: Path) -> list[Path]:
    """Every file under ``root``, hidden ones included, relative to it."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def _today_midnight() -> float:
    today = dt.datetime.now(dt.UTC).date()
    return dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC).timestamp()


async def _store_one(store: BlobStore, size: int = 1000) -> tuple[bytes, list[FileCiphertext]]:
    blob_id = random_id()
    chunks = _encrypt(DataKey.generate(), blob_id, _plaintext(size))
    await store.write(blob_id, _aiter(chunks))
    return blob_id, chunks


async def test_write_and_read_round_trip(store: BlobStore) -> None:
    """A multi-record file comes back byte for byte and decrypts to the original."""
    dek, blob_id = DataKey.generate(), random_id()
    data = _plaintext(3 * CHUNK_BYTES + 12_345)
    chunks = _encrypt(dek, blob_id, data)

    size = await store.write(blob_id, _aiter(chunks))

    stored = await _read(store, blob_id)
    assert size == len(stored) == encrypted_size(len(data))
    assert stored == b"".join(chunks)
    decryptor = FileDecryptor(dek, blob_id)
    assert decryptor.update(stored) == data
    decryptor.finish()


async def test_empty_chunks_are_fine(store: BlobStore) -> None:
    blob_id = random_id()
    chunks = [FileCiphertext(b""), *_encrypt(DataKey.generate(), blob_id, b""), FileCiphertext()]
    assert await store.write(blob_id, _aiter(chunks)) == encrypted_size(0)
    assert await _read(store, blob_id) == b"".join(chunks)


@pytest.mark.parametrize(
    "intruder",
    [b"plaintext bytes", bytearray(b"plaintext"), EncryptedPayload(b"another ciphertext kind")],
    ids=["bytes", "bytearray", "other-ciphertext"],
)
async def test_write_refuses_anything_but_file_ciphertext(store: BlobStore, intruder: Any) -> None:
    """A non-ciphertext chunk after good ones: TypeError, nothing stored, no temp file."""
    blob_id = random_id()
    chunks = _encrypt(DataKey.generate(), blob_id, _plaintext(2 * CHUNK_BYTES))
    with pytest.raises(TypeError, match="FileCiphertext"):
        await store.write(blob_id, _aiter([*chunks[:2], intruder, *chunks[2:]]))
    assert not store.path(blob_id).exists()
    assert _files(store.root) == []


async def test_a_failing_source_leaves_nothing(store: BlobStore) -> None:
    blob_id = random_id()
    chunks = _encrypt(DataKey.generate(), blob_id, _plaintext(3 * CHUNK_BYTES))

    async def source() -> AsyncIterator[FileCiphertext]:
        for chunk in chunks[:2]:
            yield chunk
        raise ConnectionError("download interrupted")

    with pytest.raises(ConnectionError):
        await store.write(blob_id, source())
    assert not store.path(blob_id).exists()
    assert _files(store.root) == []


async def test_a_cancelled_write_leaves_nothing(store: BlobStore) -> None:
    """Cancelled mid-stream (the reporter went away, shutdown): the temp file is removed."""
    blob_id = random_id()
    chunks = _encrypt(DataKey.generate(), blob_id, _plaintext(3 * CHUNK_BYTES))
    started, never = asyncio.Event(), asyncio.Event()

    async def source() -> AsyncIterator[FileCiphertext]:
        for chunk in chunks[:2]:
            yield chunk
        started.set()
        await never.wait()
        yield chunks[2]

    task = asyncio.create_task(store.write(blob_id, source()))
    await asyncio.wait_for(started.wait(), timeout=5)
    assert len(_files(store.root)) == 1  # the temp file exists while writing
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _files(store.root) == []


async def test_a_blob_is_written_once(store: BlobStore) -> None:
    blob_id, first = await _store_one(store)
    second = _encrypt(DataKey.generate(), blob_id, _plaintext(1000))
    assert second != first

    with pytest.raises(FileExistsError):
        await store.write(blob_id, _aiter(second))

    assert await _read(store, blob_id) == b"".join(first)
    assert _files(store.root) == [store.path(blob_id).relative_to(store.root)]


async def test_file_times_are_midnight_utc(store: BlobStore) -> None:
    """Neither the blob nor its shard directory tells the time of day a file arrived."""
    before = _today_midnight()
    blob_id, _ = await _store_one(store)
    after = _today_midnight()
    path = store.path(blob_id)
    for stamped in (path, path.parent):
        status = stamped.stat()
        assert status.st_mtime in {before, after}, stamped
        assert status.st_atime in {before, after}, stamped


async def test_sweep_removes_only_temporary_files(store: BlobStore) -> None:
    blob_id, chunks = await _store_one(store)
    shard = store.path(blob_id).parent
    other_shard = store.root / "ff"
    other_shard.mkdir()
    strays = [shard / ".tmp-0123456789abcdef", other_shard / ".tmp-deadbeefdeadbeef"]
    for stray in strays:
        stray.write_bytes(b"half a ciphertext")

    assert store.sweep_temporary() == 2

    assert not any(stray.exists() for stray in strays)
    assert await _read(store, blob_id) == b"".join(chunks)
    assert store.sweep_temporary() == 0


async def test_blob_names_are_the_hex_id_only(store: BlobStore) -> None:
    """Paths are ``<root>/<first byte>/<hex id>``: nothing from content, size or time."""
    ids = [random_id() for _ in range(5)]
    for blob_id in ids:
        chunks = _encrypt(DataKey.generate(), blob_id, _plaintext(777))
        await store.write(blob_id, _aiter(chunks))

    for blob_id in ids:
        path = store.path(blob_id)
        assert path == store.root / blob_id.hex()[:2] / blob_id.hex()
        assert path.is_file()
    files = _files(store.root)
    assert sorted(Path(i.hex()[:2]) / i.hex() for i in ids) == files
    assert all(HEX_ID.fullmatch(f.name) and f.parent.name == f.name[:2] for f in files)

    for bad in (b"", b"\x00" * 15, b"\x00" * 17):
        with pytest.raises(ValueError, match="16 bytes"):
            store.path(bad)


async def test_delete_removes_a_blob(store: BlobStore) -> None:
    blob_id, _ = await _store_one(store)
    kept, kept_chunks = await _store_one(store)
    await store.delete(blob_id)
    await store.delete(blob_id)  # idempotent
    assert not store.path(blob_id).exists()
    assert await _read(store, kept) == b"".join(kept_chunks)


@pytest.fixture(params=[0o077, 0o022], ids=["umask-077", "umask-022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Set the process umask for one test and restore it afterwards."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


async def test_blob_permissions_are_owner_only(store: BlobStore, umask: int) -> None:
    """0600 files in 0700 shards, whatever the umask (a lax 022 included)."""
    blob_id, _ = await _store_one(store)
    path = store.path(blob_id)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

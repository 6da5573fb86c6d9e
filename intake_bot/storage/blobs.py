"""Blob store for encrypted files, under ``<data dir>/blobs``.

Threat model: the store only ever receives :class:`~intake_bot.crypto.FileCiphertext`, so
nothing here, including temporary files, holds plaintext. Blobs are named by the file's
random id (nothing derived from content or time) and sharded by its first byte. A blob is
written to a temporary file in the same directory, fsynced, renamed into place and the
directory fsynced, so a crash leaves either the whole blob or none (a stray ``.tmp-*``
file of ciphertext at worst, removed by :meth:`BlobStore.sweep_temporary`). File times
are set to midnight UTC of the day, like every time in the clear.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

from intake_bot.crypto import FileCiphertext

READ_BYTES = 256 * 1024


class BlobStore:
    """Write-once ciphertext blobs on the local disk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, blob_id: bytes) -> Path:
        name = blob_id.hex()
        if len(blob_id) != 16:
            raise ValueError("blob ids are 16 bytes")
        return self.root / name[:2] / name

    async def write(self, blob_id: bytes, chunks: AsyncIterable[FileCiphertext]) -> int:
        """Store a blob from ciphertext pieces; returns its size. Refuses to overwrite."""
        final = self.path(blob_id)
        await asyncio.to_thread(final.parent.mkdir, mode=0o700, parents=True, exist_ok=True)
        temp = final.parent / f".tmp-{secrets.token_hex(8)}"
        fd = await asyncio.to_thread(os.open, temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        size = 0
        try:
            async for chunk in chunks:
                await asyncio.to_thread(_write_all, fd, _ciphertext_only(chunk))
                size += len(chunk)
            await asyncio.to_thread(os.fsync, fd)
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        os.close(fd)
        await asyncio.to_thread(_publish, temp, final)
        return size

    async def read(self, blob_id: bytes) -> AsyncIterator[bytes]:
        """Yield a blob's ciphertext in pieces (constant memory)."""
        handle = await asyncio.to_thread(self.path(blob_id).open, "rb")
        try:
            while piece := await asyncio.to_thread(handle.read, READ_BYTES):
                yield piece
        finally:
            handle.close()

    async def delete(self, blob_id: bytes) -> None:
        await asyncio.to_thread(self.path(blob_id).unlink, missing_ok=True)

    def sweep_temporary(self) -> int:
        """Remove temporary files left by a crash; returns how many."""
        removed = 0
        for temp in self.root.glob("*/.tmp-*"):
            temp.unlink(missing_ok=True)
            removed += 1
        return removed


def _ciphertext_only(chunk: object) -> FileCiphertext:
    if not isinstance(chunk, FileCiphertext):
        raise TypeError("the blob store takes FileCiphertext only")
    return chunk


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _publish(temp: Path, final: Path) -> None:
    midnight = dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time(), tzinfo=dt.UTC)
    stamp = midnight.timestamp()
    os.utime(temp, (stamp, stamp))
    if final.exists():
        temp.unlink()
        raise FileExistsError("blob exists")
    os.rename(temp, final)
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    os.utime(final.parent, (stamp, stamp))

"""Bytes of every file users send (and the bot uploads), held in memory by file id.

Like Telegram, a file gets a long ``file_id`` and a short, stable ``file_unique_id`` when
it arrives, and a ``file_path`` only when the bot calls ``getFile``; the download route
serves paths that ``getFile`` handed out and nothing else. Nothing is written to disk.
"""

from __future__ import annotations

import mimetypes
import secrets
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    folder: str
    """Telegram's folder for the kind: ``photos``, ``documents``, ``voice``, ``music``..."""
    extension: str
    file_path: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def ids(self) -> dict[str, Any]:
        """The fields every Bot API file object starts with."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
        }


class FileStore:
    """In-memory files by ``file_id`` and, once revealed, by ``file_path``."""

    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._paths_given = 0

    def add(self, data: bytes, *, folder: str, extension: str) -> StoredFile:
        stored = StoredFile(
            file_id=secrets.token_urlsafe(54),
            file_unique_id=secrets.token_urlsafe(12),
            data=data,
            folder=folder,
            extension=extension.lstrip("."),
        )
        self._by_id[stored.file_id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        return self._by_id.get(file_id)

    def reveal_path(self, stored: StoredFile) -> str:
        """Give ``stored`` its ``file_path`` (once; later calls return the same path)."""
        if stored.file_path is None:
            self._paths_given += 1
            stored.file_path = f"{stored.folder}/file_{self._paths_given}.{stored.extension}"
            self._by_path[stored.file_path] = stored
        return stored.file_path

    def by_path(self, file_path: str) -> StoredFile | None:
        return self._by_path.get(file_path)


def extension_for(file_name: str | None, mime_type: str | None, default: str) -> str:
    """The extension Telegram would put in a document's path: the name's, else the type's."""
    if file_name:
        suffix = PurePosixPath(file_name).suffix.lstrip(".")
        if suffix.isalnum() and len(suffix) <= 10:
            return suffix.lower()
    if mime_type:
        guessed = mimetypes.guess_extension(mime_type, strict=False)
        if guessed:
            return guessed.lstrip(".")
    return default

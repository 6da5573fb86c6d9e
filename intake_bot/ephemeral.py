"""The bot's ephemeral secrets, kept on tmpfs (``INTAKE_RUNTIME_DIR``, ``/dev/shm`` by default).

The file ``intake-boot.json`` holds the boot secret (it names the boot) and the daily
key ratchet (today's and yesterday's keys), from which reporter handles and the boxes of
open drafts are derived. It is created when the bot first
starts after a reboot and is never written anywhere else; on tmpfs a reboot erases it,
which is what turns every open draft into an incomplete report nobody can link to a
Telegram user. If the directory is not on tmpfs or ramfs, a warning is logged at start.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .crypto import (
    DecryptionError,
    Plaintext,
    Secret,
    WrappedDraftBox,
    boot_tag,
    new_secret,
    next_handle_key,
    open_draft_box,
    reporter_handle,
    seal_draft_box,
)

FILE_NAME = "intake-boot.json"
_MEMORY_FS = ("tmpfs", "ramfs")


@dataclass(frozen=True, slots=True)
class BootSecrets:
    boot: Secret
    tag: bytes
    day: dt.date
    today: Secret
    yesterday: Secret | None

    def _keys(self) -> list[Secret]:
        return [self.today] + ([self.yesterday] if self.yesterday is not None else [])

    def handles(self, user_id: int) -> list[bytes]:
        """The reporter's handle under today's key, then under yesterday's."""
        return [reporter_handle(key, user_id) for key in self._keys()]

    def seal_box(self, report_id: bytes, content: Plaintext) -> WrappedDraftBox:
        """Seal a draft's box under today's ratcheted key: once that key is erased (after
        tomorrow), old copies of the box (WAL, dead tuples, backups) no longer open."""
        return seal_draft_box(self.today, report_id, content)

    def open_box(self, report_id: bytes, box: WrappedDraftBox) -> Plaintext:
        """Open a box sealed today or yesterday; :class:`DecryptionError` otherwise."""
        for key in self._keys():
            try:
                return open_draft_box(key, report_id, box)
            except DecryptionError:
                continue
        raise DecryptionError


def on_memory_fs(path: Path) -> bool:
    """Whether ``path`` lies on tmpfs or ramfs (by the longest matching mount point)."""
    try:
        mounts = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    target = str(path.resolve())
    best, fstype = "", ""
    for line in mounts:
        fields = line.split()
        if len(fields) >= 3:
            point = fields[1]
            inside = target == point or target.startswith(point.rstrip("/") + "/")
            if inside and len(point) > len(best):
                best, fstype = point, fields[2]
    return fstype in _MEMORY_FS


def load_or_create(runtime_dir: Path, today: dt.date) -> BootSecrets:
    """Read the boot file, creating it at first start; ratchet handle keys to ``today``."""
    runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if runtime_dir.stat().st_uid == os.getuid():
        runtime_dir.chmod(0o700)
    path = runtime_dir / FILE_NAME
    if not path.exists():
        fresh = BootSecrets(new_secret(), b"", today, new_secret(), None)
        _write(path, fresh, create=True)
    data = json.loads(_read_own(path))
    boot = Secret(bytes.fromhex(data["boot"]))
    day = dt.date.fromisoformat(data["day"])
    current = Secret(bytes.fromhex(data["today"]))
    previous = Secret(bytes.fromhex(data["yesterday"])) if data.get("yesterday") else None
    if today > day:
        for _ in range((today - day).days):
            previous, current = current, next_handle_key(current)
        loaded = BootSecrets(boot, boot_tag(boot), today, current, previous)
        _write(path, loaded, create=False)
        return loaded
    return BootSecrets(boot, boot_tag(boot), day, current, previous)


def _read_own(path: Path) -> str:
    """Read the boot file only if it is ours and private: a file planted by another local
    user (or a link to one) would hand them every handle and box key."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "r", encoding="ascii") as handle:
        info = os.fstat(handle.fileno())
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise PermissionError(f"{path.name} is not private to this user: refusing it")
        return handle.read()


def _write(path: Path, state: BootSecrets, *, create: bool) -> None:
    content = json.dumps(
        {
            "boot": state.boot.reveal().hex(),
            "day": state.day.isoformat(),
            "today": state.today.reveal().hex(),
            "yesterday": state.yesterday.reveal().hex() if state.yesterday else None,
        }
    )
    # Written whole to a temporary name first: another process never reads half a file.
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(content)
    if not create:
        os.replace(temp, path)
        return
    try:
        os.link(temp, path)  # atomic, and fails if another process created it first
    except FileExistsError:
        pass  # theirs is used
    finally:
        temp.unlink()

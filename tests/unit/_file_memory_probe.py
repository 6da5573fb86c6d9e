"""Encrypt and decrypt a large pseudo-random stream in constant memory; print JSON figures.

Usage::

    python _file_memory_probe.py DIRECTORY MEBIBYTES

Plaintext is generated 1 MiB at a time and only hashed, never kept; the ciphertext goes to
``DIRECTORY/blob`` and is read back in pieces that do not line up with records.

Why a relay: on Linux a process inherits its parent's ``ru_maxrss`` high-water mark across
fork/vfork and exec, so a probe started straight from a big pytest process would report the
runner's peak as its own and any growth below it would be invisible. The probe therefore
re-launches itself from this small process (``--worker``), and also reports ``VmHWM`` (the
peak of its own address space, reset by exec) so the test can check the two agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

from intake_bot.crypto import DataKey, FileDecryptor, FileEncryptor, encrypted_size, random_id

PIECE = 1 << 20
READ_PIECE = PIECE + 12_345


def max_rss_kib() -> int:
    """Peak RSS from getrusage, in KiB (the field is in bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def vm_hwm_kib() -> int | None:
    """Peak RSS of this address space from /proc (Linux only), in KiB."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
    return int(match.group(1)) if match else None


def run(directory: Path, mebibytes: int) -> dict[str, object]:
    rss_before = max_rss_kib()
    hwm_before = vm_hwm_kib()
    started = time.perf_counter()
    dek = DataKey.generate()
    file_id = random_id()
    blob_path = directory / "blob"

    sha_in = hashlib.sha256()
    encryptor = FileEncryptor(dek, file_id)
    with blob_path.open("wb") as out:
        out.write(encryptor.header())
        for _ in range(mebibytes):
            piece = os.urandom(PIECE)
            sha_in.update(piece)
            out.write(encryptor.update(piece))
        for record in encryptor.finish():
            out.write(record)
    digest = encryptor.digest()
    encrypted_at = time.perf_counter()

    sha_out = hashlib.sha256()
    decryptor = FileDecryptor(dek, file_id)
    size_out = 0
    with blob_path.open("rb") as blob:
        while piece := blob.read(READ_PIECE):
            plain = decryptor.update(piece)
            size_out += len(plain)
            sha_out.update(plain)
    decryptor.finish()
    decrypted_at = time.perf_counter()

    return {
        "size": mebibytes * PIECE,
        "size_out": size_out,
        "digest_size": digest.size,
        "blob_size": blob_path.stat().st_size,
        "expected_blob_size": encrypted_size(mebibytes * PIECE),
        "sha_in": sha_in.hexdigest(),
        "sha_out": sha_out.hexdigest(),
        "digest_sha": digest.sha256,
        "rss_before_kib": rss_before,
        "rss_after_kib": max_rss_kib(),
        "hwm_before_kib": hwm_before,
        "hwm_after_kib": vm_hwm_kib(),
        "encrypt_seconds": encrypted_at - started,
        "decrypt_seconds": decrypted_at - encrypted_at,
    }


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] == "--worker":
        print(json.dumps(run(Path(argv[2]), int(argv[3]))))
        return 0
    if len(argv) != 3:
        print(f"usage: {argv[0]} DIRECTORY MEBIBYTES", file=sys.stderr)
        return 2
    # Relay: the worker inherits this small process's high-water mark, not the caller's.
    return subprocess.run([sys.executable, __file__, "--worker", *argv[1:]], check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))

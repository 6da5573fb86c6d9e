"""Encrypt and decrypt a large pseudo-random stream in constant memory; print JSON figures.

Run in its own process so the peak RSS is the crypto's, not the test runner's::

    python _file_memory_probe.py DIRECTORY MEBIBYTES

Plaintext is generated 1 MiB at a time and only hashed, never kept; the ciphertext goes to
``DIRECTORY/blob`` and is read back in pieces that do not line up with records.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time
from pathlib import Path

from intake_bot.crypto import DataKey, FileDecryptor, FileEncryptor, encrypted_size, random_id

PIECE = 1 << 20
READ_PIECE = PIECE + 12_345


def _max_rss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


def run(directory: Path, mebibytes: int) -> dict[str, object]:
    rss_before = _max_rss_kib()
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
        "rss_after_kib": _max_rss_kib(),
        "encrypt_seconds": encrypted_at - started,
        "decrypt_seconds": decrypted_at - encrypted_at,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} DIRECTORY MEBIBYTES", file=sys.stderr)
        return 2
    print(json.dumps(run(Path(argv[1]), int(argv[2]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

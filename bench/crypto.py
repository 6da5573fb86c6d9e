"""Throughput and memory of the crypto envelope beside raw libsodium (PyNaCl bindings).

Run: ``.venv/bin/python bench/crypto.py``. Prints figures, asserts nothing; not a test.

The "raw" columns call the same primitives directly in the same run, so the ratios show
what the envelope costs (padding, associated data, record framing, Python buffering).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nacl.bindings as b
import nacl.utils

from intake_bot.crypto import (
    DataKey,
    FileDecryptor,
    FileEncryptor,
    PayloadContext,
    PayloadKind,
    Plaintext,
    decrypt_payload,
    encrypt_payload,
    payload_bucket,
    random_id,
)

MIB = 1 << 20
PAYLOAD_SIZES = (200, 4096)
FILE_MIB = 64
MEMORY_MIB = 200
STREAM_CHUNK = 64 * 1024
FEED_PIECE = MIB
MIN_SECONDS = 0.4
REPEATS = 3


def ops_per_second(operation: Callable[[], object]) -> float:
    """Best of a few timed runs, each long enough to dwarf the timer's resolution."""
    loops = 1
    while True:
        started = time.perf_counter()
        for _ in range(loops):
            operation()
        elapsed = time.perf_counter() - started
        if elapsed >= MIN_SECONDS / 4:
            break
        loops *= 2
    loops = max(1, int(loops * MIN_SECONDS / elapsed))
    best = 0.0
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _ in range(loops):
            operation()
        best = max(best, loops / (time.perf_counter() - started))
    return best


def best_seconds(operation: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        operation()
        best = min(best, time.perf_counter() - started)
    return best


# ---------------------------------------------------------------------------------------
# Payloads


def raw_aead_encrypt(message: bytes, ad: bytes, key: bytes) -> bytes:
    nonce = nacl.utils.random(b.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    return nonce + b.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, nonce, key)


def raw_aead_decrypt(blob: bytes, ad: bytes, key: bytes) -> bytes:
    npub = b.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
    return b.crypto_aead_xchacha20poly1305_ietf_decrypt(blob[npub:], ad, blob[:npub], key)


def payload_rows() -> list[tuple[str, str, float, float, float]]:
    """(size, operation, intake ops/s, raw ops/s on the same size, raw ops/s on the bucket)."""
    dek = DataKey.generate()
    key = dek.reveal()
    context = PayloadContext(PayloadKind.ANSWER, random_id(), random_id(), 0)
    ad = context.associated_data()
    rows = []
    for size in PAYLOAD_SIZES:
        message = os.urandom(size)
        padded = os.urandom(payload_bucket(size))
        plaintext = Plaintext(message)
        payload = encrypt_payload(dek, context, plaintext)
        raw_blob = raw_aead_encrypt(message, ad, key)
        raw_padded_blob = raw_aead_encrypt(padded, ad, key)
        rows.append(
            (
                f"{size} B",
                "encrypt",
                ops_per_second(lambda: encrypt_payload(dek, context, plaintext)),
                ops_per_second(lambda: raw_aead_encrypt(message, ad, key)),
                ops_per_second(lambda: raw_aead_encrypt(padded, ad, key)),
            )
        )
        rows.append(
            (
                f"{size} B",
                "decrypt",
                ops_per_second(lambda: decrypt_payload(dek, context, payload)),
                ops_per_second(lambda: raw_aead_decrypt(raw_blob, ad, key)),
                ops_per_second(lambda: raw_aead_decrypt(raw_padded_blob, ad, key)),
            )
        )
    return rows


# ---------------------------------------------------------------------------------------
# Files


def pieces(blob: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(blob), size):
        yield blob[start : start + size]


def file_rows() -> list[tuple[str, float, float]]:
    """(operation, intake MiB/s, raw secretstream MiB/s) on FILE_MIB of data."""
    total = FILE_MIB * MIB
    feed = os.urandom(FEED_PIECE)
    dek = DataKey.generate()
    file_id = random_id()
    key = b.crypto_secretstream_xchacha20poly1305_keygen()
    chunks = [feed[i : i + STREAM_CHUNK] for i in range(0, FEED_PIECE, STREAM_CHUNK)]
    blob = bytearray()

    def intake_encrypt() -> None:
        blob.clear()
        encryptor = FileEncryptor(dek, file_id)
        blob.extend(encryptor.header())
        for _ in range(FILE_MIB):
            blob.extend(encryptor.update(feed))
        for record in encryptor.finish():
            blob.extend(record)

    def intake_decrypt() -> None:
        decryptor = FileDecryptor(dek, file_id)
        for piece in pieces(bytes(blob), FEED_PIECE):
            decryptor.update(piece)
        decryptor.finish()

    raw_records: list[bytes] = []
    raw_header = [b""]

    def raw_push() -> None:
        raw_records.clear()
        state = b.crypto_secretstream_xchacha20poly1305_state()
        raw_header[0] = b.crypto_secretstream_xchacha20poly1305_init_push(state, key)
        count = FILE_MIB * len(chunks)
        for index in range(count):
            tag = (
                b.crypto_secretstream_xchacha20poly1305_TAG_FINAL
                if index == count - 1
                else b.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
            )
            raw_records.append(
                b.crypto_secretstream_xchacha20poly1305_push(
                    state, chunks[index % len(chunks)], None, tag
                )
            )

    def raw_pull() -> None:
        state = b.crypto_secretstream_xchacha20poly1305_state()
        b.crypto_secretstream_xchacha20poly1305_init_pull(state, raw_header[0], key)
        for record in raw_records:
            b.crypto_secretstream_xchacha20poly1305_pull(state, record, None)

    mib = total / MIB
    return [
        ("encrypt", mib / best_seconds(intake_encrypt), mib / best_seconds(raw_push)),
        ("decrypt", mib / best_seconds(intake_decrypt), mib / best_seconds(raw_pull)),
    ]


# ---------------------------------------------------------------------------------------
# Peak memory, in a fresh process


def max_rss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def rss_probe(directory: Path, mebibytes: int) -> None:
    """Child process: encrypt to a file and decrypt it back; print the peak RSS as JSON."""
    before = max_rss_kib()
    dek = DataKey.generate()
    file_id = random_id()
    path = directory / "blob"
    started = time.perf_counter()
    encryptor = FileEncryptor(dek, file_id)
    with path.open("wb") as out:
        out.write(encryptor.header())
        for _ in range(mebibytes):
            out.write(encryptor.update(os.urandom(FEED_PIECE)))
        for record in encryptor.finish():
            out.write(record)
    decryptor = FileDecryptor(dek, file_id)
    with path.open("rb") as blob:
        while piece := blob.read(FEED_PIECE):
            decryptor.update(piece)
    decryptor.finish()
    seconds = time.perf_counter() - started
    print(json.dumps({"before": before, "after": max_rss_kib(), "seconds": seconds}))


def memory_figures() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        result = subprocess.run(
            [sys.executable, __file__, "--rss-probe", directory, str(MEMORY_MIB)],
            capture_output=True,
            text=True,
            check=True,
        )
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


# ---------------------------------------------------------------------------------------
# Report


def rule(width: int) -> None:
    print("-" * width)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rss-probe", nargs=2, metavar=("DIR", "MIB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_probe:
        rss_probe(Path(args.rss_probe[0]), int(args.rss_probe[1]))
        return

    print(f"intake crypto benchmark (Python {sys.version.split()[0]}, {sys.platform})")
    print()
    print("Payloads: encrypt_payload/decrypt_payload vs raw XChaCha20-Poly1305-IETF")
    print("(raw = same plaintext unpadded; raw@bucket = plaintext of the padded bucket size;")
    print(" both raw columns include a fresh random nonce, as encrypt_payload does)")
    header = (
        f"{'size':>8} {'op':<8} {'intake ops/s':>13} {'raw ops/s':>11} {'ratio':>6}"
        f" {'raw@bucket ops/s':>17} {'ratio':>6}"
    )
    print(header)
    rule(len(header))
    for size, op, intake, raw, raw_bucket in payload_rows():
        print(
            f"{size:>8} {op:<8} {intake:>13,.0f} {raw:>11,.0f} {intake / raw:>6.2f}"
            f" {raw_bucket:>17,.0f} {intake / raw_bucket:>6.2f}"
        )
    print()
    print(f"Files: FileEncryptor/FileDecryptor ({FILE_MIB} MiB fed in 1 MiB pieces)")
    print(f"vs raw crypto_secretstream push/pull in {STREAM_CHUNK // 1024} KiB chunks")
    header = f"{'op':<8} {'intake MiB/s':>13} {'raw MiB/s':>11} {'ratio':>6}"
    print(header)
    rule(len(header))
    for op, intake, raw in file_rows():
        print(f"{op:<8} {intake:>13,.0f} {raw:>11,.0f} {intake / raw:>6.2f}")
    print()
    memory = memory_figures()
    growth = (memory["after"] - memory["before"]) / 1024
    print(f"Peak memory: {MEMORY_MIB} MiB file encrypted to disk and decrypted back (subprocess)")
    header = f"{'max RSS before':>15} {'max RSS after':>14} {'growth':>9} {'time':>7}"
    print(header)
    rule(len(header))
    print(
        f"{memory['before'] / 1024:>11.1f} MiB {memory['after'] / 1024:>10.1f} MiB"
        f" {growth:>5.1f} MiB {memory['seconds']:>6.2f}s"
    )
    print()
    print("ratio = intake throughput / raw throughput (1.00 = no overhead)")


if __name__ == "__main__":
    main()

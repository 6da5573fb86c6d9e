"""Throughput and memory of the crypto envelope beside raw libsodium (PyNaCl bindings).

Run: ``.venv/bin/python bench/crypto.py``. Prints figures, asserts nothing; not a test.

The "raw" columns call the same primitives directly in the same run, so the ratios show
what the envelope costs (padding, associated data, record framing, Python buffering).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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
_NPUB = b.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES


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

PayloadRow = tuple[str, str, float, float, float]


def raw_aead_encrypt(message: bytes, ad: bytes, key: bytes) -> bytes:
    nonce = nacl.utils.random(_NPUB)
    return nonce + b.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, nonce, key)


def raw_aead_decrypt(blob: bytes, ad: bytes, key: bytes) -> bytes:
    return b.crypto_aead_xchacha20poly1305_ietf_decrypt(blob[_NPUB:], ad, blob[:_NPUB], key)


def payload_rows_for(size: int) -> list[PayloadRow]:
    """(size, op, intake ops/s, raw ops/s on the same size, raw ops/s on the padded bucket)."""
    dek = DataKey.generate()
    key = dek.reveal()
    context = PayloadContext(PayloadKind.ANSWER, random_id(), random_id(), 0)
    ad = context.associated_data()
    message = os.urandom(size)
    bucket = os.urandom(payload_bucket(size))
    plaintext = Plaintext(message)
    payload = encrypt_payload(dek, context, plaintext)
    raw_blob = raw_aead_encrypt(message, ad, key)
    raw_bucket_blob = raw_aead_encrypt(bucket, ad, key)
    return [
        (
            f"{size} B",
            "encrypt",
            ops_per_second(lambda: encrypt_payload(dek, context, plaintext)),
            ops_per_second(lambda: raw_aead_encrypt(message, ad, key)),
            ops_per_second(lambda: raw_aead_encrypt(bucket, ad, key)),
        ),
        (
            f"{size} B",
            "decrypt",
            ops_per_second(lambda: decrypt_payload(dek, context, payload)),
            ops_per_second(lambda: raw_aead_decrypt(raw_blob, ad, key)),
            ops_per_second(lambda: raw_aead_decrypt(raw_bucket_blob, ad, key)),
        ),
    ]


# ---------------------------------------------------------------------------------------
# Files


def file_rows() -> list[tuple[str, float, float]]:
    """(op, intake MiB/s, raw secretstream MiB/s) on FILE_MIB of data."""
    feed = os.urandom(FEED_PIECE)
    dek = DataKey.generate()
    file_id = random_id()
    key = b.crypto_secretstream_xchacha20poly1305_keygen()
    chunks = [feed[i : i + STREAM_CHUNK] for i in range(0, FEED_PIECE, STREAM_CHUNK)]
    pieces: list[bytes] = []

    def intake_encrypt() -> None:
        pieces.clear()
        encryptor = FileEncryptor(dek, file_id)
        pieces.append(encryptor.header())
        for _ in range(FILE_MIB):
            pieces.append(encryptor.update(feed))
        pieces.extend(encryptor.finish())

    def intake_decrypt() -> None:
        decryptor = FileDecryptor(dek, file_id)
        for piece in pieces:
            decryptor.update(piece)
        decryptor.finish()

    records: list[bytes] = []
    header = [b""]

    def raw_push() -> None:
        records.clear()
        state = b.crypto_secretstream_xchacha20poly1305_state()
        header[0] = b.crypto_secretstream_xchacha20poly1305_init_push(state, key)
        count = FILE_MIB * len(chunks)
        for index in range(count):
            tag = (
                b.crypto_secretstream_xchacha20poly1305_TAG_FINAL
                if index == count - 1
                else b.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
            )
            chunk = chunks[index % len(chunks)]
            records.append(b.crypto_secretstream_xchacha20poly1305_push(state, chunk, None, tag))

    def raw_pull() -> None:
        state = b.crypto_secretstream_xchacha20poly1305_state()
        b.crypto_secretstream_xchacha20poly1305_init_pull(state, header[0], key)
        for record in records:
            b.crypto_secretstream_xchacha20poly1305_pull(state, record, None)

    # Encrypt first: each decryption reads what the matching encryption left behind.
    rows = [("encrypt", FILE_MIB / best_seconds(intake_encrypt), FILE_MIB / best_seconds(raw_push))]
    rows.append(
        ("decrypt", FILE_MIB / best_seconds(intake_decrypt), FILE_MIB / best_seconds(raw_pull))
    )
    return rows


# ---------------------------------------------------------------------------------------
# Peak memory, in a fresh process


def max_rss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def vm_hwm_kib() -> int:
    """Peak RSS of this address space (Linux); -1 where /proc is not available."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return -1
    match = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
    return int(match.group(1)) if match else -1


def rss_probe(directory: Path, mebibytes: int) -> None:
    """Worker process: encrypt to a file and decrypt it back; print the peak RSS as JSON."""
    before, hwm_before = max_rss_kib(), vm_hwm_kib()
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
    figures = {
        "before": before,
        "after": max_rss_kib(),
        "hwm_before": hwm_before,
        "hwm_after": vm_hwm_kib(),
        "seconds": time.perf_counter() - started,
    }
    print(json.dumps(figures))


# Linux carries a process's ru_maxrss high-water mark across fork/vfork and exec, so a
# worker started straight from this process (large after the file benchmark) would report
# our peak as its own. A tiny relay interpreter in between gives the worker a clean baseline.
RELAY = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


def memory_figures() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        command = [sys.executable, __file__, "--rss-probe", directory, str(MEMORY_MIB)]
        result = subprocess.run(
            [sys.executable, "-c", RELAY, *command], capture_output=True, text=True, check=True
        )
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


# ---------------------------------------------------------------------------------------
# Report


def table(title: list[str], header: str, lines: list[str]) -> None:
    for line in title:
        print(line)
    print(header)
    print("-" * len(header))
    for line in lines:
        print(line)
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rss-probe", nargs=2, metavar=("DIR", "MIB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_probe:
        rss_probe(Path(args.rss_probe[0]), int(args.rss_probe[1]))
        return

    print(f"intake crypto benchmark (Python {sys.version.split()[0]}, {sys.platform})")
    print("ratio = intake throughput / raw throughput (1.00 = no overhead)")
    print()

    rows = [row for size in PAYLOAD_SIZES for row in payload_rows_for(size)]
    table(
        [
            "Payloads: encrypt_payload/decrypt_payload vs raw XChaCha20-Poly1305-IETF",
            "  raw        = the same plaintext, unpadded, same associated data",
            "  raw@bucket = a plaintext of the padded bucket size intake really encrypts",
            "  (both raw columns draw a fresh 24-byte nonce, as encrypt_payload does)",
        ],
        f"{'size':>7}  {'op':<7} {'intake op/s':>11} {'raw op/s':>10} {'ratio':>5}"
        f"  {'raw@bucket op/s':>15} {'ratio':>5}",
        [
            f"{size:>7}  {op:<7} {intake:>11,.0f} {raw:>10,.0f} {intake / raw:>5.2f}"
            f"  {bucket:>15,.0f} {intake / bucket:>5.2f}"
            for size, op, intake, raw, bucket in rows
        ],
    )

    table(
        [
            f"Files: FileEncryptor/FileDecryptor, {FILE_MIB} MiB fed in 1 MiB pieces,",
            f"  vs raw crypto_secretstream push/pull in {STREAM_CHUNK // 1024} KiB chunks",
        ],
        f"{'op':<7} {'intake MiB/s':>12} {'raw MiB/s':>10} {'ratio':>5}",
        [
            f"{op:<7} {intake:>12,.0f} {raw:>10,.0f} {intake / raw:>5.2f}"
            for op, intake, raw in file_rows()
        ],
    )

    memory = memory_figures()
    measures = [("ru_maxrss", memory["before"], memory["after"])]
    if memory["hwm_before"] >= 0:
        measures.append(("VmHWM (/proc)", memory["hwm_before"], memory["hwm_after"]))
    table(
        [
            f"Peak memory: a {MEMORY_MIB} MiB file encrypted to disk and decrypted back",
            f"  in a fresh process (1 MiB pieces; took {memory['seconds']:.2f} s)",
        ],
        f"{'measure':<14} {'before':>10} {'after':>10} {'growth':>10}",
        [
            f"{name:<14} {before / 1024:>6.1f} MiB {after / 1024:>6.1f} MiB"
            f" {(after - before) / 1024:>6.1f} MiB"
            for name, before, after in measures
        ],
    )


if __name__ == "__main__":
    main()

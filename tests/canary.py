"""Canary scanning: prove that known secrets appear nowhere they must not.

A test plants unique *canaries* (an answer, a file name, a user id, a token...) in what a
reporter sends, runs the system, and then scans every artefact the system could have
written (files under a directory, log output, a ``pg_dump``) for each canary in every
encoding in which a careless component might have written it:

* text: UTF-8 (NFC and NFD), UTF-16-LE, JSON with ``ensure_ascii`` (``\\u0259``), Python's
  ``repr`` of the UTF-8 bytes (``\\xc9\\x99``), base64 at each of the three alignments, and
  lower- and upper-case hex of the UTF-8 bytes (how PostgreSQL dumps ``bytea``);
* integers (a Telegram user id): the decimal text, 8-byte big- and little-endian, the
  shortest big- and little-endian forms (SQLite stores integers in 1 to 8 bytes) and the
  hex of each of these.

This is a plain module, not a conftest: end-to-end tests import it (``import canary``;
pytest puts ``tests/`` on ``sys.path`` for ``tests/conftest.py``). It also provides
:func:`preserved_process_state`, for tests that call ``configure_logging`` or otherwise
change process-wide logging, hook or temp-dir state.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import unicodedata
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import structlog

READ_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Canary:
    """A unique string that must never be found; ``integer`` adds its binary encodings."""

    name: str
    value: str
    integer: int | None = None

    @classmethod
    def of_int(cls, name: str, number: int) -> Canary:
        return cls(name, str(number), number)

    def patterns(self) -> dict[str, bytes]:
        """Encoding name -> the bytes to look for."""
        out: dict[str, bytes] = {}
        decomposed = unicodedata.normalize("NFD", self.value)
        forms = (
            {"": self.value, "-nfd": decomposed} if decomposed != self.value else {"": self.value}
        )
        for suffix, text in forms.items():
            raw = text.encode("utf-8")
            out["utf-8" + suffix] = raw
            out["utf-16-le" + suffix] = text.encode("utf-16-le")
            out["json-ascii" + suffix] = json.dumps(text)[1:-1].encode("ascii")
            out["bytes-repr" + suffix] = repr(raw)[2:-1].encode("ascii")
            for shift in range(3):
                whole = (len(raw) - shift) // 3 * 3
                out[f"base64+{shift}{suffix}"] = base64.b64encode(raw[shift : shift + whole])
            out["hex" + suffix] = raw.hex().encode("ascii")
            out["HEX" + suffix] = raw.hex().upper().encode("ascii")
        if self.integer is not None:
            number = self.integer
            shortest = max(1, (number.bit_length() + 7) // 8)
            binary = {
                "int64-be": number.to_bytes(8, "big"),
                "int64-le": number.to_bytes(8, "little"),
                "int-be": number.to_bytes(shortest, "big"),
                "int-le": number.to_bytes(shortest, "little"),
            }
            for label, data in binary.items():
                out[label] = data
                out[label + "-hex"] = data.hex().encode("ascii")
        # Drop duplicates (an ASCII text's JSON and repr forms equal its UTF-8).
        seen: dict[bytes, str] = {}
        for label, data in out.items():
            seen.setdefault(data, label)
        return {label: data for data, label in seen.items()}


@dataclass(frozen=True, slots=True)
class Finding:
    canary: str
    encoding: str
    where: str
    offset: int

    def __str__(self) -> str:
        return f"{self.canary} ({self.encoding}) in {self.where} at byte {self.offset}"


@dataclass(slots=True)
class ScanResult:
    """What a scan looked at and what it found."""

    scanned: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def extend(self, other: ScanResult) -> None:
        self.scanned += other.scanned
        self.findings += other.findings

    def assert_clean(self) -> None:
        """Fail listing every finding (canary name, encoding, place), if there is one."""
        assert self.scanned, "nothing was scanned"
        if self.findings:
            listing = "\n  ".join(str(finding) for finding in self.findings)
            raise AssertionError(f"canaries found:\n  {listing}")


def _flat_patterns(canaries: Iterable[Canary]) -> list[tuple[str, str, bytes]]:
    flat = [
        (canary.name, label, data)
        for canary in canaries
        for label, data in canary.patterns().items()
    ]
    if not flat:
        raise ValueError("no canaries to look for")
    return flat


def _scan_stream(
    chunks: Iterable[bytes], patterns: list[tuple[str, str, bytes]], where: str
) -> list[Finding]:
    """Search a stream chunk by chunk; a match spanning two chunks is still found."""
    overlap = max(len(data) for _, _, data in patterns) - 1
    found: dict[tuple[str, str], Finding] = {}
    window = b""
    window_start = 0  # stream offset of window[0]
    for chunk in chunks:
        window += chunk
        for name, label, data in patterns:
            if (name, label) in found:
                continue
            at = window.find(data)
            if at != -1:
                found[(name, label)] = Finding(name, label, where, window_start + at)
        keep = min(overlap, len(window))
        window_start += len(window) - keep
        window = window[len(window) - keep :]
    return list(found.values())


def scan_bytes(data: bytes, canaries: Iterable[Canary], where: str) -> ScanResult:
    return ScanResult([where], _scan_stream([data], _flat_patterns(canaries), where))


def scan_text(text: str, canaries: Iterable[Canary], where: str) -> ScanResult:
    return scan_bytes(text.encode("utf-8", "surrogatepass"), canaries, where)


def _read_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(READ_BYTES):
            yield chunk


def scan_file(path: Path, canaries: Iterable[Canary]) -> ScanResult:
    return ScanResult(
        [str(path)], _scan_stream(_read_chunks(path), _flat_patterns(canaries), str(path))
    )


def scan_tree(
    root: Path, canaries: Iterable[Canary], *, exclude: Collection[Path] = ()
) -> ScanResult:
    """Scan every regular file under ``root`` (hidden ones included, symlinks not followed)."""
    patterns = _flat_patterns(canaries)
    skip = {path.resolve() for path in exclude}
    result = ScanResult()
    for directory, _dirs, files in os.walk(root, followlinks=False):
        for file_name in sorted(files):
            path = Path(directory, file_name)
            if path.is_symlink() or not path.is_file() or path.resolve() in skip:
                continue
            result.scanned.append(str(path))
            result.findings += _scan_stream(_read_chunks(path), patterns, str(path))
    return result


def pg_dump(database_url: str, *, timeout: float = 120) -> bytes:
    """A plain-format ``pg_dump`` of the database a SQLAlchemy/asyncpg URL names.

    ``bytea`` comes out as lower-case hex, which the hex patterns cover.
    """
    parts = urlsplit(database_url)
    name = unquote(parts.path.lstrip("/"))
    if not parts.scheme.startswith("postgresql") or not name:
        raise ValueError("not a PostgreSQL URL with a database name")
    command = [
        "pg_dump",
        "--no-password",
        "--host",
        parts.hostname or "127.0.0.1",
        "--port",
        str(parts.port or 5432),
        "--username",
        unquote(parts.username or "postgres"),
        "--dbname",
        name,
    ]
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    done = subprocess.run(command, capture_output=True, check=False, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"pg_dump failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def scan_pg_dump(database_url: str, canaries: Iterable[Canary]) -> ScanResult:
    return scan_bytes(pg_dump(database_url), canaries, "pg_dump")


@contextmanager
def preserved_process_state() -> Iterator[None]:
    """Undo what ``configure_logging`` and friends change, however the block ends.

    Restores: the root logger's handlers and level, every existing logger's level,
    handlers, ``disabled`` and ``propagate`` (loggers created in the block are reset),
    ``logging.captureWarnings``, structlog's configuration and context variables,
    ``sys.excepthook``, ``sys.unraisablehook``, ``threading.excepthook`` and
    ``tempfile.tempdir``.
    """
    root = logging.getLogger()
    manager = logging.Logger.manager
    root_state = (root.handlers[:], root.level)
    loggers = {
        name: (logger.level, logger.handlers[:], logger.disabled, logger.propagate)
        for name, logger in manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    captured_warnings = logging._warnings_showwarning is not None  # type: ignore[attr-defined]
    structlog_configured = structlog.is_configured()
    structlog_config = structlog.get_config()
    hooks = (sys.excepthook, sys.unraisablehook, threading.excepthook)
    temp_dir = tempfile.tempdir
    try:
        yield
    finally:
        tempfile.tempdir = temp_dir
        sys.excepthook, sys.unraisablehook, threading.excepthook = hooks
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
        if structlog_configured:
            structlog.configure(**structlog_config)
        if not captured_warnings:
            logging.captureWarnings(False)
        for name, logger in list(manager.loggerDict.items()):
            if not isinstance(logger, logging.Logger):
                continue
            level, handlers, disabled, propagate = loggers.get(
                name, (logging.NOTSET, [], False, True)
            )
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.disabled = disabled
            logger.propagate = propagate
        root.handlers[:], level = root_state
        root.setLevel(level)

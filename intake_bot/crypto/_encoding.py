"""Unambiguous encodings used as associated data and as signed messages.

Every field is prefixed with its length (4 bytes, big-endian), so that no two different
tuples of fields encode to the same bytes (``("ab", "c")`` and ``("a", "bc")`` differ).
"""

from __future__ import annotations

FORMAT_VERSION = 1
"""Format version 1 of ARCHITECTURE.md; part of every associated data and signature."""


def encode_fields(*fields: bytes | str | int) -> bytes:
    """Length-prefix each field; ints are 8-byte big-endian, str is UTF-8.

    Raises ``ValueError`` for an int outside 0 to 2**64 - 1 (never a silent wrap).
    """
    out = bytearray()
    for field in fields:
        if isinstance(field, bool):
            raise TypeError("booleans are not fields")
        if isinstance(field, int):
            if not 0 <= field < 2**64:
                raise ValueError("integer fields are 0 to 2**64 - 1")
            raw = field.to_bytes(8, "big", signed=False)
        elif isinstance(field, str):
            raw = field.encode("utf-8")
        else:
            raw = bytes(field)
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)

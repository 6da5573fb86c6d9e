"""Receipt codes: what a reporter writes down to come back to a report.

A code is six words from the EFF long wordlist (without its four hyphenated words: 7,772
words, 12.9 bits each, 77.5 bits),
drawn with ``secrets``. Two values are derived from it with Argon2id under separate salts:
the *lookup id*, stored to find the report, and the *reply key*, never stored, which
protects replies to the reporter. Argon2id is slow on purpose; run these in a bounded
thread pool, never on the event loop.
"""

from __future__ import annotations

import secrets
import unicodedata
from functools import cache
from importlib import resources

import nacl.hash
from nacl.encoding import RawEncoder
from nacl.pwhash import argon2id

from ._keys import SALT_BYTES, KdfParams
from ._secret import Secret

RECEIPT_WORDS = 6


@cache
def _wordlist() -> tuple[str, ...]:
    text = (
        resources.files("diceware").joinpath("wordlists", "wordlist_en_eff.txt").read_text("utf-8")
    )
    words = tuple(line.split()[-1] for line in text.splitlines() if line.strip())
    if len(words) != 7776 or len(set(words)) != 7776:
        raise RuntimeError("the EFF long wordlist is not as expected")
    # Words are joined with hyphens, so the four that hold one (t-shirt, yo-yo...) would
    # make a code ambiguous to read back: they are left out (7,772 words, 77.5 bits).
    return tuple(word for word in words if "-" not in word)


def new_receipt_code() -> str:
    """Six random EFF words joined by hyphens."""
    words = _wordlist()
    return "-".join(secrets.choice(words) for _ in range(RECEIPT_WORDS))


def normalise_receipt(text: str) -> str | None:
    """Canonical form of a code as typed (case, spaces, hyphens, dots forgiven), or None."""
    # The words are ASCII; Azerbaijani keyboards give İ and ı, which str.lower() would turn
    # into "i" plus a combining dot, or leave as dotless ı.
    cleaned = unicodedata.normalize("NFKC", text).replace("İ", "i").replace("ı", "i").lower()
    for separator in "-_.,;:":
        cleaned = cleaned.replace(separator, " ")
    words = cleaned.split()
    known = set(_wordlist())
    if len(words) != RECEIPT_WORDS or not all(word in known for word in words):
        return None
    return "-".join(words)


def _derive(code: str, context: bytes, params: KdfParams) -> bytes:
    """Argon2id of the code, salted per use (the salt is fixed: the code carries the entropy)."""
    salt = nacl.hash.blake2b(context, digest_size=SALT_BYTES, encoder=RawEncoder)
    return bytes(
        argon2id.kdf(32, code.encode(), salt, opslimit=params.opslimit, memlimit=params.memlimit)
    )


def receipt_lookup_id(code: str, params: KdfParams) -> bytes:
    """The stored id that finds a report from its receipt code."""
    return _derive(code, b"intake receipt lookup v1", params)


def receipt_reply_key(code: str, params: KdfParams) -> Secret:
    """The key for replies to the reporter; derived when needed, never stored."""
    return Secret(_derive(code, b"intake receipt reply v1", params))

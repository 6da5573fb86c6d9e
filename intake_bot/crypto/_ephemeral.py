"""Ephemeral secrets of a running bot: reporter handles and the boot wrap of drafts.

.. warning:: The boot secret and the handle keys must live only in memory or on tmpfs.
   After a reboot they are gone, and with them every link between a Telegram user and a
   draft: that is the point. Never write them to disk or log them.

* Reporter handle: keyed BLAKE2b of the Telegram user id under the day's handle key. Day
  keys form a one-way ratchet (``next = BLAKE2b(key, "next")``); the bot keeps today's and
  yesterday's and erases older ones, so a captured key does not reveal earlier days.
* Draft box: a draft's data key (and what the bot needs to wipe the chat) encrypted under a
  key derived from the boot secret, bound to the report id.
"""

from __future__ import annotations

import nacl.bindings
import nacl.exceptions
import nacl.hash
import nacl.utils
from nacl.encoding import RawEncoder

from ._encoding import FORMAT_VERSION, encode_fields
from ._errors import DecryptionError
from ._secret import Plaintext, Secret, WrappedDraftBox

SECRET_BYTES = 32
_NONCE = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES


def new_secret() -> Secret:
    return Secret(nacl.utils.random(SECRET_BYTES))


def _derive(key: Secret, data: bytes, person: bytes, size: int = 32) -> bytes:
    return nacl.hash.blake2b(
        data, digest_size=size, key=key.reveal(), person=person, encoder=RawEncoder
    )


def next_handle_key(key: Secret) -> Secret:
    """Tomorrow's handle key from today's (one way)."""
    return Secret(_derive(key, b"next", b"intake-ratchet"))


def reporter_handle(day_key: Secret, user_id: int) -> bytes:
    """The only handle on a reporter while a draft is open: a MAC of their user id."""
    return _derive(day_key, str(user_id).encode("ascii"), b"intake-reporter")


def boot_tag(boot: Secret) -> bytes:
    """A public tag naming the boot a draft belongs to (reveals nothing of the secret)."""
    return _derive(boot, b"tag", b"intake-boot-tag", 16)


def _box_ad(report_id: bytes) -> bytes:
    return encode_fields(FORMAT_VERSION, "draft-box", report_id)


def seal_draft_box(boot: Secret, report_id: bytes, content: Plaintext) -> WrappedDraftBox:
    """Encrypt a draft's boot-bound data (its DEK, chat handle, message ids to wipe)."""
    key = _derive(boot, b"wrap", b"intake-draft-box")
    nonce = nacl.utils.random(_NONCE)
    ct = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        content.reveal(), _box_ad(report_id), nonce, key
    )
    return WrappedDraftBox(nonce + ct)


def open_draft_box(boot: Secret, report_id: bytes, box: WrappedDraftBox) -> Plaintext:
    """Decrypt a draft box; :class:`DecryptionError` after a reboot or on any tampering."""
    key = _derive(boot, b"wrap", b"intake-draft-box")
    blob = bytes(box)
    try:
        return Plaintext(
            nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                blob[_NONCE:], _box_ad(report_id), blob[:_NONCE], key
            )
        )
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise DecryptionError from None

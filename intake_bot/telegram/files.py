"""Receiving files from Telegram: what a message carries, and a streamed download.

Downloads go through our own HTTP client as a stream and are encrypted chunk by chunk
(never ``File.download_to_memory``/``download_to_drive``, which would hold or write the
plaintext). The file URL holds the bot token: it is never logged (httpx logs only at
WARNING here) and never put in an exception message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from telegram import Bot, Message

CHUNK = 64 * 1024


class TooBig(Exception):
    """The file is larger than the configured limit."""


class DownloadFailed(Exception):
    """The Bot API or the download failed (the message never names the URL)."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """An attachment as announced by Telegram, before download."""

    kind: str
    file_id: str
    size: int | None
    name: str | None
    mime: str | None


def attachment(message: Message) -> Incoming | None:
    """The evidence file a message carries (the largest size of a photo), or None.

    GIFs (animations) and stickers are not evidence files here; the adapter answers them
    as unsupported input.
    """
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.file_size or 0, p.width * p.height))
        return Incoming("photo", largest.file_id, largest.file_size, None, "image/jpeg")
    if message.animation or message.sticker:
        return None
    for kind in ("document", "video", "voice", "audio", "video_note"):
        item = getattr(message, kind)
        if item is not None:
            return Incoming(
                kind,
                item.file_id,
                item.file_size,
                getattr(item, "file_name", None),
                getattr(item, "mime_type", None),
            )
    return None


async def download(
    bot: Bot, http: httpx.AsyncClient, incoming: Incoming, limit: int
) -> AsyncIterator[bytes]:
    """Stream a file's bytes from the Bot API, refusing more than ``limit`` bytes."""
    if incoming.size is not None and incoming.size > limit:
        raise TooBig
    try:
        remote = await bot.get_file(incoming.file_id)
    except Exception as exc:  # noqa: BLE001  # PTB raises many kinds; all mean the same here
        if "too big" in str(exc).lower():
            raise TooBig from None
        raise DownloadFailed from None
    if not remote.file_path:
        raise DownloadFailed
    received = 0
    try:
        async with http.stream("GET", remote.file_path) as response:
            if response.status_code != httpx.codes.OK:
                raise DownloadFailed
            async for chunk in response.aiter_bytes(CHUNK):
                received += len(chunk)
                if received > limit:
                    raise TooBig
                yield chunk
    except httpx.HTTPError:
        raise DownloadFailed from None

"""Message content that carries a file: photos, documents, voice, audio, video and the rest.

Each builder stores the bytes in the :class:`~intake_bot.simulator.files.FileStore` and
returns the message fields Telegram would send, with every field python-telegram-bot
requires (``Voice`` needs ``duration``, ``Sticker`` needs ``type``, ``is_animated``,
``is_video``, ``width`` and ``height``, and so on).

Photos come as several ``PhotoSize`` entries, smallest first, like Telegram's
90/320/800/1280-pixel boxes. The simulator has no image codec: the largest size is the
original bytes, and the smaller sizes are distinct files holding a prefix of them, sized
in proportion to their area. They are not valid images. Dimensions are read from PNG and
JPEG headers when not given. Animations (GIFs) carry both ``animation`` and ``document``
with the same file, as Telegram does for backward compatibility.
"""

from __future__ import annotations

import mimetypes
import struct
from collections.abc import Callable

from .chats import JsonDict
from .entities import command_entities, utf16_len
from .errors import invalid
from .files import StoredFile, extension_for
from .params import Params, Upload
from .state import Simulator

MediaBuilder = Callable[[Simulator, Params, Upload | None], JsonDict]

MAX_CAPTION = 1024
_PHOTO_BOXES = (90, 320, 800, 1280)
_DEFAULT_PHOTO_SIZE = (1280, 960)
_GENERIC_TYPE = "application/octet-stream"
_STICKER_PLACEHOLDER = b"RIFF\x0c\x00\x00\x00WEBPVP8 "


def caption(p: Params) -> JsonDict:
    """``caption`` and its command entities, if the user wrote one."""
    text = p.text("caption")
    if not text:
        return {}
    if utf16_len(text) > MAX_CAPTION:
        raise invalid(f"a caption holds at most {MAX_CAPTION} characters")
    content: JsonDict = {"caption": text}
    if entities := command_entities(text):
        content["caption_entities"] = entities
    return content


def photo(sim: Simulator, p: Params, upload: Upload | None) -> JsonDict:
    data = _required(upload).data
    sniffed = image_size(data) or _DEFAULT_PHOTO_SIZE
    width = _positive(p, "width") or sniffed[0]
    height = _positive(p, "height") or sniffed[1]
    longest = max(width, height)
    sizes: list[JsonDict] = []
    for box in _PHOTO_BOXES:
        if box >= longest:
            break
        w = max(1, round(width * box / longest))
        h = max(1, round(height * box / longest))
        prefix = data[: max(1, len(data) * w * h // (width * height))]
        stored = sim.files.add(prefix, folder="photos", extension="jpg")
        sizes.append({**stored.ids(), "width": w, "height": h})
    stored = sim.files.add(data, folder="photos", extension="jpg")
    sizes.append({**stored.ids(), "width": width, "height": height})
    return {"photo": sizes, **caption(p)}


def document(sim: Simulator, p: Params, upload: Upload | None) -> JsonDict:
    stored, file_name, mime_type = _named_file(
        sim, p, upload, folder="documents", default_name="document", default_ext="bin"
    )
    body = {**stored.ids(), "file_name": file_name, "mime_type": mime_type}
    return {"document": body, **caption(p)}


def voice(sim: Simulator, p: Params, upload: Upload | None) -> JsonDict:
    mime_type = p.text("mime_type") or "audio/ogg"
    stored = sim.files.add(_required(upload).data, folder="voice", extension="oga")
    body = {**stored.ids(), "duration": _duration(p), "mime_type": mime_type}
    return {"voice": body, **caption(p)}


def audio(sim: Simulator, p: Params, upload: Upload | None) -> JsonDict:
    stored, file_name, mime_type = _named_file(
        sim, p, upload, folder="music", default_name="audio.mp3", default_ext="mp3"
    )
    body: JsonDict = {
        **stored.ids(),
        "duration": _duration(p),
        "file_name": file_name,
        "mime_type": mime_type,
    }
    for name in ("performer", "title"):
        if value := p.text(name):
            body[name] = value
    return {"audio": body, **caption(p)}


def video(sim: Simulator, p: Params, upload: Upload | None) -> JsonDict:
    stored, file_name, mime_type = _named_file(
        sim, p, upload, folder="videos", default_name="video.mp4", default_ext="mp4"
    )
    body = {
        **stored.ids(),
        "width": _positive(p, "width") or 640,
        "height": _positive(p, "height") or 360,
        "duration": _duration(p),
        "file_name": file_name,
        "mime_type": mime_type,
    }
    return {"video": body, **caption(p)}


def video_note(sim: Simulator, p: Params, upload: Upload | None) -> JsonDict:
    stored = sim.files.add(_required(upload).data, folder="video_notes", extension="mp4")
    body = {**stored.ids(), "length": _positive(p, "length") or 240, "duration": _duration(p)}
    return {"video_note": body}


def animation(sim: Simulator, p: Params, upload: Upload | None) -> JsonDict:
    stored, file_name, mime_type = _named_file(
        sim, p, upload, folder="animations", default_name="animation.gif.mp4", default_ext="mp4"
    )
    as_document = {**stored.ids(), "file_name": file_name, "mime_type": mime_type}
    body = {
        **as_document,
        "width": _positive(p, "width") or 320,
        "height": _positive(p, "height") or 240,
        "duration": _duration(p),
    }
    return {"animation": body, "document": as_document, **caption(p)}


def sticker(sim: Simulator, p: Params, upload: Upload | None) -> JsonDict:
    is_animated = p.flag("is_animated")
    is_video = p.flag("is_video")
    extension = "tgs" if is_animated else "webm" if is_video else "webp"
    data = upload.data if upload is not None else _STICKER_PLACEHOLDER
    stored = sim.files.add(data, folder="stickers", extension=extension)
    sticker_type = p.text("sticker_type") or "regular"
    if sticker_type not in ("regular", "mask", "custom_emoji"):
        raise invalid("sticker_type is regular, mask or custom_emoji")
    body: JsonDict = {
        **stored.ids(),
        "type": sticker_type,
        "width": _positive(p, "width") or 512,
        "height": _positive(p, "height") or 512,
        "is_animated": is_animated,
        "is_video": is_video,
        "emoji": p.text("emoji") or "🙂",
    }
    if set_name := p.text("set_name"):
        body["set_name"] = set_name
    return {"sticker": body}


MEDIA_BUILDERS: dict[str, MediaBuilder] = {
    "photo": photo,
    "document": document,
    "voice": voice,
    "audio": audio,
    "video": video,
    "video_note": video_note,
    "animation": animation,
    "sticker": sticker,
}


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG or baseline/progressive JPEG header, else ``None``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return (width, height) if width and height else None
    if not data.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return (width, height) if width and height else None
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        i += 2 + length
    return None


def _required(upload: Upload | None) -> Upload:
    if upload is None:
        raise invalid("this kind needs file bytes: data_base64, or a multipart part 'file'")
    return upload


def _named_file(
    sim: Simulator,
    p: Params,
    upload: Upload | None,
    *,
    folder: str,
    default_name: str,
    default_ext: str,
) -> tuple[StoredFile, str, str]:
    data = _required(upload)
    file_name = p.text("file_name") or data.filename or default_name
    sent_type = data.content_type if data.content_type != _GENERIC_TYPE else None
    mime_type = (
        p.text("mime_type")
        or sent_type
        or mimetypes.guess_type(file_name, strict=False)[0]
        or _GENERIC_TYPE
    )
    extension = extension_for(file_name, mime_type, default_ext)
    return sim.files.add(data.data, folder=folder, extension=extension), file_name, mime_type


def _positive(p: Params, name: str) -> int | None:
    value = p.integer(name)
    if value is not None and value <= 0:
        raise invalid(f"{name} must be positive")
    return value


def _duration(p: Params) -> int:
    value = p.integer("duration")
    if value is not None and value < 0:
        raise invalid("duration must not be negative")
    return 1 if value is None else value

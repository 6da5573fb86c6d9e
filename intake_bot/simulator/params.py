"""Request parameters as the Bot API accepts them: query string, JSON, form or multipart.

python-telegram-bot 22 posts with httpx: ``application/x-www-form-urlencoded`` when
nothing is uploaded and ``multipart/form-data`` when a file is, in both cases with every
non-string value JSON-encoded into a string (``chat_id=123``, ``protect_content=true``,
``reply_markup={"inline_keyboard": ...}``). Other clients post JSON, and Telegram accepts
either, so each getter here takes the typed JSON value or its string form alike.

Multipart bodies are read part by part into memory, never spooled to temporary files,
and the total is bounded.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, hdrs, web

from .errors import SimulatorError, bad_request

MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""Largest request body read (uploads included); larger ones answer 413 like Telegram."""

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request (or bytes given in base64 to the control API)."""

    data: bytes
    filename: str | None = None
    content_type: str | None = None


class Params:
    """Typed access to one request's parameters; bad values answer 400."""

    def __init__(self, values: Mapping[str, object], uploads: Mapping[str, Upload] | None = None):
        self._values = dict(values)
        self._uploads = dict(uploads or {})

    @classmethod
    async def from_request(cls, request: web.Request) -> Params:
        values: dict[str, object] = dict(request.query)
        uploads: dict[str, Upload] = {}
        if request.can_read_body:
            content_type = request.content_type
            if content_type == "multipart/form-data":
                await _read_multipart(request, values, uploads)
            elif content_type == "application/x-www-form-urlencoded":
                form = await request.post()
                values.update({k: v for k, v in form.items() if isinstance(v, str)})
            else:
                values.update(await _read_json(request))
        return cls(values, uploads)

    def has(self, name: str) -> bool:
        return self._values.get(name) is not None

    def raw(self, name: str) -> object:
        return self._values.get(name)

    def text(self, name: str) -> str | None:
        value = self._values.get(name)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        raise bad_request(f"field {name!r} must be a string")

    def integer(self, name: str) -> int | None:
        value = self._values.get(name)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise bad_request(f"invalid {name} specified")

    def number(self, name: str) -> float | None:
        value = self._values.get(name)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise bad_request(f"invalid {name} specified") from None
        else:
            raise bad_request(f"invalid {name} specified")
        if not math.isfinite(number):
            raise bad_request(f"invalid {name} specified")
        return number

    def flag(self, name: str, default: bool = False) -> bool:
        value = self._values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0", ""):
            return value.strip().lower() in ("true", "1")
        raise bad_request(f"invalid {name} specified")

    def json(self, name: str) -> object:
        """A JSON-serialized field: decoded when it came as a string, as is otherwise."""
        value = self._values.get(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {name} JSON object") from None

    def upload(self, name: str) -> Upload | None:
        return self._uploads.get(name)

    def base64(self, name: str) -> bytes | None:
        encoded = self.text(name)
        if encoded is None:
            return None
        try:
            return base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise bad_request(f"{name} is not valid base64") from None


async def _read_json(request: web.Request) -> JsonDict:
    body = await request.read()
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        raise bad_request("can't parse JSON request body") from None
    if not isinstance(data, dict):
        raise bad_request("the JSON request body must be an object")
    return data


async def _read_multipart(
    request: web.Request, values: dict[str, object], uploads: dict[str, Upload]
) -> None:
    reader = await request.multipart()
    total = 0
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        data = bytearray()
        while chunk := await part.read_chunk():
            total += len(chunk)
            if total > MAX_REQUEST_BYTES:
                raise SimulatorError(413, "Request Entity Too Large")
            data += chunk
        if part.filename is not None:
            content_type = part.headers.get(hdrs.CONTENT_TYPE)
            uploads[part.name] = Upload(bytes(data), part.filename, content_type)
        else:
            values[part.name] = data.decode(part.get_charset("utf-8"))

"""A typed async client for the control API, for tests (and a reference for a chat page).

Each method is one control request (see :mod:`.control` for the shapes). Failures raise
:class:`SimulatorClientError` with the status and the simulator's message; waits that
run out raise :class:`TimeoutError`, so a test never mistakes "nothing yet" for "done".
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import aiohttp

JsonDict = dict[str, Any]


class SimulatorClientError(Exception):
    """The control API refused a request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Sent:
    """A message a user sent (or edited), and the update the bot gets for it."""

    update_id: int | None
    """``None`` when the bot cannot receive it (it left the group)."""
    message: JsonDict

    @property
    def message_id(self) -> int:
        return int(self.message["message_id"])


@dataclass(frozen=True)
class Pressed:
    """A button press, and the update the bot gets for it."""

    update_id: int | None
    callback_query: JsonDict

    @property
    def query_id(self) -> str:
        return str(self.callback_query["id"])


@dataclass(frozen=True)
class AlbumItem:
    kind: Literal["photo", "video", "document", "audio"]
    data: bytes
    file_name: str | None = None
    mime_type: str | None = None
    caption: str | None = None


class SimulatorClient:
    """``async with SimulatorClient(server.url) as sim:`` -- the users' side of the chat."""

    def __init__(self, base_url: str, *, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> SimulatorClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    # -- users and groups -----------------------------------------------------------------

    async def create_user(
        self,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> JsonDict:
        """A new user (a Bot API ``User``); their private chat's id is their id."""
        body = _without_none(
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
        )
        user: JsonDict = (await self._json("POST", "/control/users", body=body))["user"]
        return user

    async def create_group(self, title: str, member_ids: Iterable[int] = ()) -> JsonDict:
        """A basic group with the bot in it (a Bot API ``Chat``)."""
        body = {"title": title, "member_ids": list(member_ids)}
        chat: JsonDict = (await self._json("POST", "/control/groups", body=body))["chat"]
        return chat

    async def set_blocked(self, user_id: int, blocked: bool = True) -> None:
        """The user blocks (or unblocks) the bot: sending to them then answers 403."""
        await self._json("POST", f"/control/users/{user_id}/block", body={"blocked": blocked})

    # -- what users do --------------------------------------------------------------------

    async def send(
        self,
        user_id: int,
        kind: str,
        *,
        data: bytes | None = None,
        chat_id: int | None = None,
        reply_to: int | None = None,
        forward_origin: Mapping[str, object] | None = None,
        multipart: bool = False,
        **fields: object,
    ) -> Sent:
        """Any kind of message (see :mod:`.control`); ``data`` is the file, if any.

        With ``multipart`` the bytes go as a multipart part rather than base64 in JSON.
        """
        body: JsonDict = {"kind": kind, **_without_none(**fields)}
        body.update(
            _without_none(
                chat_id=chat_id, reply_to_message_id=reply_to, forward_origin=forward_origin
            )
        )
        path = f"/control/users/{user_id}/messages"
        if multipart:
            result = await self._json("POST", path, form=_form(body, data))
        else:
            if data is not None:
                body["data_base64"] = base64.b64encode(data).decode("ascii")
            result = await self._json("POST", path, body=body)
        return Sent(result["update_id"], result["message"])

    async def send_text(self, user_id: int, text: str, **options: Any) -> Sent:
        return await self.send(user_id, "text", text=text, **options)

    async def send_document(
        self,
        user_id: int,
        data: bytes,
        *,
        file_name: str,
        mime_type: str | None = None,
        caption: str | None = None,
        **options: Any,
    ) -> Sent:
        return await self.send(
            user_id,
            "document",
            data=data,
            file_name=file_name,
            mime_type=mime_type,
            caption=caption,
            **options,
        )

    async def send_photo(
        self,
        user_id: int,
        data: bytes,
        *,
        caption: str | None = None,
        width: int | None = None,
        height: int | None = None,
        **options: Any,
    ) -> Sent:
        return await self.send(
            user_id, "photo", data=data, caption=caption, width=width, height=height, **options
        )

    async def send_album(
        self, user_id: int, items: Sequence[AlbumItem], *, chat_id: int | None = None
    ) -> list[Sent]:
        """Several messages with one ``media_group_id``, each its own update."""
        body: JsonDict = {
            "items": [
                _without_none(
                    kind=item.kind,
                    data_base64=base64.b64encode(item.data).decode("ascii"),
                    file_name=item.file_name,
                    mime_type=item.mime_type,
                    caption=item.caption,
                )
                for item in items
            ],
            **_without_none(chat_id=chat_id),
        }
        result = await self._json("POST", f"/control/users/{user_id}/albums", body=body)
        return [Sent(update["update_id"], update["message"]) for update in result["updates"]]

    async def press_button(
        self,
        user_id: int,
        message_id: int,
        data: str | None = None,
        *,
        button_text: str | None = None,
        forge: bool = False,
        chat_id: int | None = None,
    ) -> Pressed:
        """Press an inline button by its ``callback_data`` or its text.

        ``forge=True`` sends ``data`` whether or not such a button exists, as a modified
        client could.
        """
        body = _without_none(
            message_id=message_id, data=data, button_text=button_text, chat_id=chat_id
        )
        body["forge"] = forge
        result = await self._json("POST", f"/control/users/{user_id}/callbacks", body=body)
        return Pressed(result["update_id"], result["callback_query"])

    async def edit_message(
        self,
        user_id: int,
        message_id: int,
        *,
        text: str | None = None,
        caption: str | None = None,
        chat_id: int | None = None,
    ) -> Sent:
        """The user edits an earlier message; the bot gets an ``edited_message`` update."""
        body = _without_none(message_id=message_id, text=text, caption=caption, chat_id=chat_id)
        result = await self._json("POST", f"/control/users/{user_id}/edits", body=body)
        return Sent(result["update_id"], result["edited_message"])

    # -- what tests observe ---------------------------------------------------------------

    async def callback_answer(self, query_id: str) -> JsonDict:
        """Whether and how the bot answered a button press."""
        return await self._json("GET", f"/control/callbacks/{query_id}")

    async def chat_state(
        self, chat_id: int, *, changed_after: int | None = None, max_wait: float = 5.0
    ) -> JsonDict:
        """The chat, its flags and its transcript.

        With ``changed_after`` (a ``version``), first wait up to ``max_wait`` seconds for a
        newer version.
        """
        query = _without_none(changed_after=changed_after, timeout=max_wait)
        return await self._json("GET", f"/control/chats/{chat_id}/transcript", query=query)

    async def transcript(self, chat_id: int) -> list[JsonDict]:
        """Every message in the chat, both sides, deleted ones flagged."""
        messages: list[JsonDict] = (await self.chat_state(chat_id))["messages"]
        return messages

    async def wait_for_bot_messages(
        self, chat_id: int, *, after: int = 0, count: int = 1, max_wait: float = 5.0
    ) -> list[JsonDict]:
        """The bot's messages newer than ``after``, once it sent ``count`` of them."""
        query = {"after": after, "count": count, "timeout": max_wait}
        result = await self._json("GET", f"/control/chats/{chat_id}/wait", query=query)
        if result["timed_out"]:
            got = len(result["messages"])
            raise TimeoutError(f"the bot sent {got} of {count} messages within {max_wait} s")
        messages: list[JsonDict] = result["messages"]
        return messages

    async def wait_idle(self, *, quiet: float = 0.2, max_wait: float = 5.0) -> None:
        """Every update fetched by the bot, and no bot call for ``quiet`` seconds."""
        query = {"quiet": quiet, "timeout": max_wait}
        if not (await self._json("GET", "/control/idle", query=query))["idle"]:
            raise TimeoutError(f"the bot was not idle within {max_wait} s")

    async def now(self) -> int:
        return int((await self._json("GET", "/control/clock"))["now"])

    async def advance_clock(self, seconds: float) -> int:
        """Move the simulator's clock forward; returns the new now."""
        body = {"advance_seconds": seconds}
        return int((await self._json("POST", "/control/clock", body=body))["now"])

    async def commands(self) -> list[JsonDict]:
        """The bot's commands per scope and language, as set with ``setMyCommands``."""
        commands: list[JsonDict] = (await self._json("GET", "/control/commands"))["commands"]
        return commands

    async def file_content(self, file_id: str) -> bytes:
        async with self._http().get(f"{self.base_url}/control/files/{file_id}") as response:
            if response.status >= 400:
                raise SimulatorClientError(response.status, await _error_text(response))
            return await response.read()

    # -- plumbing -------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def _json(
        self,
        method: str,
        path: str,
        *,
        body: JsonDict | None = None,
        form: aiohttp.FormData | None = None,
        query: Mapping[str, object] | None = None,
    ) -> JsonDict:
        params = {key: str(value) for key, value in (query or {}).items()}
        async with self._http().request(
            method, f"{self.base_url}{path}", json=body, data=form, params=params
        ) as response:
            if response.status >= 400:
                raise SimulatorClientError(response.status, await _error_text(response))
            result: JsonDict = await response.json()
            return result


def _without_none(**values: object) -> JsonDict:
    return {key: value for key, value in values.items() if value is not None}


def _form(fields: JsonDict, data: bytes | None) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for key, value in fields.items():
        if isinstance(value, str):
            form.add_field(key, value)
        else:
            form.add_field(key, json.dumps(value))
    if data is not None:
        form.add_field(
            "file",
            data,
            filename=str(fields.get("file_name") or "file"),
            content_type=str(fields.get("mime_type") or "application/octet-stream"),
        )
    return form


async def _error_text(response: aiohttp.ClientResponse) -> str:
    try:
        body = await response.json()
    except (aiohttp.ContentTypeError, ValueError):
        return await response.text()
    return str(body.get("error", body)) if isinstance(body, dict) else str(body)

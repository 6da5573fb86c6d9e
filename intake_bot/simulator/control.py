"""The control face under ``/control/``: the test (or a chat page) plays the users.

JSON in, JSON out; errors are ``{"error": "..."}`` with 400, 404 or 409. Bytes come as
``data_base64`` in JSON or as a multipart part named ``file`` (the other fields as form
fields, objects JSON-encoded). The routes:

* ``POST /control/users`` ``{"first_name", "last_name"?, "username"?, "language_code"?}``
  -> ``{"user", "chat"}``; the private chat's id is the user's id. ``GET /control/users``
  -> ``{"users": [...]}``. ``POST /control/users/<id>/block`` ``{"blocked": true}``.
* ``POST /control/groups`` ``{"title", "member_ids"?}`` -> ``{"chat"}`` (a basic group).
* ``POST /control/users/<id>/messages`` ``{"kind", "chat_id"?, "reply_to_message_id"?,
  "forward_origin"?, ...kind fields}`` -> ``{"update_id", "message"}``. Kinds: ``text``
  (``text``), ``photo``, ``document``, ``voice``, ``audio``, ``video``, ``video_note``,
  ``animation``, ``sticker`` (file bytes; ``caption``, ``file_name``, ``mime_type``,
  ``width``, ``height``, ``duration``, ``length``, ``emoji``... as the kind has them),
  ``location`` (``latitude``, ``longitude``), ``contact`` (``phone_number``,
  ``first_name``), ``poll`` (``question``, ``options``), ``dice`` (``emoji``, ``value``).
  ``update_id`` is null when the bot cannot receive the message (it left the group).
* ``POST /control/users/<id>/albums`` ``{"items": [{"kind", "data_base64", ...}], "chat_id"?}``
  -> ``{"media_group_id", "updates": [{"update_id", "message"}, ...]}``.
* ``POST /control/users/<id>/callbacks`` ``{"message_id", "data" | "button_text",
  "forge"?, "chat_id"?}`` -> ``{"update_id", "callback_query"}``. Without ``forge`` the
  button must be on the (live) message; with it any ``data`` is sent, even for a deleted
  message (which then arrives as an inaccessible message, ``date`` 0).
* ``POST /control/users/<id>/edits`` ``{"message_id", "text" | "caption", "chat_id"?}``
  -> ``{"update_id", "edited_message"}``.
* ``GET /control/callbacks/<query id>`` -> whether and how the bot answered a press.
* ``GET /control/chats/<id>/transcript?changed_after=<version>&timeout=<s>`` -> ``{"chat",
  "version", "bot_is_member", "reply_keyboard", "last_action", "messages": [...]}``, every
  message, deleted ones included and flagged; with ``changed_after``, it first waits for
  a newer version (a chat page's long poll).
* ``GET /control/chats/<id>/wait?after=<message id>&count=<n>&timeout=<s>`` ->
  ``{"messages": [...], "timed_out"}``: the bot's messages newer than ``after``, as soon as
  there are ``count`` (default 1) of them.
* ``GET /control/idle?quiet=<s>&timeout=<s>`` -> ``{"idle"}``: every update fetched and
  no bot call for ``quiet`` seconds.
* ``GET /control/clock`` and ``POST /control/clock`` ``{"advance_seconds"}`` -> ``{"now"}``.
* ``GET /control/commands`` -> ``{"commands": [{"scope", "language_code", "commands"}]}``.
* ``GET /control/files/<file id>`` -> the file's bytes.

.. warning:: The control API has no authentication: anyone who reaches it can read every
   transcript and speak as any user. Bind it to 127.0.0.1 only.
"""

from __future__ import annotations

import copy
import secrets

from aiohttp import web

from .chats import Entry, JsonDict, SimChat, SimUser
from .entities import command_entities
from .errors import SimulatorError, invalid, not_found
from .incoming import ALBUM_KINDS, BUILDERS, forward_origin
from .markup import find_button
from .params import Params, Upload
from .state import SIMULATOR, CallbackRecord, Simulator

MAX_WAIT_SECONDS = 60.0
_ALBUM_SIZE = range(2, 11)
_CAPTIONED = frozenset({"photo", "document", "audio", "video", "animation", "voice"})


def routes() -> list[web.RouteDef]:
    return [
        web.post("/control/users", create_user),
        web.get("/control/users", list_users),
        web.post("/control/users/{user_id}/block", block_user),
        web.post("/control/groups", create_group),
        web.post("/control/users/{user_id}/messages", send_message),
        web.post("/control/users/{user_id}/albums", send_album),
        web.post("/control/users/{user_id}/callbacks", press_button),
        web.post("/control/users/{user_id}/edits", edit_message),
        web.get("/control/callbacks/{query_id}", get_callback),
        web.get("/control/chats/{chat_id}/transcript", get_transcript),
        web.get("/control/chats/{chat_id}/wait", wait_for_bot),
        web.get("/control/idle", wait_idle),
        web.get("/control/clock", get_clock),
        web.post("/control/clock", advance_clock),
        web.get("/control/commands", get_commands),
        web.get("/control/files/{file_id}", get_file_content),
    ]


# -- users and groups ---------------------------------------------------------------------


async def create_user(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    p = await Params.from_request(request)
    first_name = p.text("first_name")
    if not first_name:
        raise invalid("first_name is required")
    user = sim.add_user(
        first_name,
        last_name=p.text("last_name"),
        username=p.text("username"),
        language_code=p.text("language_code"),
    )
    return web.json_response({"user": user.to_api(), "chat": sim.chats[user.id].to_api()})


async def list_users(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    users = [{**user.to_api(), "blocked_bot": user.blocked_bot} for user in sim.users.values()]
    return web.json_response({"users": users})


async def block_user(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    user = _user(sim, request)
    p = await Params.from_request(request)
    user.blocked_bot = p.flag("blocked", default=True)
    return web.json_response({"user": user.to_api(), "blocked_bot": user.blocked_bot})


async def create_group(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    p = await Params.from_request(request)
    title = p.text("title")
    member_ids = p.json("member_ids") or []
    if not title or not isinstance(member_ids, list):
        raise invalid("a group needs a title; member_ids is a list of user ids")
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in member_ids):
        raise invalid("member_ids is a list of user ids")
    chat = sim.add_group(title, member_ids)
    return web.json_response({"chat": chat.to_api()})


# -- what users do ------------------------------------------------------------------------


async def send_message(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    user = _user(sim, request)
    p = await Params.from_request(request)
    chat = _chat_of(sim, user, p)
    _check_can_send(user)
    kind = p.text("kind") or "text"
    build = BUILDERS.get(kind)
    if build is None:
        raise invalid(f"unknown kind; one of {', '.join(sorted(BUILDERS))}")
    content = build(sim, p, _upload(p))
    forwarded = p.json("forward_origin")
    if forwarded is not None:
        content["forward_origin"] = forward_origin(sim, forwarded)
    entry, update_id = sim.user_sends(user, chat, kind, content, reply_to=_reply_to(chat, p))
    return web.json_response({"update_id": update_id, "message": copy.deepcopy(entry.message)})


async def send_album(request: web.Request) -> web.Response:
    """Several messages sharing one ``media_group_id``, each its own update, as in Telegram."""
    sim = request.app[SIMULATOR]
    user = _user(sim, request)
    p = await Params.from_request(request)
    chat = _chat_of(sim, user, p)
    items = p.json("items")
    if not isinstance(items, list) or len(items) not in _ALBUM_SIZE:
        raise invalid("an album has 2 to 10 items")
    if not all(isinstance(item, dict) for item in items):
        raise invalid("album items are objects with kind and data_base64")
    kinds = {item.get("kind", "photo") for item in items}
    if not kinds <= ALBUM_KINDS or (len(kinds) > 1 and not kinds <= {"photo", "video"}):
        raise invalid("an album is photos and videos, or documents only, or audio only")
    _check_can_send(user)
    built = []
    for item in items:
        item_params = Params(item)
        kind = item_params.text("kind") or "photo"
        built.append((kind, BUILDERS[kind](sim, item_params, _upload(item_params))))
    group_id = str(10**16 + secrets.randbelow(9 * 10**16))
    results = []
    for kind, content in built:
        entry, update_id = sim.user_sends(user, chat, kind, {**content, "media_group_id": group_id})
        results.append({"update_id": update_id, "message": copy.deepcopy(entry.message)})
    return web.json_response({"media_group_id": group_id, "updates": results})


async def press_button(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    user = _user(sim, request)
    p = await Params.from_request(request)
    chat = _chat_of(sim, user, p)
    message_id = p.integer("message_id")
    entry = chat.entries.get(message_id) if message_id is not None else None
    if entry is None:
        raise not_found("no such message in that chat")
    data = p.text("data")
    if p.flag("forge"):
        if data is None:
            raise invalid("a forged press needs data")
    else:
        if entry.deleted or entry.direction != "out":
            raise SimulatorError(409, "only live bot messages have buttons to press")
        button = find_button(
            entry.message.get("reply_markup"), data=data, text=p.text("button_text")
        )
        if button is None:
            raise invalid("no callback button with that data or text on the message")
        data = button["callback_data"]
    _check_can_send(user)
    query_id = sim.new_callback_id()
    payload: JsonDict = {
        "id": query_id,
        "from": user.to_api(),
        "message": _as_seen(chat, entry),
        "chat_instance": chat.chat_instance,
        "data": data,
    }
    sim.callbacks[query_id] = CallbackRecord(
        id=query_id, chat_id=chat.id, message_id=entry.message_id, from_id=user.id, data=data
    )
    update_id = sim.deliver(chat, "callback_query", payload)
    return web.json_response({"update_id": update_id, "callback_query": payload})


async def edit_message(request: web.Request) -> web.Response:
    """The user edits an earlier message: an ``edited_message`` update."""
    sim = request.app[SIMULATOR]
    user = _user(sim, request)
    p = await Params.from_request(request)
    chat = _chat_of(sim, user, p)
    message_id = p.integer("message_id")
    entry = chat.live_entry(message_id) if message_id is not None else None
    if entry is None or entry.direction != "in" or entry.message["from"]["id"] != user.id:
        raise not_found("no live message of this user with that id")
    if entry.kind == "text":
        field, entities_field = "text", "entities"
    elif entry.kind in _CAPTIONED:
        field, entities_field = "caption", "caption_entities"
    else:
        raise invalid("only text and the caption of media can be edited")
    value = p.text(field)
    if not value or not value.strip():
        raise invalid(f"the edit needs a new {field}")
    _check_can_send(user)
    changes: JsonDict = {field: value}
    entities = command_entities(value)
    if entities:
        changes[entities_field] = entities
    sim.edit(chat, entry, changes, () if entities else (entities_field,))
    update_id = sim.deliver(chat, "edited_message", entry.message)
    return web.json_response(
        {"update_id": update_id, "edited_message": copy.deepcopy(entry.message)}
    )


# -- what tests observe -------------------------------------------------------------------


async def get_callback(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    record = sim.callbacks.get(request.match_info["query_id"])
    if record is None:
        raise not_found("no such callback query")
    return web.json_response(record.to_control())


async def get_transcript(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    chat = sim.chat(_path_int(request, "chat_id"))
    query = Params(request.query)
    version = query.integer("changed_after")
    if version is not None:
        await sim.wait_for_change(chat, version=version, max_wait=_timeout(query))
    return web.json_response(chat.to_control())


async def wait_for_bot(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    chat = sim.chat(_path_int(request, "chat_id"))
    query = Params(request.query)
    count = query.integer("count") or 1
    found = await sim.wait_for_bot_messages(
        chat, after=query.integer("after") or 0, count=count, max_wait=_timeout(query)
    )
    body = {"messages": [entry.to_control() for entry in found], "timed_out": len(found) < count}
    return web.json_response(body)


async def wait_idle(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    query = Params(request.query)
    quiet = query.number("quiet")
    idle = await sim.wait_idle(quiet=0.2 if quiet is None else quiet, max_wait=_timeout(query))
    return web.json_response({"idle": idle})


async def get_clock(request: web.Request) -> web.Response:
    return web.json_response({"now": request.app[SIMULATOR].clock.now()})


async def advance_clock(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    seconds = (await Params.from_request(request)).number("advance_seconds")
    if seconds is None or seconds < 0:
        raise invalid("advance_seconds is a number of seconds, not negative")
    now = sim.clock.advance(seconds)
    sim.changed()
    return web.json_response({"now": now})


async def get_commands(request: web.Request) -> web.Response:
    return web.json_response({"commands": request.app[SIMULATOR].commands_to_control()})


async def get_file_content(request: web.Request) -> web.Response:
    stored = request.app[SIMULATOR].files.get(request.match_info["file_id"])
    if stored is None:
        raise not_found("no such file")
    return web.Response(body=stored.data, content_type="application/octet-stream")


# -- helpers ------------------------------------------------------------------------------


def _path_int(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise not_found(f"{name} is a number") from None


def _user(sim: Simulator, request: web.Request) -> SimUser:
    return sim.user(_path_int(request, "user_id"))


def _chat_of(sim: Simulator, user: SimUser, p: Params) -> SimChat:
    """The chat a user writes in: their private chat unless ``chat_id`` names a group."""
    chat_id = p.integer("chat_id")
    if chat_id is None or chat_id == user.id:
        return sim.chats[user.id]
    chat = sim.chat(chat_id)
    if chat.type != "group":
        raise invalid("a user writes in their own private chat or in a group")
    return chat


def _check_can_send(user: SimUser) -> None:
    if user.blocked_bot:
        raise SimulatorError(409, "the user has blocked the bot; unblock first")


def _upload(p: Params) -> Upload | None:
    upload = p.upload("file")
    if upload is not None:
        return upload
    data = p.base64("data_base64")
    return None if data is None else Upload(data, p.text("file_name"), p.text("mime_type"))


def _reply_to(chat: SimChat, p: Params) -> Entry | None:
    message_id = p.integer("reply_to_message_id")
    if message_id is None:
        return None
    entry = chat.live_entry(message_id)
    if entry is None:
        raise not_found("the message to reply to is not in the chat (or was deleted)")
    return entry


def _as_seen(chat: SimChat, entry: Entry) -> JsonDict:
    """The message in a callback query; a deleted one is "inaccessible" (date 0)."""
    if entry.deleted:
        return {"chat": chat.to_api(), "message_id": entry.message_id, "date": 0}
    return copy.deepcopy(entry.message)


def _timeout(query: Params) -> float:
    timeout = query.number("timeout")
    return min(max(5.0 if timeout is None else timeout, 0.0), MAX_WAIT_SECONDS)

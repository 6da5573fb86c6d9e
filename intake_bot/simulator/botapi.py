"""The Bot API face: ``/bot<token>/<method>`` and ``/file/bot<token>/<file_path>``.

Methods answer with the objects and the errors Telegram gives, because the bot under
test must meet the same refusals in tests that it meets in production: a wrong token is
401, an unknown method 404, an unknown chat ``400 chat not found``, a message older than
48 hours ``400 message can't be deleted for everyone``, a file over the download limit
``400 file is too big``, a user who blocked the bot ``403``. Method names are
case-insensitive, as in Telegram, and parameters may come as query, JSON, form or
multipart (see :mod:`.params`).
"""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from .chats import FILE_FIELDS, Entry, JsonDict, SimChat
from .entities import utf16_len
from .errors import SimulatorError, bad_request, forbidden
from .markup import is_inline, parse_reply_markup
from .media import document as document_content
from .media import photo as photo_content
from .params import Params, Upload
from .state import DELETE_WINDOW_SECONDS, SIMULATOR, Simulator

Method = Callable[[Simulator, Params], Awaitable[object]]

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_DELETE_BATCH = 100
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"


def routes() -> list[web.RouteDef]:
    return [
        web.get("/bot{token}/{method}", handle_method),
        web.post("/bot{token}/{method}", handle_method),
        web.get("/file/bot{token}/{file_path:.+}", handle_download),
    ]


def error_response(status: int, description: str) -> web.Response:
    body = {"ok": False, "error_code": status, "description": description}
    return web.json_response(body, status=status)


async def handle_method(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIMULATOR]
    if not _token_matches(sim, request.match_info["token"]):
        return error_response(401, "Unauthorized")
    name = request.match_info["method"].lower()
    method = METHODS.get(name)
    if method is None:
        return error_response(404, "Not Found: method not found")
    params = await Params.from_request(request)
    long_poll = name == "getupdates"
    if not long_poll:
        sim.touch()
    try:
        result = await method(sim, params)
    finally:
        if not long_poll:
            sim.touch()
    return web.json_response({"ok": True, "result": result})


async def handle_download(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIMULATOR]
    if not _token_matches(sim, request.match_info["token"]):
        return error_response(401, "Unauthorized")
    stored = sim.files.by_path(request.match_info["file_path"])
    if stored is None or stored.size > sim.download_limit:
        return error_response(404, "Not Found")
    return web.Response(body=stored.data, content_type="application/octet-stream")


def _token_matches(sim: Simulator, token: str) -> bool:
    return secrets.compare_digest(token.encode(), sim.token.encode())


# -- lookups shared by the methods --------------------------------------------------------


def _chat(sim: Simulator, p: Params) -> SimChat:
    raw = p.raw("chat_id")
    if raw is None or raw == "":
        raise bad_request("chat_id is empty")
    try:
        chat_id = p.integer("chat_id")
    except SimulatorError:
        raise bad_request("chat not found") from None  # "@username" names only channels
    chat = sim.chats.get(chat_id) if chat_id is not None else None
    if chat is None:
        raise bad_request("chat not found")
    return chat


def _writable_chat(sim: Simulator, p: Params) -> SimChat:
    """A chat the bot may post in: the user has not blocked it, it is still in the group."""
    chat = _chat(sim, p)
    if chat.user is not None and chat.user.blocked_bot:
        raise forbidden("bot was blocked by the user")
    if chat.type == "group" and not chat.bot_is_member:
        raise forbidden("bot is not a member of the group chat")
    return chat


def _message_id(p: Params) -> int:
    message_id = p.integer("message_id")
    if message_id is None:
        raise bad_request("message identifier is not specified")
    return message_id


def _reply_target(chat: SimChat, p: Params) -> Entry | None:
    """The message a new one replies to (``reply_parameters`` or ``reply_to_message_id``)."""
    parameters = p.json("reply_parameters")
    if parameters is None and p.has("reply_to_message_id"):
        parameters = {"message_id": p.integer("reply_to_message_id")}
    if parameters is None:
        return None
    if not isinstance(parameters, dict):
        raise bad_request("can't parse reply parameters JSON object")
    reply = Params(parameters)
    target_chat = reply.integer("chat_id")
    entry = chat.live_entry(_message_id(reply))
    if entry is None or (target_chat is not None and target_chat != chat.id):
        if reply.flag("allow_sending_without_reply"):
            return None
        raise bad_request("message to be replied not found")
    return entry


def _check_deletable(sim: Simulator, chat: SimChat, entry: Entry) -> None:
    if sim.clock.now() - entry.date >= DELETE_WINDOW_SECONDS:
        raise bad_request("message can't be deleted for everyone")
    if chat.type == "group" and entry.direction == "in":
        raise bad_request("message can't be deleted")  # the bot is no group admin here


def _markup(p: Params) -> JsonDict | None:
    return parse_reply_markup(p.json("reply_markup"))


def _inline_markup(p: Params) -> JsonDict | None:
    markup = _markup(p)
    if markup is not None and not is_inline(markup):
        raise bad_request("inline keyboard expected")
    return markup


def _entities(p: Params, name: str) -> list[object] | None:
    value = p.json(name)
    if value is not None and not isinstance(value, list):
        raise bad_request(f"can't parse {name} JSON object")
    return value or None


def _editable(sim: Simulator, p: Params) -> tuple[SimChat, Entry]:
    if p.has("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")  # inline mode is not simulated
    chat = _writable_chat(sim, p)
    entry = chat.live_entry(_message_id(p))
    if entry is None:
        raise bad_request("message to edit not found")
    if entry.direction != "out":
        raise bad_request("message can't be edited")
    return chat, entry


def _file_upload(p: Params, name: str) -> Upload | str:
    """An uploaded part, or a file id given as a string (``attach://`` resolved)."""
    upload = p.upload(name)
    value = p.text(name)
    if upload is None and value is not None and value.startswith("attach://"):
        upload = p.upload(value.removeprefix("attach://"))
    if upload is not None:
        return upload
    if not value:
        raise bad_request(f"there is no {name} in the request")
    return value


# -- methods ------------------------------------------------------------------------------


async def get_me(sim: Simulator, p: Params) -> object:
    return sim.get_me()


async def ok(sim: Simulator, p: Params) -> object:
    return True


async def delete_webhook(sim: Simulator, p: Params) -> object:
    if p.flag("drop_pending_updates"):
        sim.updates.drop_pending()
    return True


async def get_webhook_info(sim: Simulator, p: Params) -> object:
    return {
        "url": "",
        "has_custom_certificate": False,
        "pending_update_count": sim.updates.pending,
    }


async def get_updates(sim: Simulator, p: Params) -> object:
    limit = p.integer("limit")
    allowed = p.json("allowed_updates")
    if allowed is not None and not (
        isinstance(allowed, list) and all(isinstance(item, str) for item in allowed)
    ):
        raise bad_request("can't parse allowed_updates JSON array")
    updates = await sim.updates.get(
        offset=p.integer("offset"),
        limit=min(max(limit or 100, 1), 100),
        poll_seconds=p.number("timeout") or 0.0,
        allowed_updates=allowed,
    )
    if updates:
        sim.touch()
    return updates


async def send_message(sim: Simulator, p: Params) -> object:
    chat = _writable_chat(sim, p)
    text = p.text("text") or ""
    if not text.strip():
        raise bad_request("message text is empty")
    if utf16_len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    content: JsonDict = {"text": text}
    if entities := _entities(p, "entities"):
        content["entities"] = entities
    entry = sim.bot_sends(
        chat,
        "text",
        content,
        markup=_markup(p),
        protect_content=p.flag("protect_content"),
        parse_mode=p.text("parse_mode"),
        reply_to=_reply_target(chat, p),
    )
    return copy.deepcopy(entry.message)


async def _send_file(sim: Simulator, p: Params, kind: str) -> object:
    chat = _writable_chat(sim, p)
    if utf16_len(p.text("caption") or "") > MAX_CAPTION:
        raise bad_request("message caption is too long")
    source = _file_upload(p, kind)
    if isinstance(source, str):
        stored = sim.files.get(source)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")  # no network here
        source = Upload(stored.data, f"file.{stored.extension}")
    build = photo_content if kind == "photo" else document_content
    content = build(sim, Params({"caption": p.text("caption")}), source)
    entry = sim.bot_sends(
        chat,
        kind,
        content,
        markup=_markup(p),
        protect_content=p.flag("protect_content"),
        parse_mode=p.text("parse_mode"),
        reply_to=_reply_target(chat, p),
    )
    return copy.deepcopy(entry.message)


async def send_photo(sim: Simulator, p: Params) -> object:
    return await _send_file(sim, p, "photo")


async def send_document(sim: Simulator, p: Params) -> object:
    return await _send_file(sim, p, "document")


async def edit_message_text(sim: Simulator, p: Params) -> object:
    chat, entry = _editable(sim, p)
    if "text" not in entry.message:
        raise bad_request("there is no text in the message to edit")
    text = p.text("text") or ""
    if not text.strip():
        raise bad_request("message text is empty")
    if utf16_len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    return _apply_edit(
        sim,
        chat=chat,
        entry=entry,
        p=p,
        field="text",
        value=text,
        entities=_entities(p, "entities"),
        entities_field="entities",
    )


async def edit_message_caption(sim: Simulator, p: Params) -> object:
    chat, entry = _editable(sim, p)
    if not any(name in entry.message for name in FILE_FIELDS):
        raise bad_request("there is no caption in the message to edit")
    text = p.text("caption") or ""
    if utf16_len(text) > MAX_CAPTION:
        raise bad_request("message caption is too long")
    entities = _entities(p, "caption_entities")
    return _apply_edit(
        sim,
        chat=chat,
        entry=entry,
        p=p,
        field="caption",
        value=text or None,
        entities=entities,
        entities_field="caption_entities",
    )


def _apply_edit(
    sim: Simulator,
    *,
    chat: SimChat,
    entry: Entry,
    p: Params,
    field: str,
    value: str | None,
    entities: list[object] | None,
    entities_field: str,
) -> object:
    """Telegram drops an inline keyboard that an edit does not repeat, and refuses no-ops."""
    markup = _inline_markup(p)
    before = (entry.message.get(field), entry.message.get(entities_field))
    if before == (value, entities) and entry.message.get("reply_markup") == markup:
        raise bad_request(_NOT_MODIFIED)
    changes: JsonDict = {}
    removed: list[str] = []
    for name, new in ((field, value), (entities_field, entities), ("reply_markup", markup)):
        if new is None:
            removed.append(name)
        else:
            changes[name] = new
    entry.markup = markup
    entry.parse_mode = p.text("parse_mode")
    sim.edit(chat, entry, changes, tuple(removed))
    return copy.deepcopy(entry.message)


async def edit_message_reply_markup(sim: Simulator, p: Params) -> object:
    chat, entry = _editable(sim, p)
    markup = _inline_markup(p)
    if entry.message.get("reply_markup") == markup:
        raise bad_request(_NOT_MODIFIED)
    entry.markup = markup
    if markup is None:
        sim.edit(chat, entry, {}, ("reply_markup",))
    else:
        sim.edit(chat, entry, {"reply_markup": markup}, ())
    return copy.deepcopy(entry.message)


async def delete_message(sim: Simulator, p: Params) -> object:
    chat = _chat(sim, p)
    entry = chat.live_entry(_message_id(p))
    if entry is None:
        raise bad_request("message to delete not found")
    _check_deletable(sim, chat, entry)
    sim.delete(chat, entry)
    return True


async def delete_messages(sim: Simulator, p: Params) -> object:
    """Deletes what may be deleted and skips the rest, answering true, as Telegram does."""
    chat = _chat(sim, p)
    ids = p.json("message_ids")
    if not isinstance(ids, list) or not ids:
        raise bad_request("message identifiers are not specified")
    if len(ids) > MAX_DELETE_BATCH:
        raise bad_request("too many message identifiers specified")
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise bad_request("can't parse message identifiers")
    for message_id in ids:
        entry = chat.live_entry(message_id)
        if entry is None:
            continue
        try:
            _check_deletable(sim, chat, entry)
        except SimulatorError:
            continue
        sim.delete(chat, entry)
    return True


async def answer_callback_query(sim: Simulator, p: Params) -> object:
    record = sim.callbacks.get(p.text("callback_query_id") or "")
    if record is None or record.answered:
        raise bad_request(_QUERY_INVALID)
    record.answered = True
    record.text = p.text("text")
    record.show_alert = p.flag("show_alert")
    record.url = p.text("url")
    sim.changed()
    return True


async def send_chat_action(sim: Simulator, p: Params) -> object:
    chat = _writable_chat(sim, p)
    action = p.text("action")
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    chat.last_action = action
    sim.changed(chat)
    return True


async def leave_chat(sim: Simulator, p: Params) -> object:
    chat = _chat(sim, p)
    if chat.type == "private":
        raise bad_request("chat member status can't be changed in private chats")
    if not chat.bot_is_member:
        raise forbidden("bot is not a member of the group chat")
    sim.append(chat, sim.bot, "out", "left_chat_member", {"left_chat_member": sim.bot.to_api()})
    chat.bot_is_member = False
    return True


async def get_file(sim: Simulator, p: Params) -> object:
    stored = sim.files.get(p.text("file_id") or "")
    if stored is None:
        raise bad_request("invalid file_id")
    if stored.size > sim.download_limit:
        raise bad_request("file is too big")
    return {**stored.ids(), "file_path": sim.files.reveal_path(stored)}


async def set_my_commands(sim: Simulator, p: Params) -> object:
    commands = p.json("commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("can't parse commands JSON array")
    for command in commands:
        if not isinstance(command, dict) or not _COMMAND_NAME.fullmatch(
            str(command.get("command", ""))
        ):
            raise bad_request("BOT_COMMAND_INVALID")
        description = command.get("description")
        if not isinstance(description, str) or not 1 <= len(description) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    key = _command_key(p)
    if commands:
        sim.commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
    else:
        sim.commands.pop(key, None)
    sim.changed()
    return True


async def get_my_commands(sim: Simulator, p: Params) -> object:
    return copy.deepcopy(sim.commands.get(_command_key(p), []))


async def delete_my_commands(sim: Simulator, p: Params) -> object:
    sim.commands.pop(_command_key(p), None)
    sim.changed()
    return True


def _command_key(p: Params) -> tuple[str, str]:
    scope = p.json("scope")
    if scope is not None and not (isinstance(scope, dict) and isinstance(scope.get("type"), str)):
        raise bad_request("can't parse BotCommandScope JSON object")
    return Simulator.command_key(scope, p.text("language_code"))


METHODS: dict[str, Method] = {
    name.lower(): method
    for name, method in {
        "getMe": get_me,
        "logOut": ok,
        "close": ok,
        "deleteWebhook": delete_webhook,
        "getWebhookInfo": get_webhook_info,
        "getUpdates": get_updates,
        "sendMessage": send_message,
        "sendPhoto": send_photo,
        "sendDocument": send_document,
        "editMessageText": edit_message_text,
        "editMessageCaption": edit_message_caption,
        "editMessageReplyMarkup": edit_message_reply_markup,
        "deleteMessage": delete_message,
        "deleteMessages": delete_messages,
        "answerCallbackQuery": answer_callback_query,
        "sendChatAction": send_chat_action,
        "leaveChat": leave_chat,
        "getFile": get_file,
        "setMyCommands": set_my_commands,
        "getMyCommands": get_my_commands,
        "deleteMyCommands": delete_my_commands,
    }.items()
}
"""Every Bot API method the simulator answers, by lower-case name."""

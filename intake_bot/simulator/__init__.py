"""A Telegram Bot API server in aiohttp, so the real bot runs in tests with no network.

python-telegram-bot's ``Application`` is pointed at it with ``ApplicationBuilder()
.base_url(f"{url}/bot").base_file_url(f"{url}/file/bot")`` and talks HTTP to it exactly
as to ``api.telegram.org``: ``getMe``, ``deleteWebhook``, long-polled ``getUpdates``,
``sendMessage`` and the rest, with answers shaped so that PTB's strict parsers accept them
and errors worded so that PTB raises the same exceptions. A control API under
``/control/`` plays the users: it creates them, makes them send text, commands, files,
photos, albums, voice, stickers, locations, contacts, polls, dice, forwards and edits,
press buttons, block the bot, and it lets tests read each chat's transcript (deleted
messages included, flagged), wait for the bot's answers, wait for idleness and move the
clock past Telegram's 48-hour deletion window. :class:`SimulatorClient` wraps it.

Scope: one bot; private chats and basic groups; the methods in
:data:`.botapi.METHODS`; Telegram's limits and refusals that the intake bot depends on
(48-hour deletion, 100 ids per ``deleteMessages``, the 20 MB ``getFile`` limit, blocked
users, unknown chats, one poller at a time, 64-byte callback data, no-op edits).

What it deliberately does not do:

* No webhooks (``setWebhook`` is unknown), inline mode, payments, games, business
  connections, forum topics, channels as chats, reactions, or ``my_chat_member`` and
  ``chat_member`` updates.
* ``parse_mode`` is stored, not applied: text is kept and returned verbatim, and only the
  entities a bot passes explicitly come back. Users' text gets ``bot_command`` entities
  only (in UTF-16 offsets, as Telegram counts).
* No media processing: smaller photo sizes are placeholder bytes, not images; no
  thumbnails; files are served from memory and their links do not expire.
* No flood control (429), no persistence, no edit history, no user-side deletions.
* No authentication on the control API: bind it to 127.0.0.1 (the default).
* No logging: no access log (URLs carry the token) and never any message content.
"""

from .app import create_app
from .chats import Entry, SimChat, SimUser
from .client import AlbumItem, Pressed, Sent, SimulatorClient, SimulatorClientError
from .clock import Clock
from .errors import SimulatorError
from .runner import SimulatorServer
from .state import DEFAULT_DOWNLOAD_LIMIT, DELETE_WINDOW_SECONDS, SIMULATOR, Simulator

__all__ = [
    "DEFAULT_DOWNLOAD_LIMIT",
    "DELETE_WINDOW_SECONDS",
    "SIMULATOR",
    "AlbumItem",
    "Clock",
    "Entry",
    "Pressed",
    "Sent",
    "SimChat",
    "SimUser",
    "Simulator",
    "SimulatorClient",
    "SimulatorClientError",
    "SimulatorError",
    "SimulatorServer",
    "create_app",
]

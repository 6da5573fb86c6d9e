"""Running the bot: the python-telegram-bot Application around :class:`Conversation`.

Polling only (webhooks come later). ``INTAKE_TELEGRAM_API_URL`` points the bot at any Bot
API server, such as the simulator. No PTB persistence class is used (they store raw chat
and user ids); every bot message is sent with ``protect_content``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import structlog
from telegram import BotCommand, Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, Defaults, TypeHandler

from intake_bot.bootstrap import App
from intake_bot.config import KdfProfile, Settings
from intake_bot.ephemeral import BootSecrets, load_or_create, on_memory_fs
from intake_bot.questionnaire import archive
from intake_bot.questionnaire.engine import Engine
from intake_bot.questionnaire.loader import default_text, parse, read_file
from intake_bot.questionnaire.model import Questionnaire
from intake_bot.services import ServiceError, drafts
from intake_bot.services.drafts import DraftContext
from intake_bot.services.keyring import encryption_key, read_pin

from .conversation import Conversation, Limits
from .processor import PerReporterProcessor
from .strings import DEFAULT_LANGUAGE, LANGUAGES, Strings

log = structlog.get_logger("intake.bot")

REAL_API = "https://api.telegram.org"
SWEEP_EVERY_S = 600.0
"""How often open drafts are checked for 24 hours without activity."""
ARGON2_WORKERS = 2
"""Receipt derivations run at most this many at once (each takes ~256 MiB at MODERATE)."""
COMMANDS = ("start", "cancel", "language", "privacy", "status", "help")


def load_questionnaire(settings: Settings) -> Questionnaire:
    """The questionnaire to ask, archived by version for the staff interface."""
    text = read_file(settings.questionnaire) if settings.questionnaire else default_text()
    questionnaire = parse(text, source=str(settings.questionnaire or "default questionnaire"))
    archive.keep(settings.data_dir, text)
    return questionnaire


def limits_from(settings: Settings) -> Limits:
    mib = 2**20
    return Limits(
        file_bytes=settings.max_file_mb * mib,
        report_files=settings.max_report_files,
        report_bytes=settings.max_report_mb * mib,
        open_drafts=settings.max_open_drafts,
        free_disk_bytes=settings.min_free_disk_mb * mib,
        burst=float(settings.rate_burst),
        per_second=settings.rate_per_minute / 60.0,
    )


def build_application(settings: Settings, conversation: Conversation) -> Application:  # type: ignore[type-arg]
    if settings.telegram_token is None:
        raise ServiceError("INTAKE_TELEGRAM_TOKEN is not set")
    root = settings.telegram_api_url
    application = (
        ApplicationBuilder()
        .token(settings.telegram_token.reveal().decode())
        .base_url(f"{root}/bot")
        .base_file_url(f"{root}/file/bot")
        .defaults(Defaults(protect_content=True))
        .concurrent_updates(PerReporterProcessor())
        .build()
    )
    application.add_handler(TypeHandler(Update, conversation.handle))
    application.add_error_handler(_on_error)
    return application


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """PTB's last resort: type and frames only, never the update or the message."""
    log.error("handler error", exc_info=context.error)


async def register_commands(application: Application, strings: Strings) -> None:  # type: ignore[type-arg]
    for lang in LANGUAGES:
        commands = [BotCommand(name, strings(lang, f"command_{name}")) for name in COMMANDS]
        code = None if lang == DEFAULT_LANGUAGE else lang
        await application.bot.set_my_commands(commands, language_code=code)


class _Secrets:
    """The boot secrets, ratcheted when the day changes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.current: BootSecrets = load_or_create(settings.runtime_dir, _today())

    def get(self) -> BootSecrets:
        if self.current.day != _today():
            self.current = load_or_create(self.settings.runtime_dir, _today())
        return self.current


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


async def run_bot(app: App, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
    """Run the bot until ``stop`` is set; ``ready`` is set once it polls (after the start-up
    sweep). Fails closed before polling if the active org key does not verify against the
    pin."""
    settings = app.settings
    if settings.kdf_profile is KdfProfile.INSECURE_TEST and settings.telegram_api_url == REAL_API:
        raise ServiceError(
            "INTAKE_KDF_PROFILE=insecure-test is for the test suite: refusing to run the bot "
            "against real Telegram with it"
        )
    engine = Engine(load_questionnaire(settings))
    strings = Strings.load()
    pinned = read_pin(settings.signing_key_pin)
    async with app.sessions() as session:
        await encryption_key(session, pinned)
    swept = await asyncio.to_thread(app.blobs.sweep_temporary)
    log.info("starting", signing_key=pinned.fingerprint, stray_blob_files_removed=swept)
    if not on_memory_fs(settings.runtime_dir):
        log.warning("INTAKE_RUNTIME_DIR is not on tmpfs: the boot secret may outlive a reboot")
    boot = _Secrets(settings)
    pool = ThreadPoolExecutor(max_workers=ARGON2_WORKERS, thread_name_prefix="argon2")

    def context() -> DraftContext:
        return DraftContext(pinned, boot.get(), settings.kdf_profile.receipt, pool)

    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)) as http:
        conversation = Conversation(
            app=app,
            engine=engine,
            strings=strings,
            context=context,
            limits=limits_from(settings),
            http=http,
        )
        application = build_application(settings, conversation)
        async with application:
            await register_commands(application, strings)
            await _sweep(app, context, conversation, application)
            await application.start()
            if application.updater is None:
                raise ServiceError("the bot has no updater")
            await application.updater.start_polling(allowed_updates=Update.ALL_TYPES)
            log.info("bot running")
            if ready is not None:
                ready.set()
            sweeper = asyncio.create_task(_sweep_forever(app, context, conversation, application))
            try:
                await stop.wait()
            finally:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
                await application.updater.stop()
                await application.stop()
    pool.shutdown(wait=True)
    log.info("bot stopped")


async def _sweep(
    app: App,
    context: Callable[[], DraftContext],
    conversation: Conversation,
    application: Application,  # type: ignore[type-arg]
) -> None:
    async with app.sessions() as session, session.begin():
        closed = await drafts.sweep(session, context(), app.blobs, dt.datetime.now(dt.UTC))
    await conversation.wipe_closed(application.bot, closed)


async def _sweep_forever(
    app: App,
    context: Callable[[], DraftContext],
    conversation: Conversation,
    application: Application,  # type: ignore[type-arg]
) -> None:
    while True:
        await asyncio.sleep(SWEEP_EVERY_S)
        try:
            await _sweep(app, context, conversation, application)
            await conversation.expire_receipts(application.bot)
        except Exception:  # the sweeper must keep running; frames only
            log.exception("sweep failed")

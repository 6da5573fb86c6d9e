"""The conversation: every update from a reporter becomes one engine step, or a clear answer.

Order of work for each step, so that a crash never loses what the reporter was told was
saved: load the draft, apply the step, encrypt and commit, and only then send the next
question (and record its message id for the wipe in a second, small commit).

No update can crash the bot: unexpected errors are logged by type and frames only, the
reporter gets a short apology, and the saved state is untouched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from telegram import (
    Bot,
    CallbackQuery,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from intake_bot.bootstrap import App
from intake_bot.questionnaire.engine import REVIEW, AnswerError, Engine, State
from intake_bot.questionnaire.model import Question, QuestionType
from intake_bot.services import drafts
from intake_bot.services.drafts import DraftContext, OpenDraft
from intake_bot.services.reports import record_file, store_file_blob
from intake_bot.storage import reports as report_repo

from . import files
from .callbacks import Callback, encode, parse
from .ratelimit import RateLimiter
from .render import Renderer, language_keyboard
from .strings import DEFAULT_LANGUAGE, LANGUAGES, Strings

log = structlog.get_logger("intake.bot")

FLOOD_IDS = 1_000
"""Refused messages remembered per reporter for the wipe (beyond it they stay on the phone)."""
RECEIPT_KEPT_S = 46 * 3600.0
"""An unconfirmed receipt message is deleted after this long (before Telegram's 48 h)."""
STATUS_PER_HOUR = 5.0
"""Receipt checks per reporter per hour."""
LOOKUPS_AT_ONCE = 8
"""Receipt checks queued at once; beyond it the bot says it is busy (submissions, which
share the pool, must not wait long)."""
STATUS_WAIT_S = 300.0
"""How long after /status the next text is taken as a receipt code."""
MEMORY_ENTRIES = 100_000
"""Bound on in-memory per-reporter entries (cleared, not evicted: they are only hints)."""
DELETE_BATCH = 100
"""deleteMessages takes at most 100 ids."""

_ERROR_KEYS = {
    "wrong_kind": "err_stale_button",
    "required": "err_required",
    "choose_one": "err_choose_one",
    "not_an_option": "err_not_an_option",
    "empty": "err_empty",
    "too_long": "err_too_long",
    "too_many_parts": "err_too_many_parts",
    "date_format": "err_date_format",
    "date_invalid": "err_date_invalid",
    "date_future": "err_date_future",
}
_NOISE = ("sticker", "animation", "dice", "game")


@dataclass(frozen=True, slots=True)
class Limits:
    file_bytes: int
    report_files: int
    report_bytes: int
    open_drafts: int
    free_disk_bytes: int
    burst: float
    """Updates a reporter may send at once (an album of ten photos fits)."""
    per_second: float
    """Sustained updates per second per reporter."""


@dataclass(slots=True)
class Turn:
    """One update's work: who, in which language, and the draft if there is one."""

    bot: Bot
    chat_id: int
    handles: list[bytes]
    lang: str
    draft: OpenDraft | None = None
    incoming: list[int] = field(default_factory=list)
    awaiting_code: bool = False
    """The previous update was /status: a text now is a receipt code."""

    @property
    def handle(self) -> bytes:
        return self.handles[0]


class Conversation:
    """The bot's behaviour, independent of how updates are fetched."""

    def __init__(
        self,
        *,
        app: App,
        engine: Engine,
        strings: Strings,
        context: Callable[[], DraftContext],
        limits: Limits,
        http: httpx.AsyncClient,
    ) -> None:
        self.app = app
        self.engine = engine
        self.strings = strings
        self.context = context
        self.limits = limits
        self.http = http
        self.render = Renderer(engine, strings)
        self.rate = RateLimiter(limits.burst, limits.per_second)
        # Before a draft exists (between /start and the language choice): in memory only.
        self._early: dict[bytes, list[int]] = {}
        # The language of each reporter's last turn, to answer a flood without a lookup.
        self._langs: dict[bytes, str] = {}
        # Reporters who sent /status and whose next message is a receipt code: since when.
        self._awaiting_code: dict[bytes, float] = {}
        # Message ids of updates refused as a flood, wiped with the rest later.
        self._flood: dict[bytes, list[int]] = {}
        # Receipts shown and not yet confirmed as written down (memory only: after a
        # restart they stay until the reporter presses the button).
        self._receipts: list[tuple[int, int, float]] = []
        # Receipt checks cost an Argon2id derivation each: few per reporter, few at once.
        self._status_rate = RateLimiter(STATUS_PER_HOUR, STATUS_PER_HOUR / 3600.0)
        self._lookups = 0

    # --- entry point -----------------------------------------------------------------

    async def handle(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The one handler for every update."""
        if not isinstance(update, Update):
            return
        chat = update.effective_chat
        user = update.effective_user
        if chat is None or user is None:
            return
        if chat.type != ChatType.PRIVATE:
            await self._leave_group(context.bot, chat, user.language_code, update)
            return
        ctx = self.context()
        handles = ctx.secrets.handles(user.id)
        lang = self._langs.get(handles[0]) or self.strings.language_hint(user.language_code)
        turn = Turn(context.bot, chat.id, handles, lang)
        if not self.rate.allow(turn.handle):
            # Nothing is stored for a refused update, but its message (and the notice) is
            # remembered in memory, to be wiped with the conversation at the next turn.
            flood = self._flood.setdefault(turn.handle, [])
            if update.message is not None and len(flood) < FLOOD_IDS:
                flood.append(update.message.message_id)
            if self.rate.should_tell(turn.handle):
                sent = await self._send(turn, self.strings(turn.lang, "err_slow_down"))
                if sent is not None and len(flood) < FLOOD_IDS:
                    flood.append(sent)
            return
        try:
            await self._dispatch(turn, ctx, update)
            if len(self._langs) > MEMORY_ENTRIES:
                self._langs.clear()
            self._langs[turn.handle] = turn.lang
        except Exception:  # the bot must survive any update; frames only, no messages
            log.exception("update failed")
            sent = await self._send(turn, self.strings(turn.lang, "err_internal"))
            with contextlib.suppress(Exception):  # the apology must be wiped like the rest
                await self._remember(turn, ctx, [sent] if sent else [])

    async def _dispatch(self, turn: Turn, ctx: DraftContext, update: Update) -> None:
        turn.incoming.extend(self._flood.pop(turn.handle, []))
        since = self._awaiting_code.pop(turn.handle, None)
        turn.awaiting_code = since is not None and time.monotonic() - since < STATUS_WAIT_S
        # A transaction: loading may move the draft to today's handle, which must stick.
        async with self.app.sessions() as session, session.begin():
            turn.draft = await drafts.load(session, ctx, turn.handles)
        if turn.draft is not None:
            turn.lang = turn.draft.language
            if turn.draft.engine:
                state = self.engine.recover(State.from_json(turn.draft.engine))
                turn.draft.engine = state.to_json()
        if update.callback_query is not None:
            await self._callback(turn, ctx, update.callback_query)
        elif update.edited_message is not None:
            await self._reply(turn, ctx, "err_edited")
        elif update.message is not None:
            turn.incoming.append(update.message.message_id)
            await self._message(turn, ctx, update.message)

    # --- sending ---------------------------------------------------------------------

    async def _send(
        self, turn: Turn, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> int | None:
        try:
            sent = await turn.bot.send_message(turn.chat_id, text, reply_markup=markup)
        except TelegramError as exc:
            log.warning("send failed", error_type=type(exc).__name__)
            return None
        return sent.message_id

    async def _reply(self, turn: Turn, ctx: DraftContext, key: str, **params: Any) -> None:
        """Answer with a message that is wiped with the conversation."""
        sent = await self._send(turn, self.strings(turn.lang, key, **params))
        await self._remember(turn, ctx, [sent] if sent else [])

    async def _remember(self, turn: Turn, ctx: DraftContext, ids: list[int]) -> None:
        """Add message ids (incoming and sent) to the draft's wipe list and persist it."""
        new = [*turn.incoming, *ids]
        turn.incoming = []
        if not new:
            return
        if turn.draft is None:
            if len(self._early) > MEMORY_ENTRIES:
                self._early.clear()  # only wipe hints for chats that never started a draft
            self._early.setdefault(turn.handle, []).extend(new[:FLOOD_IDS])
            return
        turn.draft.wipe.extend(new)
        async with self.app.sessions() as session, session.begin():
            await drafts.save_box(session, ctx, turn.draft)

    async def _show_step(
        self, turn: Turn, ctx: DraftContext, before: list[str] | None = None
    ) -> None:
        """Send the current question (or the summary), after ``before`` texts."""
        draft = turn.draft
        if draft is None:
            return
        ids: list[int | None] = [await self._send(turn, text) for text in before or []]
        state = State.from_json(draft.engine)
        question = self.engine.current(state)
        if question is None:
            pages = self.render.summary(self.engine.effective(draft.answers), turn.lang)
            for page in pages[:-1]:
                ids.append(await self._send(turn, page))
            ids.append(await self._send(turn, pages[-1], self.render.review_keyboard(turn.lang)))
        else:
            text, markup = self.render.question(question, turn.lang, state.pending)
            ids.append(await self._send(turn, text, markup))
        await self._remember(turn, ctx, [i for i in ids if i is not None])

    # --- state changes ---------------------------------------------------------------

    async def _commit(
        self, turn: Turn, ctx: DraftContext, state: State, changed: list[str]
    ) -> None:
        draft = turn.draft
        if draft is None:
            return
        draft.engine = state.to_json()
        answers = dict(state.answers)
        draft.answers = answers
        draft.urgent = draft.urgent or self.engine.is_urgent(answers)
        draft.wipe.extend(turn.incoming)
        turn.incoming = []
        async with self.app.sessions() as session, session.begin():
            await drafts.save(session, ctx, draft, changed)

    async def _step(
        self,
        turn: Turn,
        ctx: DraftContext,
        apply: Callable[[State], State],
        *,
        acknowledge: str | None = None,
    ) -> None:
        """Apply one engine operation: commit, then show what comes next (or, for a part
        of a longer answer, ``acknowledge`` it with the question's buttons)."""
        draft = turn.draft
        if draft is None:
            await self._reply(turn, ctx, "err_start_first")
            return
        before = State.from_json(draft.engine)
        try:
            after = apply(before)
        except AnswerError as exc:
            key = _ERROR_KEYS.get(exc.code, "err_not_understood")
            await self._reply(turn, ctx, key, **exc.params)
            return
        changed = [
            qid for qid, value in after.answers.items() if before.answers.get(qid, ...) != value
        ]
        await self._commit(turn, ctx, after, changed)
        question = self.engine.current(after)
        if acknowledge is not None and question is not None:
            await self._acknowledge(turn, ctx, acknowledge, question, after)
        else:
            await self._show_step(turn, ctx)

    async def _acknowledge(
        self, turn: Turn, ctx: DraftContext, key: str, question: Question, state: State
    ) -> None:
        """Confirm a part of a longer answer, with the question's buttons (Done)."""
        markup = self.render.keyboard(question, turn.lang, state.pending)
        text = self.strings(turn.lang, key, count=len(state.pending))
        sent = await self._send(turn, text, markup)
        await self._remember(turn, ctx, [sent] if sent else [])

    # --- messages --------------------------------------------------------------------

    async def _message(self, turn: Turn, ctx: DraftContext, message: Message) -> None:
        text = message.text or ""
        if _is_command(message):
            await self._command(turn, ctx, text.split()[0].split("@")[0].lower())
            return
        if turn.awaiting_code and message.text:
            await self._status(turn, ctx, message)
            return
        if await self._refused(turn, ctx, message):
            return
        if turn.draft is None:
            await self._reply(turn, ctx, "err_start_first")
            return
        await self._answer(turn, ctx, message, turn.draft)

    async def _answer(
        self, turn: Turn, ctx: DraftContext, message: Message, draft: OpenDraft
    ) -> None:
        """A message meant as (part of) an answer to the current question."""
        text = message.text or ""
        state = State.from_json(draft.engine)
        question = self.engine.current(state)
        incoming = files.attachment(message)
        origin = _forward_origin(message, lambda uid: ctx.secrets.handles(uid)[0] == turn.handle)
        if question is None:
            await self._reply(turn, ctx, "err_use_buttons")
        elif incoming is not None:
            await self._file(
                turn, ctx, message=message, incoming=incoming, origin=origin, qtype=question.type
            )
        elif not text and not message.caption:
            await self._reply(turn, ctx, "err_not_understood")
        elif question.type is QuestionType.TEXT:
            part: dict[str, Any] = {"text": text or message.caption or ""}
            if origin:
                part["forward"] = origin
            await self._step(
                turn, ctx, lambda s: self.engine.add_part(s, part), acknowledge="received_part"
            )
        elif question.type is QuestionType.DATE:
            today = dt.datetime.now(dt.UTC).date()
            await self._step(turn, ctx, lambda s: self.engine.enter_date(s, text, today))
        elif question.type is QuestionType.FILES and origin:
            forward = {"forward": {"origin": origin, "text": text or message.caption or ""}}
            await self._step(
                turn, ctx, lambda s: self.engine.add_part(s, forward), acknowledge="received_file"
            )
        elif question.type is QuestionType.FILES:
            await self._reply(turn, ctx, "err_file_expected")
        else:
            await self._reply(turn, ctx, "err_use_buttons")

    async def _refused(self, turn: Turn, ctx: DraftContext, message: Message) -> bool:
        """Answer input that is never an answer; True if the message was one."""
        if message.contact is not None or message.location is not None or message.venue is not None:
            # A contact carries a phone number, a location the reporter's whereabouts:
            # neither is stored, and the message is deleted from the chat at once.
            await self._delete(turn, [message.message_id])
            turn.incoming.remove(message.message_id)
            await self._reply(turn, ctx, "err_contact" if message.contact else "err_location")
            return True
        if any(getattr(message, kind) is not None for kind in _NOISE):
            await self._reply(turn, ctx, "err_sticker")
            return True
        if message.poll is not None:
            await self._reply(turn, ctx, "err_poll")
            return True
        return False

    async def _command(self, turn: Turn, ctx: DraftContext, command: str) -> None:
        if command == "/start":
            if turn.draft is not None:
                await self._show_step(turn, ctx, [self.strings(turn.lang, "resumed")])
            else:
                sent = await self._send(
                    turn, self.strings(turn.lang, "language_prompt"), language_keyboard()
                )
                await self._remember(turn, ctx, [sent] if sent else [])
        elif command == "/language":
            sent = await self._send(
                turn, self.strings(turn.lang, "language_prompt"), language_keyboard()
            )
            await self._remember(turn, ctx, [sent] if sent else [])
        elif command == "/cancel":
            if turn.draft is None:
                await self._reply(turn, ctx, "cancel_nothing")
                return
            markup = InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(
                            self.strings(turn.lang, "button_cancel_confirm"),
                            callback_data=encode("C", value="y"),
                        )
                    ],
                    [
                        InlineKeyboardButton(
                            self.strings(turn.lang, "button_cancel_keep"),
                            callback_data=encode("C", value="n"),
                        )
                    ],
                ]
            )
            sent = await self._send(turn, self.strings(turn.lang, "cancel_confirm"), markup)
            await self._remember(turn, ctx, [sent] if sent else [])
        elif command == "/privacy":
            await self._reply(turn, ctx, "privacy")
        elif command == "/status":
            if not self._status_rate.allow(turn.handle):
                await self._reply(turn, ctx, "err_slow_down")
                return
            if len(self._awaiting_code) > MEMORY_ENTRIES:
                self._awaiting_code.clear()
            self._awaiting_code[turn.handle] = time.monotonic()
            await self._reply(turn, ctx, "status_prompt")
        else:
            await self._reply(turn, ctx, "help")

    async def _status(self, turn: Turn, ctx: DraftContext, message: Message) -> None:
        """Check a receipt code. The message holding the code is deleted at once."""
        await self._delete(turn, [message.message_id])
        turn.incoming.remove(message.message_id)
        if self._lookups >= LOOKUPS_AT_ONCE:
            await self._reply(turn, ctx, "err_busy")
            return
        self._lookups += 1
        try:
            lookup = await drafts.lookup_receipt(ctx, message.text or "")
        finally:
            self._lookups -= 1
        day = None
        if lookup is not None:
            async with self.app.sessions() as session:
                day = await drafts.submitted_on(session, lookup)
        if day is None:
            await self._reply(turn, ctx, "status_not_found")
        else:
            await self._reply(turn, ctx, "status_found", day=day.strftime("%d.%m.%Y"))

    async def _file(
        self,
        turn: Turn,
        ctx: DraftContext,
        *,
        message: Message,
        incoming: files.Incoming,
        origin: dict[str, Any] | None,
        qtype: QuestionType,
    ) -> None:
        voice = incoming.kind == "voice" and qtype is QuestionType.TEXT
        if qtype is not QuestionType.FILES and not voice:
            key = (
                "err_text_expected"
                if qtype in (QuestionType.TEXT, QuestionType.DATE)
                else "err_use_buttons"
            )
            await self._reply(turn, ctx, key)
            return
        draft = turn.draft
        if draft is None:
            return
        async with self.app.sessions() as session:
            count, total = await report_repo.attachment_totals(session, draft.report.report_id)
        if count >= self.limits.report_files or total >= self.limits.report_bytes:
            await self._reply(
                turn,
                ctx,
                "err_report_full",
                count=self.limits.report_files,
                limit_mb=self.limits.report_bytes // 2**20,
            )
            return
        if shutil.disk_usage(self.app.blobs.root.parent).free < self.limits.free_disk_bytes:
            await self._reply(turn, ctx, "err_disk_full")
            return
        limit = min(self.limits.file_bytes, self.limits.report_bytes - total)
        received = dt.datetime.now(dt.UTC)
        try:
            source = files.download(turn.bot, self.http, incoming, limit)
            stored = await store_file_blob(self.app.blobs, draft.report, source)
        except files.TooBig:
            await self._reply(
                turn, ctx, "err_file_too_big", limit_mb=self.limits.file_bytes // 2**20
            )
            return
        except files.DownloadFailed:
            await self._reply(turn, ctx, "err_file_failed")
            return
        ref: dict[str, Any] = {
            "file": stored.file_id.hex(),
            "kind": incoming.kind,
            "name": incoming.name,
            "mime": incoming.mime,
            "size": stored.digest.size,
            "sha256": stored.digest.sha256,
            "sent": message.date.astimezone(dt.UTC).isoformat(),
            "received": received.isoformat(),
            "caption": message.caption,
            "album": message.media_group_id is not None,
        }
        if origin:
            ref["forward"] = origin
        part = {"voice": ref} if voice else {"file": ref}
        state = self.engine.add_part(State.from_json(draft.engine), part)
        draft.engine = state.to_json()
        draft.wipe.extend(turn.incoming)
        turn.incoming = []
        async with self.app.sessions() as session, session.begin():
            await record_file(session, self.app.blobs, draft.report, stored)
            await drafts.save_manifest(session, draft, ref)
            await drafts.save(session, ctx, draft)
        question = self.engine.current(state)
        if question is not None:
            key = "received_part" if voice else "received_file"
            await self._acknowledge(turn, ctx, key, question, state)

    # --- buttons ---------------------------------------------------------------------

    async def _callback(self, turn: Turn, ctx: DraftContext, query: CallbackQuery) -> None:
        with contextlib.suppress(TelegramError):  # an old query: the button still counts
            await query.answer()
        pressed = parse(query.data)
        if pressed is None:
            await self._reply(turn, ctx, "err_stale_button")
            return
        if pressed.kind == "L":
            await self._language(turn, ctx, pressed.value or "")
        elif pressed.kind == "W":
            if query.message is not None:
                shown = query.message.message_id
                self._receipts = [r for r in self._receipts if r[:2] != (turn.chat_id, shown)]
                await self._delete(turn, [shown])
        elif turn.draft is None:
            await self._reply(turn, ctx, "err_start_first")
        elif pressed.kind == "C":
            # Only the newest message's confirmation counts: an old "Yes, delete" must
            # never erase a report the reporter went on with.
            latest = max(turn.draft.wipe, default=0)
            if query.message is None or query.message.message_id < latest:
                await self._reply(turn, ctx, "err_stale_button")
            else:
                await self._cancel(turn, ctx, confirmed=pressed.value == "y")
        elif pressed.kind in ("R", "B", "P"):
            await self._review_button(turn, ctx, pressed.kind)
        else:
            await self._question_button(turn, ctx, pressed, query)

    async def _language(self, turn: Turn, ctx: DraftContext, lang: str) -> None:
        if lang not in LANGUAGES:
            await self._reply(turn, ctx, "err_stale_button")
            return
        turn.lang = lang
        if turn.draft is not None:
            turn.draft.language = lang
            await self._commit(turn, ctx, State.from_json(turn.draft.engine), [])
            await self._show_step(turn, ctx, [self.strings(lang, "language_set")])
            return
        async with self.app.sessions() as session, session.begin():
            if await drafts.count_open(session) >= self.limits.open_drafts:
                busy = True
            else:
                busy = False
                turn.draft = await drafts.create(
                    session, ctx, handle=turn.handle, chat_id=turn.chat_id, language=lang
                )
                turn.draft.engine = self.engine.start().to_json()
                turn.draft.wipe.extend(self._early.pop(turn.handle, []))
                await drafts.save(session, ctx, turn.draft)
        if busy:
            await self._reply(turn, ctx, "err_busy")
            return
        await self._show_step(turn, ctx, [self.strings(lang, "language_set")])

    async def _question_button(
        self, turn: Turn, ctx: DraftContext, pressed: Callback, query: CallbackQuery
    ) -> None:
        draft = turn.draft
        if draft is None:
            return
        state = State.from_json(draft.engine)
        questions = self.engine.questionnaire.questions
        if pressed.kind == "E":
            index = pressed.question if pressed.question is not None else -1
            if state.position != REVIEW or not 0 <= index < len(questions):
                await self._reply(turn, ctx, "err_stale_button")
                return
            target = questions[index].id
            await self._step(turn, ctx, lambda s: self.engine.edit(s, target))
            return
        question = self.engine.current(state)
        if question is None or pressed.question != self.render.index[question.id]:
            await self._reply(turn, ctx, "err_stale_button")
            return
        option = (
            self.render.option_id(question, pressed.option) if pressed.option is not None else None
        )
        if pressed.kind in ("A", "T") and option is None:
            await self._reply(turn, ctx, "err_stale_button")
            return
        if pressed.kind == "T" and option is not None:
            try:
                toggled = self.engine.toggle(state, option)
            except AnswerError:
                await self._reply(turn, ctx, "err_stale_button")
                return
            await self._commit(turn, ctx, toggled, [])
            if query.message is not None:
                try:
                    await turn.bot.edit_message_reply_markup(
                        turn.chat_id,
                        query.message.message_id,
                        reply_markup=self.render.keyboard(question, turn.lang, toggled.pending),
                    )
                except TelegramError:
                    await self._show_step(turn, ctx)
            return
        operations: dict[str, Callable[[State], State]] = {
            "A": lambda s: self.engine.choose(s, option or ""),
            "D": self.engine.done,
            "S": self.engine.skip,
            "U": self.engine.unknown_date,
        }
        await self._step(turn, ctx, operations[pressed.kind])

    async def _review_button(self, turn: Turn, ctx: DraftContext, kind: str) -> None:
        draft = turn.draft
        if draft is None:
            return
        if State.from_json(draft.engine).position != REVIEW:
            await self._reply(turn, ctx, "err_stale_button")
            return
        if kind == "R":
            markup = self.render.change_keyboard(self.engine.effective(draft.answers), turn.lang)
            sent = await self._send(turn, self.strings(turn.lang, "review_choose"), markup)
            await self._remember(turn, ctx, [sent] if sent else [])
        elif kind == "B":
            await self._show_step(turn, ctx)
        else:
            await self._submit(turn, ctx)

    # --- endings ---------------------------------------------------------------------

    async def _submit(self, turn: Turn, ctx: DraftContext) -> None:
        draft = turn.draft
        if draft is None:
            return
        code, lookup = await drafts.new_receipt(ctx)
        document = self._document(draft)
        draft.wipe.extend(turn.incoming)
        turn.incoming = []
        async with self.app.sessions() as session, session.begin():
            await drafts.submit(session, draft, document, lookup)
        turn.draft = None
        # The receipt first: if the bot stops now, the reporter still has their code.
        await self._send(turn, self.strings(turn.lang, "submitted"))
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        self.strings(turn.lang, "button_written_down"), callback_data=encode("W")
                    )
                ]
            ]
        )
        receipt = await self._send(turn, self.strings(turn.lang, "receipt", code=code), markup)
        if receipt is not None and len(self._receipts) < MEMORY_ENTRIES:
            self._receipts.append((turn.chat_id, receipt, time.monotonic()))
        await self._delete(turn, draft.wipe)
        await self._send(turn, self.strings(turn.lang, "wiped"))

    def _document(self, draft: OpenDraft) -> dict[str, Any]:
        questionnaire = self.engine.questionnaire
        effective = self.engine.effective(draft.answers)
        manifest = [ref for value in effective.values() for ref in _file_refs(value)]
        return {
            "questionnaire": {"id": questionnaire.id, "version": questionnaire.version},
            "language": draft.language,
            "started": draft.started,
            "submitted": dt.datetime.now(dt.UTC).isoformat(),
            "urgent": draft.urgent or self.engine.is_urgent(draft.answers),
            "answers": [
                {"question": qid, "section": questionnaire.question(qid).section, "value": value}  # type: ignore[union-attr]
                for qid, value in effective.items()
            ],
            "files": manifest,
        }

    async def _cancel(self, turn: Turn, ctx: DraftContext, *, confirmed: bool) -> None:
        draft = turn.draft
        if draft is None:
            return
        if not confirmed:
            await self._show_step(turn, ctx, [self.strings(turn.lang, "cancel_kept")])
            return
        async with self.app.sessions() as session, session.begin():
            await drafts.erase(session, self.app.blobs, draft)
        turn.draft = None
        await self._delete(turn, [*draft.wipe, *turn.incoming])
        await self._send(turn, self.strings(turn.lang, "cancelled"))
        await self._send(turn, self.strings(turn.lang, "wiped"))

    async def _delete(self, turn: Turn, ids: list[int]) -> None:
        """Delete messages in batches; Telegram refuses those older than 48 hours."""
        unique = sorted(set(ids))
        for start in range(0, len(unique), DELETE_BATCH):
            try:
                await turn.bot.delete_messages(turn.chat_id, unique[start : start + DELETE_BATCH])
            except TelegramError as exc:
                log.warning("delete failed", error_type=type(exc).__name__)

    async def expire_receipts(self, bot: Bot, now: float | None = None) -> None:
        """Delete receipt messages nobody confirmed before Telegram's 48 hours run out: a
        code left in the chat (or in Telegram's copy) opens the report's status."""
        now = time.monotonic() if now is None else now
        due = [item for item in self._receipts if now - item[2] >= RECEIPT_KEPT_S]
        self._receipts = [item for item in self._receipts if now - item[2] < RECEIPT_KEPT_S]
        for chat_id, message_id, _ in due:
            await self._delete(Turn(bot, chat_id, [b""], DEFAULT_LANGUAGE), [message_id])

    async def wipe_closed(self, bot: Bot, closed: list[drafts.ClosedDraft]) -> None:
        """After the sweeper closed drafts of this boot: clear their chats."""
        for item in closed:
            turn = Turn(bot, item.chat_id, [b""], item.language)
            await self._delete(turn, list(item.wipe))
            await self._send(turn, self.strings(item.language, "draft_lost"))

    async def _leave_group(self, bot: Bot, chat: Chat, code: str | None, update: Update) -> None:
        if update.message is None:
            return
        try:
            await bot.send_message(
                chat.id, self.strings(self.strings.language_hint(code), "group_refused")
            )
            await bot.leave_chat(chat.id)
        except TelegramError as exc:
            log.warning("leaving a group failed", error_type=type(exc).__name__)


def _is_command(message: Message) -> bool:
    """A command as Telegram marks it (an entity at the start), not any text with a slash."""
    return any(
        entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0
        for entity in message.entities or ()
    )


def _forward_origin(message: Message, is_reporter: Callable[[int], bool]) -> dict[str, Any] | None:
    """Who a forwarded message came from, kept inside the encryption as evidence; when
    reporters forward their own message, only that fact (never their identity)."""
    origin = message.forward_origin
    if origin is None:
        return None
    data: dict[str, Any] = {"type": origin.type, "date": origin.date.astimezone(dt.UTC).isoformat()}
    sender = getattr(origin, "sender_user", None)
    if sender is not None and is_reporter(sender.id):
        data["from_reporter"] = True
    elif sender is not None:
        data["user"] = {"id": sender.id, "name": sender.full_name, "username": sender.username}
    if getattr(origin, "sender_user_name", None):
        data["name"] = origin.sender_user_name  # type: ignore[attr-defined]
    chat = getattr(origin, "chat", None) or getattr(origin, "sender_chat", None)
    if chat is not None:
        data["chat"] = {"id": chat.id, "title": chat.title, "username": chat.username}
    return data


def _file_refs(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    refs = []
    for part in value:
        if isinstance(part, dict):
            ref = part.get("file") or part.get("voice")
            if isinstance(ref, dict):
                refs.append(ref)
    return refs

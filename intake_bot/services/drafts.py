"""Drafts: a report being written, persisted after every step, encrypted throughout.

A draft is a report in state ``draft`` whose data key is sealed to the active org key (so
staff can always read it) and, in the ``drafts`` row, also inside a box under the boot
secret together with the chat to wipe, the message ids to delete and the times. Each
answer is its own payload in a random slot; the engine state (position, pending parts,
language, slot map) is one more payload. All of it is under the report's key.

This module is on the arrival path of plaintext (from the Telegram adapter to the crypto
module): answers are serialised to JSON in memory and encrypted at once.

Closing: after a reboot (the box no longer opens) or 24 hours without activity, a draft
with at least one answer becomes an *incomplete report* for staff; an empty one is deleted.
Submitting writes one padded report document and deletes the answers, the engine state
and the draft row in the same transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from intake_bot.crypto import (
    DataKey,
    DecryptionError,
    KdfParams,
    PayloadContext,
    PayloadKind,
    Plaintext,
    SigningPublicKey,
    decrypt_payload,
    new_receipt_code,
    normalise_receipt,
    random_id,
    receipt_lookup_id,
)
from intake_bot.ephemeral import BootSecrets
from intake_bot.storage import drafts as draft_repo
from intake_bot.storage import reports as report_repo
from intake_bot.storage.blobs import BlobStore
from intake_bot.storage.models import Payload, ReportState

from .reports import OpenReport, save_payload, start_report

STALE_AFTER = dt.timedelta(hours=24)
"""Untouched this long, a draft is closed (well inside Telegram's 48-hour delete window)."""
EMPTY_AFTER = dt.timedelta(hours=1)
"""A draft with no answer yet is dropped sooner: empty drafts only hold a place."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _json(value: Any) -> Plaintext:
    return Plaintext(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


@dataclass(frozen=True, slots=True)
class DraftContext:
    """What draft operations need from the running bot."""

    pinned: SigningPublicKey
    secrets: BootSecrets
    receipt_params: KdfParams
    receipt_pool: ThreadPoolExecutor


@dataclass(slots=True)
class OpenDraft:
    """A draft loaded for one update. ``engine`` is the engine state's JSON; ``answers``
    the answers by question id (plaintext, in memory only)."""

    report: OpenReport
    handle: bytes
    chat_id: int
    language: str
    started: str
    engine: dict[str, Any]
    answers: dict[str, Any]
    wipe: list[int] = field(default_factory=list)
    slots: dict[str, bytes] = field(default_factory=dict)
    state_slot: bytes = field(default_factory=random_id)
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class ClosedDraft:
    """A draft closed by :func:`sweep` while its box still opened: the chat to wipe."""

    chat_id: int
    wipe: tuple[int, ...]
    language: str


def _box(ctx: DraftContext, draft: OpenDraft) -> Plaintext:
    return _json(
        {
            "dek": draft.report.dek.reveal().hex(),
            "chat": draft.chat_id,
            "wipe": draft.wipe,
            "touched": _now().isoformat(),
            "language": draft.language,
        }
    )


async def create(
    session: AsyncSession, ctx: DraftContext, *, handle: bytes, chat_id: int, language: str
) -> OpenDraft:
    """A new draft, its key sealed to the verified active org key from the start."""
    report = await start_report(session, ctx.pinned, state=ReportState.DRAFT)
    draft = OpenDraft(
        report=report,
        handle=handle,
        chat_id=chat_id,
        language=language,
        started=_now().isoformat(),
        engine={},
        answers={},
    )
    await draft_repo.add_draft(
        session,
        report_id=report.report_id,
        handle=handle,
        boot_tag=ctx.secrets.tag,
        box=ctx.secrets.seal_box(report.report_id, _box(ctx, draft)),
    )
    return draft


async def load(session: AsyncSession, ctx: DraftContext, handles: list[bytes]) -> OpenDraft | None:
    """The reporter's open draft, or None (none, or one from before a reboot)."""
    stored = await draft_repo.find_draft(session, handles)
    if stored is None or stored.boot_tag != ctx.secrets.tag:
        return None
    try:
        opened = ctx.secrets.open_box(stored.report_id, stored.box)
    except DecryptionError:
        return None
    box = json.loads(opened.reveal())
    dek = DataKey(bytes.fromhex(box["dek"]))
    draft = OpenDraft(
        report=OpenReport(stored.report_id, dek),
        handle=handles[0],
        chat_id=int(box["chat"]),
        language=str(box["language"]),
        started="",
        engine={},
        answers={},
        wipe=[int(m) for m in box["wipe"]],
    )
    for item in await report_repo.payloads(session, stored.report_id):
        context = PayloadContext(item.kind, stored.report_id, item.slot_id, item.part)
        if item.kind is PayloadKind.DRAFT_STATE:
            state = json.loads(decrypt_payload(dek, context, item.ciphertext).reveal())
            draft.state_slot = item.slot_id
            draft.engine = state["engine"]
            draft.started = state["started"]
            draft.language = state["language"]
            draft.slots = {qid: bytes.fromhex(slot) for qid, slot in state["slots"].items()}
        elif item.kind is PayloadKind.ANSWER:
            answer = json.loads(decrypt_payload(dek, context, item.ciphertext).reveal())
            draft.answers[answer["question"]] = answer["value"]
    if stored.handle != handles[0]:
        # Found under yesterday's handle: move it, and its box, to today's key before
        # yesterday's is erased.
        await draft_repo.update_draft(
            session,
            stored.report_id,
            box=ctx.secrets.seal_box(stored.report_id, opened),
            handle=handles[0],
        )
    return draft


async def save(
    session: AsyncSession, ctx: DraftContext, draft: OpenDraft, changed: Iterable[str] = ()
) -> None:
    """Persist the answers named in ``changed``, the engine state and the box.

    Call inside the transaction that must commit before the reporter sees the next step.
    """
    for question_id in changed:
        slot = draft.slots.setdefault(question_id, random_id())
        await save_payload(
            session,
            draft.report,
            PayloadKind.ANSWER,
            _json({"question": question_id, "value": draft.answers.get(question_id)}),
            slot_id=slot,
        )
    await save_payload(
        session,
        draft.report,
        PayloadKind.DRAFT_STATE,
        _json(
            {
                "engine": draft.engine,
                "started": draft.started,
                "language": draft.language,
                "slots": {qid: slot.hex() for qid, slot in draft.slots.items()},
            }
        ),
        slot_id=draft.state_slot,
    )
    await draft_repo.update_draft(
        session,
        draft.report.report_id,
        box=ctx.secrets.seal_box(draft.report.report_id, _box(ctx, draft)),
    )
    if draft.urgent:
        await report_repo.mark_urgent(session, draft.report.report_id)


async def count_open(session: AsyncSession) -> int:
    """How many drafts are open (the bot refuses new ones above its limit)."""
    return await draft_repo.count_drafts(session)


async def save_box(session: AsyncSession, ctx: DraftContext, draft: OpenDraft) -> None:
    """Persist only the boot box (after new message ids were added to the wipe list)."""
    await draft_repo.update_draft(
        session,
        draft.report.report_id,
        box=ctx.secrets.seal_box(draft.report.report_id, _box(ctx, draft)),
    )


async def save_manifest(session: AsyncSession, draft: OpenDraft, entry: Mapping[str, Any]) -> None:
    """Record one received file (SHA-256, size, name, type, times) at receipt."""
    await save_payload(session, draft.report, PayloadKind.MANIFEST, _json(dict(entry)))


async def new_receipt(ctx: DraftContext) -> tuple[str, bytes]:
    """A receipt code and its lookup id (Argon2id in the bounded pool, off the loop)."""
    code = new_receipt_code()
    loop = asyncio.get_running_loop()
    lookup = await loop.run_in_executor(
        ctx.receipt_pool, receipt_lookup_id, code, ctx.receipt_params
    )
    return code, lookup


async def lookup_receipt(ctx: DraftContext, text: str) -> bytes | None:
    """The lookup id for a receipt code as typed, or None if it is not a well-formed code."""
    code = normalise_receipt(text)
    if code is None:
        return None
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(ctx.receipt_pool, receipt_lookup_id, code, ctx.receipt_params)


async def submitted_on(session: AsyncSession, lookup_id: bytes) -> dt.date | None:
    """The day the report with this receipt was last updated (submitted), if it exists."""
    report_id = await draft_repo.find_receipt(session, lookup_id)
    if report_id is None:
        return None
    summary = await report_repo.summary(session, report_id)
    return None if summary is None else summary.updated_on


async def submit(
    session: AsyncSession, draft: OpenDraft, document: Mapping[str, Any], lookup_id: bytes
) -> None:
    """Write the one padded report document and remove the draft, in one transaction."""
    report_id = draft.report.report_id
    await save_payload(session, draft.report, PayloadKind.DOCUMENT, _json(dict(document)))
    await session.execute(
        delete(Payload).where(
            Payload.report_id == report_id,
            Payload.kind.in_([PayloadKind.ANSWER.value, PayloadKind.DRAFT_STATE.value]),
        )
    )
    await draft_repo.delete_draft(session, report_id)
    await draft_repo.add_receipt(session, lookup_id=lookup_id, report_id=report_id)
    await report_repo.set_state(session, report_id, ReportState.SUBMITTED, _now().date())


async def erase(session: AsyncSession, blobs: BlobStore, draft: OpenDraft) -> None:
    """Delete a draft and everything in it (the reporter chose /cancel and confirmed)."""
    files = await report_repo.attachments(session, draft.report.report_id)
    await report_repo.delete_report(session, draft.report.report_id)
    for file_id in files:
        await blobs.delete(file_id)


async def sweep(
    session: AsyncSession, ctx: DraftContext, blobs: BlobStore, now: dt.datetime
) -> list[ClosedDraft]:
    """Close drafts from earlier boots (or whose box no longer opens: sealed more than a
    day ago), drafts untouched for :data:`STALE_AFTER`, and empty ones after
    :data:`EMPTY_AFTER`.

    A closed draft with answers becomes an incomplete report (staff read it with the org
    key); one without answers is deleted. Returns the chats whose messages can still be
    wiped (drafts of this boot).
    """
    closed: list[ClosedDraft] = []
    for stored in await draft_repo.all_drafts(session):
        box: dict[str, Any] | None = None
        if stored.boot_tag == ctx.secrets.tag:
            try:
                box = json.loads(ctx.secrets.open_box(stored.report_id, stored.box).reveal())
            except DecryptionError:
                box = None
        answered = await report_repo.payloads(session, stored.report_id, PayloadKind.ANSWER)
        if box is not None:
            idle = now - dt.datetime.fromisoformat(box["touched"])
            if idle < (STALE_AFTER if answered else EMPTY_AFTER):
                continue
        await draft_repo.delete_draft(session, stored.report_id)
        if answered:
            await report_repo.set_state(
                session, stored.report_id, ReportState.INCOMPLETE, now.date()
            )
        else:
            files = await report_repo.attachments(session, stored.report_id)
            await report_repo.delete_report(session, stored.report_id)
            for file_id in files:
                await blobs.delete(file_id)
        if box is not None:
            closed.append(
                ClosedDraft(
                    int(box["chat"]), tuple(int(m) for m in box["wipe"]), str(box["language"])
                )
            )
    return closed

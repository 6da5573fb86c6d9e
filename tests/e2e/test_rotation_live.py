"""Key rotation while the real bot keeps taking reports, on SQLite and PostgreSQL.

The real bot (python-telegram-bot over HTTP, against the Bot API simulator) runs with a
compact questionnaire. Before the rotation two reporters submit reports and two leave
drafts open part way (all sealed to the first org key). Then, at once (asyncio tasks):
three more reporters submit reports and two more leave drafts open, while the key-holder
amina rotates (``rotation.rotate``, the service behind ``intake keys rotate``) and
re-wraps (``rotation.rewrap``, in batches of one so that it interleaves with the bot).

Afterwards:

* every report and every open draft, old and new, opens with the *new* key (the data key
  taken from the copy sealed to it) and decrypts;
* the reporters of the open drafts come back (``/start`` says it resumes) and submit;
  their reports hold the answers given before the rotation and after;
* retiring the old key succeeds without a second re-wrap; then the database holds no
  grant of it and no copy sealed to it, which it did just before (checked, so the
  emptiness means something);
* the old private key, raw and in hex and base64, is nowhere in the installation's files
  (the SQLite database, its -wal, blobs, runtime dir; again after the app is closed) nor
  in a ``pg_dump``. It never was in the database in the clear (only sealed to each
  key-holder), so this guards against a regression that stores or logs it; the scanner is
  shown to find it when it is there.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from canary import Canary, ScanResult, pg_dump, scan_bytes, scan_tree
from harness import (
    ADMIN_PASSWORD,
    BotRun,
    JsonDict,
    Reporter,
    Walker,
    buttons,
    compact_questionnaire,
    last_with_buttons,
    load_draft,
    running_bot,
    text_of,
)
from sqlalchemy import func, select

from intake_bot.config import Settings
from intake_bot.crypto import PayloadKind, open_data_key
from intake_bot.questionnaire.loader import load_file
from intake_bot.questionnaire.model import Questionnaire
from intake_bot.services import keyring, reports, rotation
from intake_bot.simulator.client import SimulatorClient
from intake_bot.storage import keys as key_repo
from intake_bot.storage import reports as report_repo
from intake_bot.storage.models import OrgKeyGrant, Report, ReportKey, ReportState
from intake_bot.telegram.strings import Strings

pytestmark = pytest.mark.slow

STRINGS = Strings.load()
WAIT = 20.0
LANG = "en"
STOP_AT = "started"
"""Where a reporter who leaves a draft open stops (after urgency, details, violations)."""


@dataclass(frozen=True, slots=True)
class KeyCanary(Canary):
    """Raw key bytes: found as such, in hex (either case) and in base64 (any alignment)."""

    raw: bytes = b""

    def patterns(self) -> dict[str, bytes]:
        out = {
            "raw": self.raw,
            "hex": self.raw.hex().encode(),
            "HEX": self.raw.hex().upper().encode(),
        }
        for shift in range(3):
            whole = (len(self.raw) - shift) // 3 * 3
            out[f"base64+{shift}"] = base64.b64encode(self.raw[shift : shift + whole])
        return out


class Chat(Reporter):
    """A reporter that waits only for its own chat (several run at once): ``settle``
    returns once the bot has sent a new message with buttons; a toggle gets none."""

    def __init__(self, client: SimulatorClient, user: JsonDict) -> None:
        super().__init__(client, user)
        self.expect_reply = True

    async def press(self, message: JsonDict, data: str) -> list[JsonDict]:
        self.expect_reply = not data.startswith("T:")
        return await super().press(message, data)

    async def settle(self) -> list[JsonDict]:
        if not self.expect_reply:
            self.expect_reply = True
            return []
        count = 1
        while True:
            found = await self.client.wait_for_bot_messages(
                self.id, after=self.seen, count=count, max_wait=WAIT
            )
            if any(buttons(m) for m in found):
                self.seen = max(m["message_id"] for m in found)
                return found
            count = len(found) + 1

    async def expect(self, count: int) -> list[JsonDict]:
        found = await self.client.wait_for_bot_messages(
            self.id, after=self.seen, count=count, max_wait=WAIT
        )
        self.seen = max(m["message_id"] for m in found)
        return found


@dataclass
class Person:
    """One reporter, their walker, the bot's last messages, and their marker text."""

    chat: Chat
    walker: Walker
    messages: list[JsonDict]
    marker: str


async def start(run: BotRun, questionnaire: Questionnaire, name: str) -> Person:
    user = await run.client.create_user(name, language_code=LANG)
    chat = Chat(run.client, user)
    prompt = await chat.say("/start")
    messages = await chat.press(prompt[0], f"L:{LANG}")
    assert text_of(messages[0]) == STRINGS(LANG, "language_set")
    walker = Walker(chat, questionnaire)
    marker = f"rotation-live {name} before"
    walker.choices.update(urgent="me", violations=["torture"])
    walker.texts["urgent_details"] = marker
    return Person(chat, walker, messages, marker)


async def walk_to(person: Person, question_id: str) -> None:
    """Answer until ``question_id`` is asked (a draft left open there)."""
    for _ in range(50):
        question = person.walker.question_of(last_with_buttons(person.messages))
        if question is not None and question.id == question_id:
            return
        person.messages = await person.walker.answer(person.messages)
    raise AssertionError(f"{question_id} was never asked")


async def submit(person: Person) -> None:
    person.messages = await person.walker.to_review(person.messages)
    person.messages = await person.chat.press(last_with_buttons(person.messages), "P")
    replies = person.messages + await person.chat.expect(1)
    texts = [text_of(m) for m in replies]
    assert STRINGS(LANG, "submitted") in texts, texts


async def full_report(run: BotRun, questionnaire: Questionnaire, name: str) -> Person:
    person = await start(run, questionnaire, name)
    await submit(person)
    return person


async def open_draft(run: BotRun, questionnaire: Questionnaire, name: str) -> Person:
    person = await start(run, questionnaire, name)
    await walk_to(person, STOP_AT)
    return person


async def payloads_with_new_key(
    run: BotRun, new_key_id: bytes, report_id: bytes
) -> list[tuple[PayloadKind, Any]]:
    """Every payload of a report, decrypted with the data key from its copy sealed to
    the new org key (opened with amina's grant of that key alone)."""
    async with run.app.sessions() as session:
        ring = await keyring.unlock(
            session, "amina", ADMIN_PASSWORD, run.settings.kdf_profile.floor
        )
        copies = await report_repo.sealed_keys(session, report_id)
        assert new_key_id in copies, "the report has no copy sealed to the new key"
        dek = open_data_key(copies[new_key_id], ring.org_keys[new_key_id])
        decrypted = await reports.read_payloads(session, dek, report_id)
    return [(kind, plain.reveal()) for kind, _, plain in decrypted]


async def reports_by_state(run: BotRun) -> dict[bytes, ReportState]:
    async with run.app.sessions() as session:
        rows = await session.execute(select(Report.id, Report.state))
        return {rid: ReportState(state) for rid, state in rows}


async def count(run: BotRun, table: Any, key_id: bytes) -> int:
    async with run.app.sessions() as session:
        found = await session.scalar(
            select(func.count()).select_from(table).where(table.org_key_id == key_id)
        )
    return int(found or 0)


def documents(decrypted: list[tuple[PayloadKind, Any]]) -> list[JsonDict]:
    return [json.loads(plain) for kind, plain in decrypted if kind is PayloadKind.DOCUMENT]


async def test_rotation_while_the_bot_takes_reports(settings: Settings, tmp_path: Path) -> None:
    settings = replace(settings, questionnaire=compact_questionnaire(tmp_path / "q.yaml"))
    assert settings.questionnaire is not None
    questionnaire = load_file(settings.questionnaire)
    async with running_bot(settings) as run:
        before = await asyncio.gather(
            full_report(run, questionnaire, "Aysel"),
            full_report(run, questionnaire, "Bahruz"),
        )
        old_drafts = await asyncio.gather(
            open_draft(run, questionnaire, "Cavid"),
            open_draft(run, questionnaire, "Dilara"),
        )
        async with run.app.sessions() as session:
            old_key_id = await key_repo.current_key_id(session)
        assert old_key_id is not None

        seen: list[tuple[int, int]] = []

        async def keyholder() -> tuple[rotation.Rotated, rotation.Rewrapped]:
            await asyncio.sleep(0.3)  # the reporters are under way
            rotated = await rotation.rotate(run.app, "amina", ADMIN_PASSWORD)
            await asyncio.sleep(0.3)
            done = await rotation.rewrap(
                run.app,
                "amina",
                ADMIN_PASSWORD,
                batch=1,
                progress=lambda d, left: seen.append((d, left)),
            )
            return rotated, done

        during = asyncio.gather(
            *(full_report(run, questionnaire, name) for name in ("Elvin", "Fidan", "Gunel")),
            *(open_draft(run, questionnaire, name) for name in ("Hasan", "Ilaha")),
        )
        (rotated, rewrapped), people = await asyncio.gather(keyholder(), during)
        new_key_id = rotated.key_id
        assert rotated.previous == old_key_id
        assert rotated.to_rewrap >= 4  # two reports and two drafts at least
        assert rewrapped.left == 0
        assert rewrapped.moved >= rotated.to_rewrap
        assert seen[-1][1] == 0
        new_drafts = list(people[3:])
        after = list(people[:3])

        # Every report and every open draft, old and new, opens with the new key.
        states = await reports_by_state(run)
        assert sorted(s.value for s in states.values()) == sorted(["draft"] * 4 + ["submitted"] * 5)
        markers_found: set[str] = set()
        for report_id, state in states.items():
            decrypted = await payloads_with_new_key(run, new_key_id, report_id)
            assert decrypted, "a report without payloads"
            kinds = {kind for kind, _ in decrypted}
            if state is ReportState.SUBMITTED:
                (document,) = documents(decrypted)
                answers = {a["question"]: a["value"] for a in document["answers"]}
                markers_found.add(answers["urgent_details"][0]["text"])
            else:
                assert PayloadKind.DRAFT_STATE in kinds, kinds
                assert PayloadKind.ANSWER in kinds, kinds
        assert markers_found == {p.marker for p in [*before, *after]}
        async with run.app.sessions() as session:
            assert await key_repo.depending_only_on(session, old_key_id) == 0

        # The reporters of the open drafts come back after the re-wrap and submit.
        drafts = [*old_drafts, *new_drafts]
        draft_ids = {}
        for person in drafts:
            draft = await load_draft(run, person.chat.id)
            assert draft is not None
            draft_ids[person.marker] = draft.report.report_id
        for person in drafts:
            resumed = await person.chat.say("/start")
            assert text_of(resumed[0]) == STRINGS(LANG, "resumed")
            question = person.walker.question_of(last_with_buttons(resumed))
            assert question is not None
            assert question.id == STOP_AT
            person.messages = resumed
        await asyncio.gather(*(submit(person) for person in drafts))
        for person in drafts:
            decrypted = await payloads_with_new_key(run, new_key_id, draft_ids[person.marker])
            (document,) = documents(decrypted)
            answers = {a["question"]: a["value"] for a in document["answers"]}
            assert answers["urgent_details"][0]["text"] == person.marker  # before the rotation
            assert answers["violations"] == ["torture"]
            assert "started" in answers  # answered after the re-wrap

        # Retire: the old key's grants and sealed copies existed until now.
        async with run.app.sessions() as session:
            ring = await keyring.unlock(
                session, "amina", ADMIN_PASSWORD, run.settings.kdf_profile.floor
            )
        old_raw = ring.org_keys[old_key_id].raw().reveal()
        assert await count(run, OrgKeyGrant, old_key_id) == 1  # amina's sealed grant
        old_copies = await count(run, ReportKey, old_key_id)
        assert old_copies >= 4
        retired = await rotation.retire(run.app, "amina", ADMIN_PASSWORD, old_key_id.hex())
        assert retired.sealed_copies_removed == old_copies
        assert await count(run, OrgKeyGrant, old_key_id) == 0
        assert await count(run, ReportKey, old_key_id) == 0
        async with run.app.sessions() as session:
            ring = await keyring.unlock(
                session, "amina", ADMIN_PASSWORD, run.settings.kdf_profile.floor
            )
        assert set(ring.org_keys) == {new_key_id}
        for report_id in states:  # all of them, through amina's keyring as staff use it
            async with run.app.sessions() as session:
                dek = await reports.report_key(session, ring, report_id)
                assert await reports.read_payloads(session, dek, report_id)

        canaries = [KeyCanary("old-org-private-key", "", raw=old_raw)]
        planted = scan_bytes(b"x" + old_raw.hex().encode() + b"y" + old_raw, canaries, "planted")
        assert {f.encoding for f in planted.findings} == {"raw", "hex"}
        result = scan_tree(tmp_path, canaries)
        if not settings.database_url.startswith("sqlite"):
            result.extend(scan_bytes(pg_dump(settings.database_url), canaries, "pg_dump"))
        result.assert_clean()
    after_close = ScanResult()
    after_close.extend(scan_tree(tmp_path, canaries))
    after_close.assert_clean()
    if settings.database_url.startswith("sqlite"):
        assert any(path.endswith(".db") for path in result.scanned), result.scanned


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_report_sealing_to_the_old_key_during_the_rotation_is_rewrapped(
    settings: Settings,
) -> None:
    """Regression (PostgreSQL): a transaction that read the old key as current and
    commits after the rotation must not be missed by the re-wrap. It was: the re-wrap
    finished and closed its job without it, so re-wrap had nothing left to do and retire
    refused for ever. The rotation now waits for that transaction to commit."""
    async with running_bot(settings) as run:
        app = run.app
        pinned = keyring.read_pin(app.settings.signing_key_pin)
        session = app.sessions()
        await session.begin()
        report = await reports.start_report(session, pinned)
        keyholder = asyncio.create_task(rotation.rotate(app, "amina", ADMIN_PASSWORD))
        done, _ = await asyncio.wait({keyholder}, timeout=1.0)
        assert not done, "the rotation did not wait for a transaction sealing to the old key"
        await session.commit()
        await session.close()
        rotated = await keyholder
        assert rotated.to_rewrap == 1
        assert (await rotation.rewrap(app, "amina", ADMIN_PASSWORD)).moved == 1
        await rotation.retire(app, "amina", ADMIN_PASSWORD, rotated.previous.hex())
        assert await payloads_with_new_key(run, rotated.key_id, report.report_id) == []

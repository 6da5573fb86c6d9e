"""Benchmark: the staff web interface's inbox and report pages at 1,000 and 100,000 reports.

Serves the real admin application (``admin.app.create_app``, every middleware) with
aiohttp's test server and asks it for the inbox (unfiltered, each filter, a deep page
through the ``after`` cursor) and for report pages, logged in as a key-holder (summaries
and the report decrypted) and as a reviewer (clear triage fields only). The time is the
server's: from the outermost middleware in to the rendered response out, median and p95
over ``--requests`` rounds in which every page is asked once in turn (so load from
elsewhere on the machine weighs on all alike). ``rows`` is the number of reports listed;
``db ms`` the median time spent inside the database driver's execute calls (the rest is
Python: ORM, crypto, templates).

Baseline, measured in the same run with the same session: ``/account/password``, a
signed-in page that goes through the same middleware stack (the session middleware reads
the member from the database on every request) but renders a small form and nothing else.
``x base`` is a page's median over that baseline's; the last table divides the median at
the largest size by the median at the smallest, which stays near 1 if the pages really
are read a page at a time.

Reports are written in bulk (SQLAlchemy core inserts), not through the services, but
every one has its own data key sealed to the installation's active org key and its
payloads really encrypted, so key-holder pages decrypt as in production. PostgreSQL is
ANALYZEd after loading (autovacuum would do it); SQLite is left without statistics, as
the application never runs ANALYZE there. At the largest size the inbox queries' plans
are printed (SQLite's EXPLAIN QUERY PLAN; PostgreSQL's EXPLAIN ANALYZE, actual rows).

    .venv/bin/python bench/inbox.py [--sizes 1000,100000] [--databases sqlite,postgresql]
                                    [--requests 100] [--quick]

The full run takes about ten minutes (writing 100,000 reports takes one to two of them
per database); ``--quick`` is a smoke run of a minute or two. PostgreSQL is the server on
127.0.0.1:5432 (user postgres), in a throw-away database. Prints figures; asserts only
that the pages work. Not run by CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import random
import re
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pyotp
from aiohttp import CookieJar, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event, insert, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from admin.app import create_app
from intake_bot.bootstrap import App, open_app
from intake_bot.config import load_settings
from intake_bot.crypto import (
    DataKey,
    PayloadContext,
    PayloadKind,
    Plaintext,
    Secret,
    VerifiedOrgKey,
    encrypt_payload,
    random_id,
    seal_data_key,
)
from intake_bot.services import accounts, installation
from intake_bot.services.keyring import encryption_key, read_pin
from intake_bot.storage import inbox as inbox_repo
from intake_bot.storage import staff as staff_repo
from intake_bot.storage.db import is_sqlite
from intake_bot.storage.models import (
    Attachment,
    Payload,
    Report,
    ReportKey,
    ReportLabel,
    ReportPrimaryKey,
    ReportState,
    Role,
    Staff,
)
from intake_bot.triage import CloseReason, Status

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
ADMIN = "amina"
ADMIN_PASSWORD = "correct horse battery staple amina"  # noqa: S105  # throw-away install
REVIEWER = "rustam"
ASSIGNEES = ("leyla", "orkhan", "nigar", "elvin", "sevda")
MEMBER_PASSWORD = "vivid tundra lantern oboe 42"  # noqa: S105  # throw-away install
BATCH = 2000
WARMUP = 5
DAYS = 3 * 365
COMMON_LABEL = "detention"
RARE_LABEL = "Sumqayit-2019"
LABELS = (  # (label, share of reports)
    (COMMON_LABEL, 0.15),
    ("torture", 0.06),
    ("Baku", 0.12),
    ("Ganja", 0.04),
    ("follow-up", 0.08),
    ("journalist", 0.05),
    ("legal-aid", 0.03),
)
RARE_EVERY = 1000
"""Every 1000th report carries RARE_LABEL: a filter that matches 0.1% of the inbox."""
STATUSES = (  # (status, share); closed reports carry a reason
    (Status.NEW, 0.25),
    (Status.IN_REVIEW, 0.15),
    (Status.NEEDS_INFORMATION, 0.08),
    (Status.VERIFIED, 0.12),
    (Status.ESCALATED, 0.05),
    (Status.CLOSED, 0.35),
)
URGENT_SHARE = 0.05
INCOMPLETE_SHARE = 0.10
"""Reports not submitted: incomplete (abandoned drafts), and a few open drafts."""
DRAFT_SHARE = 0.05
"""Of those, drafts still being written (staff see them only when urgent)."""
ASSIGNED_SHARE = 0.30
FILES_SHARE = 0.30
NOTES_SHARE = 0.10
MARK = "benchmark-summary"
"""A word in every report's first free text: a key-holder's inbox must show it."""
STORY = (
    "police arrested my brother at night near the market and took him to the station "
    "without a warrant they refused to tell the family where he was held for three days "
    "a lawyer was not allowed to see him and officers threatened our neighbours"
)
WORDS = STORY.split()
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_ROW = re.compile(r'<a href="/reports/[0-9a-f]{32}">')


# --- Synthetic reports ---------------------------------------------------------------------


def _pick(rng: random.Random, shares: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([value for value, _ in shares], [share for _, share in shares])[0]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _answers(rng: random.Random) -> list[tuple[str, Any]]:
    """Answers to the default questionnaire, the way the bot records them."""
    return [
        ("role", rng.choice(["victim", "relative", "witness", "lawyer"])),
        ("identity", rng.choice(["anonymous", "org_only"])),
        ("violations", rng.sample(["arbitrary_arrest", "torture", "fabricated_charges"], 2)),
        ("started", {"precision": "day", "value": "2026-10-28"}),
        ("event_account", [{"text": f"{MARK} {_text(rng, rng.randint(40, 160))}"}]),
        ("place_type", ["police_station"]),
        ("victim_name", [{"text": "Elnur M."}]),
        ("victim_sex", "male"),
        ("victim_age", [{"text": str(rng.randint(18, 70))}]),
        ("victim_status", rng.choice(["detained", "released"])),
    ]


def _encrypt(
    dek: DataKey, report_id: bytes, kind: PayloadKind, data: object, day: dt.date
) -> dict[str, Any]:
    slot = random_id()
    context = PayloadContext(kind, report_id, slot, 0)
    return {
        "report_id": report_id,
        "slot_id": slot,
        "part": 0,
        "kind": kind.value,
        "ciphertext": encrypt_payload(dek, context, Plaintext(json.dumps(data).encode())),
        "created_on": day,
    }


@dataclass
class Rows:
    reports: list[dict[str, Any]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)
    primary: list[dict[str, Any]] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)


def seal_report_key(rows: Rows, report_id: bytes, dek: DataKey, org_key: VerifiedOrgKey) -> None:
    """A report's data key sealed to the org key, and that copy recorded as the one in use
    (``report_primary_keys``: every report has one; key re-wrap moves reports by it)."""
    rows.keys.append(
        {
            "report_id": report_id,
            "org_key_id": org_key.key_id,
            "sealed": seal_data_key(dek, org_key),
        }
    )
    rows.primary.append({"report_id": report_id, "org_key_id": org_key.key_id})


def _report(
    rng: random.Random,
    rows: Rows,
    org_key: VerifiedOrgKey,
    today: dt.date,
    staff: list[bytes],
    *,
    rare: bool,
) -> None:
    """One report: clear fields with the shares above, a sealed DEK, real ciphertext."""
    report_id = random_id()
    day = today - dt.timedelta(days=rng.randrange(DAYS))
    urgent = rng.random() < URGENT_SHARE
    incomplete = rng.random() < INCOMPLETE_SHARE
    state = ReportState.SUBMITTED
    if incomplete:
        state = ReportState.DRAFT if rng.random() < DRAFT_SHARE else ReportState.INCOMPLETE
    status = _pick(rng, STATUSES)
    priority = "urgent" if urgent else _pick(rng, (("low", 0.1), ("normal", 0.75), ("high", 0.15)))
    rows.reports.append(
        {
            "id": report_id,
            "state": state.value,
            "urgent": urgent,
            "created_on": day,
            "updated_on": day,
            "triage_status": status.value,
            "priority": priority,
            "assignee_id": rng.choice(staff) if rng.random() < ASSIGNED_SHARE else None,
            "close_reason": rng.choice(list(CloseReason)).value
            if status is Status.CLOSED
            else None,
        }
    )
    dek = DataKey.generate()
    seal_report_key(rows, report_id, dek, org_key)
    answers = _answers(rng)
    if incomplete:
        # Stopped part way (up to the account at least): a payload per answer and the
        # draft state, as drafts.py writes them.
        answers = answers[: rng.randint(5, len(answers))]
        slots = {}
        for question, value in answers:
            row = _encrypt(
                dek, report_id, PayloadKind.ANSWER, {"question": question, "value": value}, day
            )
            slots[question] = row["slot_id"].hex()
            rows.payloads.append(row)
        draft = {
            "engine": {"answers": {question: True for question, _ in answers}},
            "started": f"{day.isoformat()}T09:58:00+00:00",
            "language": "en",
            "slots": slots,
        }
        rows.payloads.append(_encrypt(dek, report_id, PayloadKind.DRAFT_STATE, draft, day))
    else:
        document = {
            "questionnaire": {"id": "intake-default", "version": 1},
            "language": "en",
            "started": f"{day.isoformat()}T09:58:00+00:00",
            "submitted": f"{day.isoformat()}T10:05:00+00:00",
            "urgent": urgent,
            "answers": [{"question": q, "section": "", "value": v} for q, v in answers],
            "files": [],
        }
        rows.payloads.append(_encrypt(dek, report_id, PayloadKind.DOCUMENT, document, day))
    if rng.random() < NOTES_SHARE:
        note = {"author": ADMIN, "at": f"{day.isoformat()}T12:00:00+00:00", "text": _text(rng, 20)}
        rows.payloads.append(_encrypt(dek, report_id, PayloadKind.NOTE, note, day))
    for label, share in LABELS:
        if rng.random() < share:
            rows.labels.append({"report_id": report_id, "label": label})
    if rare:
        rows.labels.append({"report_id": report_id, "label": RARE_LABEL})
    if rng.random() < FILES_SHARE:
        # Attachment rows only (the inbox counts them); no blob is read by these pages.
        for _ in range(rng.randint(1, 3)):
            rows.files.append(
                {
                    "id": random_id(),
                    "report_id": report_id,
                    "blob_size": rng.randint(10_000, 5_000_000),
                    "created_on": day,
                }
            )


@dataclass(frozen=True, slots=True)
class Loaded:
    order: list[tuple[bool, dt.date, bytes]]
    """The inbox key of every report staff see, in inbox order (urgent first, newest, by
    id): all but drafts that are not urgent."""
    sample: list[bytes]
    """Report ids for the report page, in random order."""


async def insert_rows(connection: AsyncConnection, rows: Rows) -> None:
    """Core inserts of one batch, parents first."""
    for table, values in (
        (Report, rows.reports),
        (ReportKey, rows.keys),
        (ReportPrimaryKey, rows.primary),
        (Payload, rows.payloads),
        (ReportLabel, rows.labels),
        (Attachment, rows.files),
    ):
        if values:
            await connection.execute(insert(table), values)


async def load_reports(app: App, count: int, staff: list[bytes], seed: int = 1) -> Loaded:
    rng = random.Random(seed)
    async with app.sessions() as session:
        org_key = await encryption_key(session, read_pin(app.settings.signing_key_pin))
    today = dt.datetime.now(dt.UTC).date()
    order: list[tuple[bool, dt.date, bytes]] = []
    for start in range(0, count, BATCH):
        rows = Rows()
        for n in range(start, min(start + BATCH, count)):
            _report(rng, rows, org_key, today, staff, rare=n % RARE_EVERY == 0)
        async with app.engine.begin() as connection:
            await insert_rows(connection, rows)
        order += [
            (r["urgent"], r["created_on"], r["id"])
            for r in rows.reports
            if r["urgent"] or r["state"] != ReportState.DRAFT.value
        ]
    if not is_sqlite(app.settings.database_url):
        async with app.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.exec_driver_sql("ANALYZE")
    order.sort(reverse=True)
    sample = [rid for _, _, rid in order]
    rng.shuffle(sample)
    return Loaded(order, sample)


# --- Staff and sessions --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    password: str
    totp_secret: str
    id: bytes


async def _member(app: App, name: str, roles: Sequence[Role]) -> Member:
    invite = await accounts.add_member(app, name, roles)
    secret = accounts.new_totp_secret()
    password = f"{MEMBER_PASSWORD} {name}"
    await accounts.enrol(
        app,
        invite.token,
        Secret(password.encode()),
        totp_secret=secret,
        totp_code=pyotp.TOTP(secret).now(),
    )
    async with app.sessions() as session:
        creds = await staff_repo.credentials(session, name)
    assert creds is not None
    return Member(name, password, secret, creds.staff_id)


async def setup_staff(app: App) -> tuple[Member, Member, list[Member]]:
    """The first admin (a key-holder), a reviewer, and a few members to assign reports to."""
    await installation.initialise(app, ADMIN, Secret(ADMIN_PASSWORD.encode()))
    async with app.sessions() as session:
        creds = await staff_repo.credentials(session, ADMIN)
    assert creds is not None
    admin = Member(ADMIN, ADMIN_PASSWORD, creds.totp_secret, creds.staff_id)
    reviewer = await _member(app, REVIEWER, [Role.REVIEWER])
    others = [
        await _member(app, name, [Role.REVIEWER if i % 2 else Role.KEYHOLDER])
        for i, name in enumerate(ASSIGNEES)
    ]
    return admin, reviewer, others


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


async def login(client: TestClient[Any, Any], app: App, member: Member) -> None:
    """Log in through both forms, as a browser does (the key-holder's keys are unlocked).

    The code of the moment is made usable again first: enrolment used it up."""
    async with app.sessions() as session, session.begin():
        await session.execute(
            update(Staff).where(Staff.id == member.id).values(totp_last_step=None)
        )
    page = await client.get("/login")
    response = await client.post(
        "/login",
        data={"name": member.name, "password": member.password, "csrf": _csrf(await page.text())},
    )
    assert response.url.path == "/login/code", response.status
    response = await client.post(
        "/login/code",
        data={
            "code": pyotp.TOTP(member.totp_secret).now(),
            "csrf": _csrf(await response.text()),
        },
    )
    assert response.status == 200, response.status
    assert response.url.path == "/", response.url


# --- Timing --------------------------------------------------------------------------------


@dataclass
class Meter:
    """Server time per request (outermost middleware) and time inside database calls."""

    db: float = 0.0
    samples: list[tuple[float, float]] = field(default_factory=list)
    _started: list[float] = field(default_factory=list)

    def install(self, app: App, web_app: web.Application) -> None:
        @event.listens_for(app.engine.sync_engine, "before_cursor_execute")
        def before(*_: Any) -> None:
            self._started.append(time.perf_counter())

        @event.listens_for(app.engine.sync_engine, "after_cursor_execute")
        def after(*_: Any) -> None:
            self.db += time.perf_counter() - self._started.pop()

        @web.middleware
        async def timed(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            self.db = 0.0
            started = time.perf_counter()
            try:
                return await handler(request)
            finally:
                self.samples.append((time.perf_counter() - started, self.db))

        web_app.middlewares.insert(0, timed)


@dataclass(frozen=True, slots=True)
class Figures:
    median: float
    p95: float
    db: float
    rows: int
    """Reports listed on the page (inbox pages; 0 for the others)."""

    @classmethod
    def of(cls, samples: Sequence[tuple[float, float]], rows: int) -> Figures:
        total = sorted(s for s, _ in samples)
        p95 = total[min(len(total) - 1, int(len(total) * 0.95))]
        return cls(
            statistics.median(total) * 1000,
            p95 * 1000,
            statistics.median(d for _, d in samples) * 1000,
            rows,
        )


@dataclass(frozen=True, slots=True)
class Page:
    name: str
    paths: Callable[[int], str]
    """The path of the n-th request."""
    check: Callable[[str, bool], None]
    """Asserts on the HTML (given whether the viewer holds keys)."""


def _inbox_check(rows: int | None) -> Callable[[str, bool], None]:
    def check(html: str, keyholder: bool) -> None:
        shown = len(_ROW.findall(html))
        assert rows is None or shown == rows, f"{shown} rows, expected {rows}"
        assert shown > 0, "an empty inbox page"
        assert (MARK in html) is keyholder, "summaries shown to the wrong role, or not shown"
        assert "cannot be opened with your keys" not in html, "a summary did not decrypt"

    return check


def _report_check(html: str, keyholder: bool) -> None:
    assert (MARK in html) is keyholder, "report content shown to the wrong role, or not shown"


def _no_check(html: str, keyholder: bool) -> None:
    del html, keyholder


def pages(loaded: Loaded, assignee: str) -> list[Page]:
    size = inbox_repo.PAGE_SIZE
    full = size if len(loaded.order) > size else None
    middle = loaded.order[len(loaded.order) // 2]
    deep = inbox_repo.Cursor(*middle).encode()
    deep_rows = size if len(loaded.order) // 2 > size else None

    def fixed(path: str) -> Callable[[int], str]:
        return lambda _: path

    def report(n: int) -> str:
        return f"/reports/{loaded.sample[n % len(loaded.sample)].hex()}"

    return [
        Page("baseline /account/password", fixed("/account/password"), _no_check),
        Page("inbox", fixed("/"), _inbox_check(full)),
        Page("status=in_review", fixed("/?status=in_review"), _inbox_check(None)),
        Page(f"label={COMMON_LABEL} (15%)", fixed(f"/?label={COMMON_LABEL}"), _inbox_check(None)),
        Page("label=rare (0.1%)", fixed(f"/?label={RARE_LABEL}"), _inbox_check(None)),
        Page("urgent=yes", fixed("/?urgent=yes"), _inbox_check(None)),
        Page("assignee=someone", fixed(f"/?assignee={assignee}"), _inbox_check(None)),
        Page("incomplete=yes", fixed("/?incomplete=yes"), _inbox_check(None)),
        Page("deep page (after=middle)", fixed(f"/?after={deep}"), _inbox_check(deep_rows)),
        Page("report page", report, _report_check),
    ]


async def measure(
    client: TestClient[Any, Any], meter: Meter, chosen: list[Page], requests: int, keyholder: bool
) -> dict[str, Figures]:
    """Every page in turn, ``requests`` rounds after the warm-up: a spell of load from
    elsewhere on the machine then weighs on all pages (and the baseline) alike."""
    samples: dict[str, list[tuple[float, float]]] = {page.name: [] for page in chosen}
    rows: dict[str, int] = {}
    for n in range(WARMUP + requests):
        for page in chosen:
            meter.samples.clear()
            async with client.get(page.paths(n), allow_redirects=False) as response:
                html = await response.text()
                assert response.status == 200, (page.name, response.status)
            rows.setdefault(page.name, len(_ROW.findall(html)))
            if n < WARMUP:
                try:
                    page.check(html, keyholder)
                except AssertionError as exc:
                    raise AssertionError(f"{page.name}: {exc}") from None
            else:
                [sample] = meter.samples
                samples[page.name].append(sample)
    return {name: Figures.of(taken, rows[name]) for name, taken in samples.items()}


# --- Query plans ---------------------------------------------------------------------------


@contextlib.contextmanager
def capture(app: App) -> Iterator[list[tuple[str, Any]]]:
    """The statements (as the driver gets them, with their parameters) run meanwhile."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(app.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(app.engine.sync_engine, "before_cursor_execute", record)


def _select(seen: list[tuple[str, Any]]) -> tuple[str, Any]:
    return next(item for item in seen if item[0].lstrip().upper().startswith("SELECT"))


async def explain(app: App, statement: str, parameters: Any) -> list[str]:
    sqlite = is_sqlite(app.settings.database_url)
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "
    async with app.engine.connect() as connection:
        result = await connection.exec_driver_sql(prefix + statement, parameters)
        rows = [tuple(row) for row in result.all()]
    if sqlite:  # (id, parent, notused, detail): indent by depth
        depth: dict[int, int] = {0: -1}
        lines = []
        for row in rows:
            node, parent, detail = int(row[0]), int(row[1]), str(row[3])
            depth[node] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node] + detail)
    else:
        lines = [str(row[0]) for row in rows]
    # PostgreSQL spells out a 50-id IN list in full.
    width = 2 * PLAN_WIDTH
    return [line if len(line) <= width else line[: width - 1] + "…" for line in lines]


async def plans(app: App, loaded: Loaded, assignee: bytes) -> None:
    middle = inbox_repo.Cursor(*loaded.order[len(loaded.order) // 2])
    queries: list[tuple[str, inbox_repo.InboxFilter, inbox_repo.Cursor | None]] = [
        ("unfiltered", inbox_repo.InboxFilter(), None),
        ("status=in_review", inbox_repo.InboxFilter(status="in_review"), None),
        (f"label={COMMON_LABEL}", inbox_repo.InboxFilter(label=COMMON_LABEL), None),
        ("label=rare", inbox_repo.InboxFilter(label=RARE_LABEL), None),
        ("urgent=yes", inbox_repo.InboxFilter(urgent=True), None),
        ("assignee=someone", inbox_repo.InboxFilter(assignee=assignee), None),
        ("incomplete=yes", inbox_repo.InboxFilter(incomplete=True), None),
        ("deep page (after=middle)", inbox_repo.InboxFilter(), middle),
    ]
    for name, wanted, after in queries:
        async with app.sessions() as session:
            with capture(app) as seen:
                await inbox_repo.page(session, wanted, after)
        statement, parameters = _select(seen)
        print(f"-- inbox, {name}:")
        if name == "unfiltered":
            print("   " + " ".join(statement.split()))
        for line in await explain(app, statement, parameters):
            print("   " + line)


INBOX_ORDER = "ORDER BY reports.urgent DESC, reports.created_on DESC"
REPORTER_TABLES = re.compile(
    r"\b(FROM|JOIN)\s+(reports|report_keys|payloads|attachments|report_labels|report_links"
    r"|audit_log|labels)\b"
)


PARAMETERS = re.compile(r"(\?|\$\d+(::\w+)?)(, (\?|\$\d+(::\w+)?))+")
PLAN_WIDTH = 160


def _short(statement: str) -> str:
    text = re.sub(PARAMETERS, "...", " ".join(statement.split()))
    return text if len(text) <= PLAN_WIDTH else text[: PLAN_WIDTH - 1] + "…"


async def page_plans(app: App, client: TestClient[Any, Any], path: str) -> None:
    """The plan of every query on reporter data or the audit log that one page runs
    (once each: the key-holder inbox runs the same two per row)."""
    with capture(app) as seen:
        async with client.get(path) as response:
            assert response.status == 200, (path, response.status)
    done: set[str] = set()
    for statement, parameters in seen:
        if statement in done or not statement.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        done.add(statement)
        if not REPORTER_TABLES.search(statement) or INBOX_ORDER in statement:
            continue  # staff and session look-ups; the inbox query is shown above
        print(f"-- {_short(statement)}")
        for line in await explain(app, statement, parameters):
            print("   " + line)


# --- Runs ----------------------------------------------------------------------------------

NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
ROLES = ("keyholder", "reviewer")
Results = dict[tuple[str, str], Figures]


async def _postgres_database() -> tuple[str, str]:
    name = f"intake_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    await admin.close()
    return name, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def _drop_postgres(name: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


def _print_run(results: Results) -> None:
    print(
        f"{'role':<10} {'page':<28} {'rows':>4} {'median ms':>9} {'p95 ms':>8} {'db ms':>7}"
        f" {'x base':>7}"
    )
    for role in ROLES:
        base = results[role, PAGE_NAMES[0]].median
        for name in PAGE_NAMES:
            figures = results[role, name]
            print(
                f"{role:<10} {name:<28} {figures.rows or '':>4} {figures.median:>9.2f}"
                f" {figures.p95:>8.2f} {figures.db:>7.2f} {figures.median / base:>7.2f}"
            )


async def run(database: str, size: int, requests: int, show_plans: bool) -> Results:
    """One fresh installation with ``size`` reports; every page as both roles."""
    work = Path(tempfile.mkdtemp(prefix="intake-bench-inbox-"))
    env = {
        "INTAKE_DATA_DIR": str(work / "data"),
        "INTAKE_RUNTIME_DIR": str(work / "runtime"),
        "INTAKE_KDF_PROFILE": "insecure-test",
        "INTAKE_LOG_LEVEL": "WARNING",
        "INTAKE_ADMIN_SECURE_COOKIES": "false",
        "INTAKE_ADMIN_IDLE_MINUTES": "600",
    }
    (work / "runtime").mkdir(mode=0o700)
    pg_name = None
    if database == "postgresql":
        pg_name, env["INTAKE_DATABASE_URL"] = await _postgres_database()
    results: Results = {}
    try:
        async with open_app(load_settings(env)) as app:
            admin, reviewer, others = await setup_staff(app)
            started = time.perf_counter()
            loaded = await load_reports(app, size, [m.id for m in others])
            print(
                f"\n{NAMES[database]}, {size:,} reports"
                f" (written in {time.perf_counter() - started:.1f} s)"
            )
            if show_plans:
                print("Plans of the inbox query, by filter:")
                await plans(app, loaded, others[0].id)
            web_app = create_app(app)
            meter = Meter()
            meter.install(app, web_app)
            async with TestClient(TestServer(web_app), cookie_jar=CookieJar(unsafe=True)) as client:
                for role, member in zip(ROLES, (admin, reviewer), strict=True):
                    client.session.cookie_jar.clear()
                    await login(client, app, member)
                    if show_plans and role == "keyholder":
                        for path in ("/", f"/reports/{loaded.sample[0].hex()}"):
                            print(f"Plans of the other queries of a key-holder's {path}:")
                            await page_plans(app, client, path)
                    measured = await measure(
                        client, meter, pages(loaded, others[0].name), requests, role == ROLES[0]
                    )
                    results.update(((role, name), figures) for name, figures in measured.items())
        _print_run(results)
    finally:
        if pg_name:
            await _drop_postgres(pg_name)
        shutil.rmtree(work, ignore_errors=True)
    return results


PAGE_NAMES = [
    page.name
    for page in pages(Loaded([(False, dt.date(2026, 1, 1), bytes(16))] * 2, [bytes(16)]), "x")
]


def _print_scaling(all_results: dict[tuple[str, int], Results], sizes: list[int]) -> None:
    small, large = sizes[0], sizes[-1]
    print(
        f"\nMedian server ms by size. ratio: the median at {large:,} reports over the one at"
        f" {small:,};\nx base ratio: the same for the medians over their run's baseline (drift"
        " in the machine's load between runs cancels out)."
    )
    header = "".join(f"{f'{size:,}':>10}" for size in sizes)
    print(f"{'database':<11} {'role':<10} {'page':<28}{header} {'ratio':>7} {'x base ratio':>12}")
    for database in dict.fromkeys(d for d, _ in all_results):
        for role in ROLES:
            bases = [all_results[database, size][role, PAGE_NAMES[0]].median for size in sizes]
            for name in PAGE_NAMES:
                medians = [all_results[database, size][role, name].median for size in sizes]
                cells = "".join(f"{m:>10.2f}" for m in medians)
                ratio = medians[-1] / medians[0]
                relative = (medians[-1] / bases[-1]) / (medians[0] / bases[0])
                print(
                    f"{NAMES[database]:<11} {role:<10} {name:<28}{cells} {ratio:>7.2f}"
                    f" {relative:>12.2f}"
                )


async def main(sizes: list[int], databases: list[str], requests: int) -> None:
    print(
        f"staff inbox benchmark: {requests} requests per page after {WARMUP} warm-up,"
        f" {inbox_repo.PAGE_SIZE} rows a page; server time from the outermost middleware"
    )
    print("baseline: /account/password, same session and middleware stack, same run")
    all_results: dict[tuple[str, int], Results] = {}
    for database in databases:
        for size in sizes:
            all_results[database, size] = await run(
                database, size, requests, show_plans=size == max(sizes)
            )
    if len(sizes) > 1:
        _print_scaling(all_results, sizes)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=None, help="report counts, e.g. 1000,100000")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--requests", type=int, default=None, help="timed requests per page")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1000 and 2000 reports, 10 requests"
    )
    options = parser.parse_args()
    chosen_sizes = options.sizes or ("1000,2000" if options.quick else "1000,100000")
    chosen_databases = [d.strip() for d in options.databases.split(",") if d.strip()]
    if unknown := set(chosen_databases) - set(NAMES):
        parser.error(f"unknown database: {', '.join(sorted(unknown))}")
    asyncio.run(
        main(
            sorted(int(s) for s in chosen_sizes.split(",")),
            chosen_databases,
            options.requests or (10 if options.quick else 100),
        )
    )

"""The staff web app in a real browser: Debian's Chromium driven by Playwright.

One installation for the module, on SQLite (the pages are what is tested here, not the
database): the real bot runs against the Bot API simulator and a reporter sends it a
report whose answers are HTML and script (and a document file); then the admin web app is
served from the same thread and event loop (the sync Playwright fixtures drive the browser
from the main thread). In Chromium,

* a new key-holder enrols from their one-time link (password twice, the code of the TOTP
  secret the page shows), sees their recovery codes and key fingerprint; the first member
  grants them the keys on the Keys page after typing that fingerprint; the new key-holder
  logs in with password and code;
* they read the report made through the bot: the reporter's HTML shows as literal text, no
  script ran and no dialog opened; they download the file (its SHA-256 is the original's),
  change the status and add a note, which shows on the page;
* a reviewer logs in and sees the inbox and the report page with no content at all (no
  answers, no summary, no file names), may not fetch a file, and can change the status.

The admin runs with the production cookie settings (``Secure`` cookies): Chromium keeps
them on http://127.0.0.1, a loopback address being a secure context.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pyotp
import pytest
from aiohttp import web
from harness import ADMIN_PASSWORD as FIRST_PASSWORD
from harness import (
    BotRun,
    SteadyReporter,
    Walker,
    compact_questionnaire,
    last_with_buttons,
    running_bot,
)
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    expect,
    sync_playwright,
)
from sqlalchemy import select
from web.harness import forget_used_codes, make_report

from admin.app import create_app
from intake_bot.bootstrap import App
from intake_bot.config import Settings, load_settings
from intake_bot.questionnaire.loader import load_file
from intake_bot.services import accounts
from intake_bot.storage import reports as report_repo
from intake_bot.storage import staff as staff_repo
from intake_bot.storage.models import Report, ReportState, Role

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FIRST = "amina"
"""The installation's first member (admin and key-holder), made by ``running_bot``."""

SCRIPT_ANSWER = "They came at night. <script>window.__xss=1</script> Then they left."
IMAGE_ANSWER = 'My brother Elnur. <img src=x onerror="window.__xss=2"> He is held in Baku.'
FILE_NAME = "summons <b>14 March</b>.pdf"
NOTE = "Called the lawyer <i>today</i>; follow up on Friday."
KEEP = {
    "safety": ["notice", "urgent", "urgent_details"],
    "event": ["violations", "event_account"],
    "evidence": ["evidence_files"],
}
T = TypeVar("T")


def document_bytes() -> bytes:
    """A PDF-looking file of several 64 KiB encryption chunks, random in the middle."""
    return b"%PDF-1.4\n% a summons\n" + os.urandom(150_000) + b"\n%%EOF\n"


@dataclass
class Installation:
    """The running system: the admin web app's root URL, the event loop it runs on, and
    what the reporter sent through the bot."""

    admin: str
    loop: asyncio.AbstractEventLoop
    app: App
    report: str
    file: str
    sent: bytes

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop (the app's engine belongs to it)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)


# --- the installation ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite, from a plain fixture: the sync Playwright API keeps an event loop running in
    the main thread, where pytest-asyncio cannot set up async fixtures."""
    assert request.param == "sqlite"
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'intake.db'}"


@pytest.fixture(scope="module")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A throw-away installation with a compact questionnaire (text, choices, files)."""
    root = tmp_path_factory.mktemp("installation")
    return load_settings(
        {
            "INTAKE_DATA_DIR": str(root / "data"),
            "INTAKE_DATABASE_URL": database_url,
            "INTAKE_KDF_PROFILE": "insecure-test",
            "INTAKE_RUNTIME_DIR": str(root / "runtime"),
            "INTAKE_QUESTIONNAIRE": str(compact_questionnaire(root / "questionnaire.yaml", KEEP)),
        }
    )


async def report_through_the_bot(run: BotRun, sent: bytes) -> None:
    """A reporter answers with HTML and script and sends a document; submits."""
    settings = run.settings
    assert settings.questionnaire is not None
    user = await run.client.create_user("Leyla", language_code="en")
    reporter = SteadyReporter(run.client, user)
    walker = Walker(reporter, load_file(settings.questionnaire))
    walker.choices.update(urgent="someone_else", violations=["arbitrary_arrest"])
    walker.texts.update(urgent_details=IMAGE_ANSWER, event_account=SCRIPT_ANSWER)
    walker.files["evidence_files"] = [(FILE_NAME, sent)]
    messages = await reporter.say("/start")
    messages = await reporter.press(messages[-1], "L:en")
    messages = await walker.to_review(messages)
    messages = await reporter.press(last_with_buttons(messages), "P")
    assert any("receipt code" in str(m.get("text")) for m in messages), messages


async def _serve(settings: Settings, started: Future[Installation], stop: threading.Event) -> None:
    async with running_bot(settings) as run:
        sent = document_bytes()
        await report_through_the_bot(run, sent)
        await run.halt()
        async with run.app.sessions() as session:
            report_id = await session.scalar(
                select(Report.id).where(Report.state == ReportState.SUBMITTED.value)
            )
            assert report_id is not None
            [file_id] = await report_repo.attachments(session, report_id)
        runner = web.AppRunner(create_app(run.app), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            port = runner.addresses[0][1]
            started.set_result(
                Installation(
                    f"http://127.0.0.1:{port}",
                    asyncio.get_running_loop(),
                    run.app,
                    report_id.hex(),
                    file_id.hex(),
                    sent,
                )
            )
            await asyncio.to_thread(stop.wait)
        finally:
            await runner.cleanup()


@pytest.fixture(scope="module")
def installation(settings: Settings) -> Iterator[Installation]:
    """The bot (halted once the report is in) and the admin web app, in a thread with its
    own event loop."""
    started: Future[Installation] = Future()
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="admin") as pool:
        running = pool.submit(asyncio.run, _serve(settings, started, stop))
        either: list[Future[Any]] = [started, running]
        wait(either, timeout=90, return_when=FIRST_COMPLETED)
        if running.done():
            running.result()  # the start failed: raise its error here
        try:
            yield started.result(timeout=0)
        finally:
            stop.set()
            running.result(timeout=30)


# --- the browser --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, for this module only (the sync API's loop must stop before other
    modules' async tests run)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser, installation: Installation) -> Iterator[BrowserContext]:
    """A fresh browser profile per test. (Asking for the installation first also starts it
    before the browser page and stops it after the page closed.)"""
    fresh = browser.new_context(locale="en-GB", timezone_id="UTC")
    fresh.set_default_timeout(10_000)
    expect.set_options(timeout=10_000)
    yield fresh
    fresh.close()
    expect.set_options(timeout=5_000)


@dataclass
class Watch:
    """Every dialog a page opened and every error in its console (there should be none)."""

    dialogs: list[str]
    console_errors: list[str]

    @classmethod
    def on(cls, page: Page) -> Watch:
        watch = cls([], [])

        def dialog(opened: Dialog) -> None:
            watch.dialogs.append(opened.message)
            opened.dismiss()

        def console(message: ConsoleMessage) -> None:
            if message.type == "error":
                watch.console_errors.append(message.text)

        page.on("dialog", dialog)
        page.on("console", console)
        return watch


# --- a member in the browser ---------------------------------------------------------------


@dataclass
class Enrolled:
    name: str
    password: str
    totp_secret: str
    recovery_codes: list[str]
    fingerprint: str | None


def invite(installation: Installation, name: str, role: Role) -> str:
    """An admin adds a member; their one-time enrolment link on this server."""
    invitation = installation.call(accounts.add_member(installation.app, name, [role]))
    return f"{installation.admin}/enrol/{invitation.token}"


def enrol(page: Page, link: str, name: str) -> Enrolled:
    """Fill the enrolment page as a new member does, with an authenticator app (pyotp)
    fed the key the page shows."""
    password = f"quiet orchard {name} lantern 1987"
    page.goto(link)
    expect(page.get_by_role("heading", name=f"Welcome, {name}")).to_be_visible()
    expect(page.get_by_role("img", name="QR code of your second-factor key")).to_be_visible()
    shown = page.locator("figure.qr figcaption code").inner_text()
    secret = shown.replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), shown
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("New password again").fill(password)
    page.get_by_label("Code from the authenticator app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Enrol").click()
    expect(page.get_by_role("heading", name=f"You are enrolled, {name}")).to_be_visible()
    codes = page.locator("ul.codes li").all_inner_texts()
    assert len(codes) == 10, codes
    assert len(set(codes)) == 10, codes
    fingerprint = page.locator("p.fingerprint code")
    printed = fingerprint.inner_text() if fingerprint.count() else None
    return Enrolled(name, password, secret, codes, printed)


def log_in(page: Page, installation: Installation, name: str, password: str, secret: str) -> None:
    """The two login forms: name and password, then the authenticator's code. (The code
    of the moment is made usable again first: enrolment used it, and each code counts once.)"""
    installation.call(forget_used_codes(installation.app, name))
    page.goto(f"{installation.admin}/login")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Next").click()
    expect(page).to_have_url(f"{installation.admin}/login/code")
    page.get_by_label("Code from your authenticator app, or a recovery code").fill(
        pyotp.TOTP(secret).now()
    )
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{installation.admin}/")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page.locator("header.top .who")).to_have_text(name)


def first_member_secret(installation: Installation) -> str:
    async def read() -> str:
        async with installation.app.sessions() as session:
            creds = await staff_repo.credentials(session, FIRST)
        assert creds is not None
        return creds.totp_secret

    return installation.call(read())


# --- tests ----------------------------------------------------------------------------------


def test_a_new_keyholder_enrols_is_granted_the_keys_and_triages_a_report_from_the_bot(
    installation: Installation, browser: Browser, context: BrowserContext
) -> None:
    admin = installation.admin
    # The new key-holder enrols from the link an admin made for them.
    newcomer = context.new_page()
    watch_newcomer = Watch.on(newcomer)
    zaur = enrol(newcomer, invite(installation, "zaur", Role.KEYHOLDER), "zaur")
    assert zaur.fingerprint is not None
    assert re.fullmatch(r"[0-9A-F]{4}( [0-9A-F]{4})+", zaur.fingerprint), zaur.fingerprint
    # The link works once.
    again = newcomer.goto(newcomer.url)
    assert again is not None
    assert again.status == 404
    watch_newcomer.console_errors.clear()  # that 404, on purpose

    # The first member, in a browser of their own, grants the keys after comparing the
    # fingerprint (read to them out of band, typed here in lower case without spaces).
    first = browser.new_context(locale="en-GB", timezone_id="UTC")
    try:
        page = first.new_page()
        watch_first = Watch.on(page)
        log_in(
            page,
            installation,
            FIRST,
            FIRST_PASSWORD.reveal().decode(),
            first_member_secret(installation),
        )
        page.get_by_role("link", name="Keys").click()
        expect(page.get_by_role("heading", name="Grant the keys to a key-holder")).to_be_visible()
        # The Keys page has several forms, each asking for the password: use the grant one.
        grant = page.get_by_role("region", name="Grant the keys to a key-holder")
        grant.get_by_label("Key-holder", exact=True).select_option("zaur")
        grant.get_by_label("Their fingerprint, as they read it to you").fill(
            zaur.fingerprint.replace(" ", "").lower()
        )
        grant.get_by_label("Your password (to confirm)").fill(FIRST_PASSWORD.reveal().decode())
        grant.get_by_role("button", name="Grant").click()
        expect(page.get_by_role("status")).to_contain_text(
            "zaur now holds the organisation keys you hold (1 newly granted)"
        )
        expect(page.get_by_role("status")).to_contain_text("and the signing key")
        assert watch_first.dialogs == []
        assert watch_first.console_errors == []
    finally:
        first.close()

    # The new key-holder logs in with password and code, and reads the inbox.
    log_in(newcomer, installation, "zaur", zaur.password, zaur.totp_secret)
    inbox = newcomer.locator("table.inbox")
    expect(inbox.get_by_role("columnheader", name="Summary")).to_be_visible()
    row = inbox.locator("tbody tr").filter(has=newcomer.locator("strong.urgent"))
    expect(row).to_have_count(1)
    expect(row.locator("td.summary")).to_have_text(IMAGE_ANSWER)  # literal text
    expect(inbox.locator("tbody img, tbody script")).to_have_count(0)

    # The report made through the bot: the reporter's HTML is literal text.
    row.get_by_role("link").click()
    expect(newcomer).to_have_url(f"{admin}/reports/{installation.report}")
    answers = newcomer.locator("dl.answers")
    expect(answers.get_by_text(SCRIPT_ANSWER, exact=True)).to_be_visible()
    expect(answers.get_by_text(IMAGE_ANSWER, exact=True)).to_be_visible()
    expect(answers.get_by_text("Arrest or detention", exact=True)).to_be_visible()
    expect(newcomer.locator("main").locator("script, img[src='x'], b, i")).to_have_count(0)
    assert newcomer.evaluate("typeof window.__xss") == "undefined"

    # The file: its name as text, its digest, and a download that is byte for byte the
    # document the reporter sent.
    digest = hashlib.sha256(installation.sent).hexdigest()
    files = newcomer.locator("table.files")
    link = files.get_by_role("link", name=FILE_NAME, exact=True)
    expect(link).to_be_visible()
    expect(files.locator("code.digest")).to_have_text(digest)
    with newcomer.expect_download() as downloading:
        link.click()
    download = downloading.value
    # Chromium makes "<", ">" and "/" in a file name "_"; the server sent the name as it was.
    assert download.suggested_filename == re.sub(r"[<>/]", "_", FILE_NAME)
    disposition = newcomer.request.get(link.evaluate("(a) => a.href")).headers
    assert disposition["content-disposition"] == "attachment; filename*=UTF-8''" + quote(
        FILE_NAME, safe=""
    )
    assert download.failure() is None
    saved = Path(download.path())
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == digest
    expect(newcomer).to_have_url(f"{admin}/reports/{installation.report}")

    # Triage: new -> in review, and a note (HTML in it is text too).
    expect(newcomer.locator("#current-status")).to_have_text("New")
    newcomer.get_by_label("New status").select_option(label="In review")
    newcomer.get_by_role("button", name="Change status").click()
    expect(newcomer.locator("#current-status")).to_have_text("In review")
    newcomer.get_by_label("Add a note (encrypted; only key-holders can read it)").fill(NOTE)
    newcomer.get_by_role("button", name="Add note").click()
    note = newcomer.locator("article.note")
    expect(note).to_have_count(1)
    expect(note.locator("p")).to_have_text(NOTE)
    expect(note.locator("header")).to_contain_text("zaur")
    expect(note.locator("i")).to_have_count(0)
    history = newcomer.locator("table.history")
    for action in ("report.status", "report.note", "report.file"):
        expect(history).to_contain_text(action)

    assert newcomer.evaluate("typeof window.__xss") == "undefined"
    assert watch_newcomer.dialogs == []
    assert watch_newcomer.console_errors == []


def test_a_reviewer_sees_no_content_but_can_change_the_status(
    installation: Installation, context: BrowserContext
) -> None:
    """A reviewer triages on the clear fields only: not one word of any report."""
    admin = installation.admin
    own = installation.call(make_report(installation.app, [("event_account", ["a draft"])]))
    page = context.new_page()
    watch = Watch.on(page)
    reviewer = enrol(page, invite(installation, "rena", Role.REVIEWER), "rena")
    assert reviewer.fingerprint is None  # a reviewer holds no key
    log_in(page, installation, "rena", reviewer.password, reviewer.totp_secret)

    secrets_of_reports = (SCRIPT_ANSWER, IMAGE_ANSWER, FILE_NAME, NOTE, "a draft")

    def no_content() -> None:
        html = page.content()
        for text in secrets_of_reports:
            for form in (text, text.replace("<", "&lt;").replace(">", "&gt;")):
                assert form not in html, text
        for word in ("They came at night", "Elnur", "summons", "lawyer", "Arrest or detention"):
            assert word not in html, word

    inbox = page.locator("table.inbox")
    expect(inbox.locator("tbody tr")).to_have_count(2)
    expect(inbox.get_by_role("columnheader", name="Summary")).to_have_count(0)
    expect(inbox.get_by_role("columnheader", name="Files")).to_have_count(0)
    expect(page.get_by_role("link", name="Keys")).to_have_count(0)
    no_content()

    # The report made through the bot: clear fields and history, no content section.
    page.goto(f"{admin}/reports/{installation.report}")
    expect(page.get_by_role("heading", name="Triage")).to_be_visible()
    expect(page.get_by_role("heading", name="Content")).to_have_count(0)
    expect(page.locator("dl.answers, table.files, article.note, #note")).to_have_count(0)
    no_content()
    # Nor can a reviewer fetch a file or post a note by typing the address.
    file_url = f"{admin}/reports/{installation.report}/files/{installation.file}"
    assert page.request.get(file_url).status == 403
    assert page.request.get(f"{file_url}/image").status == 403

    # The status of their own report: whatever comes next, chosen and shown.
    page.goto(f"{admin}/reports/{own.hex()}")
    expect(page.locator("#current-status")).to_have_text("New")
    page.get_by_label("New status").select_option(label="In review")
    page.get_by_role("button", name="Change status").click()
    expect(page).to_have_url(f"{admin}/reports/{own.hex()}")
    expect(page.locator("#current-status")).to_have_text("In review")
    expect(page.locator("table.history")).to_contain_text("rena")
    no_content()
    page.goto(f"{admin}/?status=in_review")
    expect(page.locator(f'table.inbox a[href="/reports/{own.hex()}"]')).to_have_count(1)
    no_content()
    assert watch.dialogs == []
    assert watch.console_errors == []

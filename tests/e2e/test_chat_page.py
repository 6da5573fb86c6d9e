"""The simulator's chat page in a real browser: Debian's Chromium driven by Playwright.

The simulator and the real bot run in a thread with their own event loop (the sync
Playwright fixtures drive the browser from the main thread), on SQLite only: the page is
what is tested here, not the database. A reporter plays the whole conversation on the
page, from /start to the receipt, with the page's own buttons, composer and attach
control; other tests check that text is never HTML, that the security headers are
exactly as strict as designed, that two tabs play two users apart, and that what the
Bot API does (reply keyboards, edits, deletions, photos) shows on the page live.
"""

from __future__ import annotations

import asyncio
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import pytest
from harness import TOKEN, running_bot
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    FilePayload,
    Locator,
    Page,
    expect,
    sync_playwright,
)

from intake_bot.config import Settings

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
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""Written out here rather than imported, so that loosening the page's policy fails."""

QUESTION = '[data-from="bot"]:has(.kb-button)'
"""A bot message with inline buttons; the newest one is the question being asked."""
MESSAGES = "[data-message-id]"
RECEIPT = re.compile(r"Your receipt code is:\s+([a-z]+(?:-[a-z]+){5,})\s")
XSS = "<img src=x onerror=alert(1)>"
INTERNAL_ERROR = "Something went wrong on our side."


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (Playwright's own browser download is not available here), for
    this module only: the sync Playwright API keeps an event loop running in the main
    thread while it is started, so it must stop before other modules' async tests run."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile per test (no cookies or storage shared between tests)."""
    fresh = browser.new_context()
    yield fresh
    fresh.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite in tmp_path, from a plain fixture: the sync Playwright API keeps an event
    loop running in the main thread, where pytest-asyncio cannot set up async fixtures
    (the shared ``database_url`` is one)."""
    assert request.param == "sqlite"
    return f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}"


async def _serve(settings: Settings, started: Future[str], stop: threading.Event) -> None:
    async with running_bot(settings) as run:
        started.set_result(run.server.url)
        await asyncio.to_thread(stop.wait)


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    """The simulator and the real bot, in a thread with its own event loop; its root URL."""
    started: Future[str] = Future()
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="simulator") as pool:
        running = pool.submit(asyncio.run, _serve(settings, started, stop))
        either: list[Future[Any]] = [started, running]
        wait(either, timeout=60, return_when=FIRST_COMPLETED)
        if running.done():
            running.result()  # the start failed: raise its error here
        try:
            yield started.result(timeout=0)
        finally:
            stop.set()
            running.result(timeout=30)


@pytest.fixture(autouse=True)
def quick_failures(server: str, page: Page) -> Iterator[None]:
    """Fail within seconds, not Playwright's default 30 s per action. (Asking for the
    server first also starts it before the browser page and stops it after the page
    closed, so that no long poll of the page holds up its shutdown.)"""
    page.set_default_timeout(10_000)
    expect.set_options(timeout=10_000)
    yield
    expect.set_options(timeout=5_000)


@pytest.fixture
def dialogs(page: Page) -> list[str]:
    """Every alert, confirm or prompt the page opens (there should be none)."""
    opened: list[str] = []

    def record(dialog: Dialog) -> None:
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return opened


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """Errors in the page's console, such as Content-Security-Policy violations."""
    errors: list[str] = []

    def record(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", record)
    return errors


# --- playing a reporter ---------------------------------------------------------------------


class Reporter:
    """One simulated user on the page: opens their chat, sends, presses buttons."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.seen: str | None = None

    def create(self, base: str, name: str, language: str = "en") -> Reporter:
        self.page.goto(f"{base}/chat")
        self.page.get_by_label("Name", exact=True).fill(name)
        self.page.get_by_label("Telegram app language").select_option(language)
        self.page.get_by_role("button", name="Create and open the chat").click()
        expect(self.page).to_have_url(re.compile(r"/chat\?user=\d+$"))
        expect(self.page.get_by_role("heading", name="Intake")).to_be_visible()
        return self

    def start(self) -> Reporter:
        """Press Start (a new chat with a bot has no composer before it) and wait for the
        bot's language question."""
        self.page.get_by_role("button", name="Start", exact=True).click()
        expect(self.mine.get_by_text("/start", exact=True)).to_be_visible()
        expect(self.page.locator(QUESTION).last).to_contain_text("Choose your language")
        return self

    @property
    def log(self) -> Locator:
        return self.page.get_by_role("log", name="Messages")

    def say(self, text: str) -> None:
        """Type into the composer and press Enter; wait until the message shows."""
        box = self.page.get_by_role("textbox", name="Message", exact=True)
        box.fill(text)
        box.press("Enter")
        expect(self.mine.get_by_text(text, exact=True)).to_be_visible()

    @property
    def mine(self) -> Locator:
        return self.page.locator('[data-from="user"]')

    def bot_answered(self) -> None:
        """The newest message in the chat is the bot's."""
        expect(self.page.locator(MESSAGES).last).to_have_attribute("data-from", "bot")

    def next_question(self) -> Locator:
        """The newest bot message with buttons, once it is newer than the last one seen."""
        question = self.page.locator(QUESTION).last
        if self.seen is not None:
            expect(question).not_to_have_attribute("data-message-id", self.seen)
        self.seen = question.get_attribute("data-message-id")
        return question

    def latest_question(self) -> Locator:
        """The newest question after the bot answered something that was sent."""
        self.bot_answered()
        question = self.page.locator(QUESTION).last
        self.seen = question.get_attribute("data-message-id")
        return question

    def button(self, question: Locator, name: str) -> Locator:
        return question.get_by_role("button", name=name, exact=True)


def sample_png(width: int = 64, height: int = 48) -> bytes:
    """A small valid PNG, made without an image library."""
    pixels = b"".join(
        b"\x00" + b"".join(bytes((x * 4 % 256, 120, 200 - y * 3)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


def upload(name: str, mime_type: str, data: bytes) -> FilePayload:
    return {"name": name, "mimeType": mime_type, "buffer": data}


PDF = b"%PDF-1.4\n% the protocol of the search\n" + b"0" * 12_000 + b"\n%%EOF\n"


def image_loaded(image: Locator) -> bool:
    return bool(image.evaluate("(img) => img.complete && img.naturalWidth > 0"))


# --- tests ----------------------------------------------------------------------------------


def test_a_reporter_goes_from_start_to_the_receipt_on_the_page(
    server: str, page: Page, dialogs: list[str], console_errors: list[str]
) -> None:
    me = Reporter(page).create(server, "Leyla", "en")
    expect(page.get_by_role("textbox", name="Message")).to_be_hidden()  # not before Start
    me.start()

    languages = me.next_question()
    expect(languages).to_contain_text("Choose your language")
    me.button(languages, "English").focus()  # the keyboard works as well as the mouse
    page.keyboard.press("Enter")
    me.button(me.next_question(), "I understand").click()
    me.button(me.next_question(), "No").click()

    for _ in range(80):
        question = me.next_question()
        text = question.inner_text()
        names = question.locator(".kb-button").all_inner_texts()
        if "Submit the report" in names:
            break
        if "If you have files" in text:
            page.get_by_label("Photo file").set_input_files(
                files=[upload("street.png", "image/png", sample_png())]
            )
            photo = me.mine.get_by_role("img", name="Photo")
            expect(photo).to_be_visible()
            me.bot_answered()
            page.get_by_role("button", name="Attach", exact=True).click()
            with page.expect_file_chooser() as chooser:
                page.get_by_role("button", name="Document", exact=True).click()
            chooser.value.set_files(files=[upload("search.pdf", "application/pdf", PDF)])
            document = me.mine.filter(has_text="search.pdf")
            expect(document).to_contain_text("11.8 KB")
            assert image_loaded(photo), "the photo's thumbnail did not load"
            done = me.button(me.latest_question(), "Done")  # on the bot's "File saved (2..."
            before = page.locator(MESSAGES).count()
            done.click()
            expect(page.locator(MESSAGES)).not_to_have_count(before)
            assert INTERNAL_ERROR not in page.locator(MESSAGES).last.inner_text()
        elif "Skip" in names:
            me.button(question, "Skip").click()
        else:  # a multiple choice: tick one, which edits the message in place, then Done
            me.button(question, names[0]).click()
            ticked = me.button(question, f"✓ {names[0]}")
            expect(ticked).to_be_visible()
            assert question.get_attribute("data-message-id") == me.seen
            me.button(question, "Done").click()
    else:
        pytest.fail("the questionnaire did not reach the summary")

    expect(question).to_contain_text("Here is a summary of your answers")
    expect(question).to_contain_text("2 file(s)")
    me.button(question, "Submit the report").click()

    receipt = page.locator(MESSAGES).filter(has_text="Your receipt code is:")
    expect(receipt).to_be_visible()
    code = RECEIPT.search(receipt.inner_text())
    assert code is not None, receipt.inner_text()
    # The wipe: the conversation vanished from the page, the closing notes and receipt stay.
    expect(page.locator(MESSAGES)).to_have_count(3)
    expect(me.log).to_contain_text("Thank you. Your report has been sent")
    expect(me.log).to_contain_text("We have deleted this conversation")
    for gone in ("/start", "search.pdf", "Choose your language", "Here is a summary"):
        expect(me.log).not_to_contain_text(gone)
    expect(me.log.get_by_role("img", name="Photo")).to_have_count(0)
    # Every message of the bot is protected, and the page says so.
    badges = page.locator('[data-from="bot"]').get_by_text("protected", exact=True)
    expect(badges).to_have_count(page.locator(MESSAGES).count())
    expect(page.get_by_text("in real Telegram they cannot be forwarded")).to_be_visible()

    me.button(receipt, "I have written it down").click()
    expect(receipt).to_have_count(0)
    expect(page.locator(MESSAGES)).to_have_count(2)

    page.get_by_role("button", name="Chat options").click()
    page.get_by_label("Show deleted messages").check()
    expect(me.mine.get_by_text("/start", exact=True)).to_be_visible()
    expect(page.locator(".msg.deleted").first).to_contain_text("deleted")
    assert dialogs == []
    assert console_errors == []


def test_text_is_never_html_and_the_headers_are_strict(
    server: str, page: Page, dialogs: list[str], console_errors: list[str]
) -> None:
    response = page.goto(f"{server}/")
    assert response is not None
    assert response.url == f"{server}/chat"
    headers = response.headers
    assert headers["content-security-policy"] == STRICT_CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    for asset, kind in (("chat.js", "text/javascript"), ("chat.css", "text/css")):
        served = page.request.get(f"{server}/chat/static/{asset}")
        assert served.ok
        assert served.headers["content-type"].startswith(kind)
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.headers["content-security-policy"] == STRICT_CSP
    assert page.request.get(f"{server}/chat/static/..%2Fpage.py").status == 404

    me = Reporter(page).create(server, XSS).start()  # a user's name is text too
    expect(page.get_by_text(f"as {XSS} · en", exact=True)).to_be_visible()
    me.say(XSS)
    me.bot_answered()
    page.get_by_role("button", name="Attach", exact=True).click()
    page.get_by_role("button", name="Forwarded message", exact=True).click()
    page.get_by_label("Name of the person, channel or group").fill("<b>the officer</b>")
    page.get_by_label("Message text").fill("<script>alert(2)</script>")
    page.get_by_role("button", name="Forward", exact=True).click()
    expect(me.mine.get_by_text("Forwarded from <b>the officer</b>", exact=True)).to_be_visible()
    expect(me.mine.get_by_text("<script>alert(2)</script>", exact=True)).to_be_visible()
    me.bot_answered()

    expect(me.log.locator("img, b, script")).to_have_count(0)
    assert dialogs == []
    assert console_errors == []


def test_two_tabs_play_two_users_who_do_not_see_each_other(
    server: str, context: BrowserContext, page: Page
) -> None:
    aysel = Reporter(page).create(server, "Aysel", "az").start()
    aysel.say("hello from Aysel")
    aysel.bot_answered()

    babek = Reporter(context.new_page()).create(server, "Babek", "ru").start()
    babek.say("hello from Babek")
    babek.bot_answered()
    expect(babek.page.get_by_text("as Babek · ru")).to_be_visible()

    expect(aysel.log).not_to_contain_text("hello from Babek")
    expect(babek.log).not_to_contain_text("hello from Aysel")
    expect(aysel.page.locator(MESSAGES)).to_have_count(4)
    expect(babek.page.locator(MESSAGES)).to_have_count(4)

    # A third tab chooses an existing user and continues their chat.
    third = context.new_page()
    third.goto(f"{server}/chat")
    third.get_by_role("button", name=re.compile(r"^Continue as Aysel")).click()
    expect(third).to_have_url(aysel.page.url)
    expect(third.get_by_role("log").get_by_text("hello from Aysel")).to_be_visible()
    expect(third.get_by_role("log")).not_to_contain_text("hello from Babek")


def test_the_page_follows_what_the_bot_does_live(server: str, page: Page) -> None:
    """Reply keyboards, edits, deletions and photos, straight from the Bot API."""
    me = Reporter(page).create(server, "Rauf", "en").start()
    me.say("hello")
    me.bot_answered()
    chat_id = int(page.url.rsplit("=", 1)[1])

    def bot(method: str, **params: Any) -> Any:
        answer = page.request.post(f"{server}/bot{TOKEN}/{method}", data=params)
        assert answer.ok, answer.text()
        return answer.json()["result"]

    keyboard = {"keyboard": [["Baku", "Ganja"]], "one_time_keyboard": True}
    sent = bot("sendMessage", chat_id=chat_id, text="Which city?", reply_markup=keyboard)
    reply_keyboard = page.get_by_role("group", name="Reply keyboard")
    expect(reply_keyboard).to_be_visible()
    reply_keyboard.get_by_role("button", name="Ganja").click()
    expect(me.mine.get_by_text("Ganja", exact=True)).to_be_visible()
    expect(reply_keyboard).to_be_hidden()

    bot("editMessageText", chat_id=chat_id, message_id=sent["message_id"], text="Which town?")
    edited = page.locator(f'[data-message-id="{sent["message_id"]}"]')
    expect(edited).to_contain_text("Which town?")
    expect(page.get_by_text("Which city?")).to_have_count(0)

    bot("deleteMessage", chat_id=chat_id, message_id=sent["message_id"])
    expect(edited).to_have_count(0)

    page.get_by_label("Voice note file").set_input_files(
        files=[upload("note.ogg", "audio/ogg", b"OggS" + b"\x00" * 800)]
    )
    expect(me.mine.filter(has_text="Voice note")).to_contain_text("Voice note · 0:01")
    page.get_by_label("Album files").set_input_files(
        files=[upload(f"p{i}.png", "image/png", sample_png(40 + i, 30)) for i in range(3)]
    )
    expect(me.mine.get_by_role("img", name="Photo")).to_have_count(3)

    photo = upload("map.png", "image/png", sample_png(80, 60))
    answer = page.request.post(
        f"{server}/bot{TOKEN}/sendPhoto",
        multipart={"chat_id": str(chat_id), "caption": "The place", "photo": photo},
    )
    assert answer.ok, answer.text()
    from_bot = page.locator('[data-from="bot"]').get_by_role("img", name="Photo: The place")
    expect(from_bot).to_be_visible()
    for image in [*me.mine.get_by_role("img", name="Photo").all(), from_bot]:
        expect(image).to_have_js_property("complete", True)
        assert image_loaded(image)

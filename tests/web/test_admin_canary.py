"""Promises 1 and 3 on the staff side: reading and triaging a report leaves no plaintext behind.

On both databases, with logging as in production but at DEBUG (JSON, to a file) and
temporary files directed into the test's directory, through the real application behind
aiohttp's test server:

* a key-holder enrols on the web with a canary password; the first member (whose password
  is a canary too) grants them the keys on the Keys page;
* they log in, open the inbox and a report whose answers, file name and file bytes (a
  document and a photo) are canaries, download the document, load the photo, add a note
  that is a canary, change the labels and the status;
* a second browser stops after the password step of the key-holder (the server holds the
  typed password, sealed, until the second factor).

Then no canary, in any encoding ``tests/canary.py`` knows, is in the database (every row,
the SQLite file with its WAL, or a ``pg_dump``), the blob store, the runtime and temp
directories, the log, stdout and stderr, or the server's in-memory session store (every
field of every session, the sealed vaults included) and the other state it keeps.

That the scan would find them is shown too: the key-holder reads every canary back on the
pages and in the downloads, and the vaults, opened with the keys the browsers' cookies
hold, contain the typed password and the unsealed keys.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from canary import Canary, ScanResult, preserved_process_state, scan_bytes, scan_text, scan_tree

from admin.sessions import Ticket, unpack_keyring
from admin.state import AdminState
from intake_bot.bootstrap import App, open_app
from intake_bot.config import Settings
from intake_bot.logging import configure_logging
from intake_bot.services import accounts
from intake_bot.storage.models import Role

from .harness import TEXT_QUESTION, Member, csrf_of, make_report
from .support import Client, Site, password_step, scan_database, session_cookie, sign_in

_SECRET = re.compile(r"<code>([A-Z2-7 ]{16,})</code>")
_FINGERPRINT = re.compile(r'<p class="fingerprint"><code>([^<]+)</code>')


class Canaries:
    """Fresh canaries for one run, by name."""

    def __init__(self, first: Member) -> None:
        tag = secrets.token_hex(4)
        values = {
            "answer": f"CANARY-ANSWER-{tag} they beat him in the car on the way",
            "answer-az": f"Qardaşımı gecə evdən apardılar {tag} ğ ı ö",
            "file-bytes": f"CANARY-FILEBYTES-{tag}",
            "photo-bytes": f"CANARY-PHOTOBYTES-{tag}",
            "file-name": f"CANARY-{tag}-çağırış vərəqəsi.pdf",
            "photo-name": f"CANARY-{tag}-bruises.png",
            "note": f"CANARY-NOTE-{tag} the lawyer says the hearing is on Monday",
            "password": f"CANARY-PASSWORD-{tag} orchard lantern quietly",
            "first-password": first.password,
        }
        self.canaries = {name: Canary(name, value) for name, value in values.items()}

    def __getitem__(self, name: str) -> str:
        return self.canaries[name].value

    def all(self) -> list[Canary]:
        return list(self.canaries.values())


def evidence(marker: str, size: int, head: bytes = b"") -> bytes:
    """``head``, then random bytes with the marker every 4 KiB and at the end."""
    tag = marker.encode()
    data = bytearray(head + os.urandom(size - len(head)))
    for at in [*range(len(head), size - len(tag), 4096), size - len(tag)]:
        data[at : at + len(tag)] = tag
    return bytes(data)


@dataclass(frozen=True)
class Production:
    log_file: Path
    temp_dir: Path


@pytest.fixture
def production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Production]:
    """Logging as in production but at DEBUG, to a file; temp files under ``tmp_path``."""
    log_file = tmp_path / "logs" / "admin.log"
    log_file.parent.mkdir()
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    with log_file.open("w", encoding="utf-8") as handle, preserved_process_state():
        configure_logging("json", "DEBUG", stream=handle)
        tempfile.tempdir = str(temp_dir)
        monkeypatch.setenv("TMPDIR", str(temp_dir))
        yield Production(log_file, temp_dir)
        for handler in logging.getLogger().handlers:
            handler.flush()


@pytest.fixture
async def app(settings: Settings, production: Production) -> AsyncIterator[App]:
    """The installation, opened once logging is set up as in production."""
    async with open_app(settings) as application:
        yield application


@pytest.fixture
async def site(app: App, first: Member) -> AsyncIterator[Site]:
    served = Site(app)
    try:
        yield served
    finally:
        await served.close()


# --- what the server keeps in memory ---------------------------------------------------------


def _pieces(value: object, where: str, depth: int = 0) -> Iterator[tuple[str, bytes]]:
    """Every bytes and text value reachable from ``value`` (dataclass fields, slots,
    containers), with where it was found; every other object also as its repr."""
    if isinstance(value, bytes | bytearray | memoryview):
        yield where, bytes(value)
        return
    if isinstance(value, str):
        yield where, value.encode("utf-8", "surrogatepass")
        return
    yield where, repr(value).encode()
    if depth < 6:
        for inner, item in _children(value, where):
            yield from _pieces(item, inner, depth + 1)


def _children(value: object, where: str) -> Iterator[tuple[str, object]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{where} key", key
            yield f"{where}[{key!r}]", item
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield f"{where}[{index}]", item
    else:
        names = list(getattr(value, "__dict__", {})) + list(getattr(value, "__slots__", ()))
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            names += [field.name for field in dataclasses.fields(value)]
        for name in dict.fromkeys(names):
            item = getattr(value, name, None)
            if not callable(item):
                yield f"{where}.{name}", item


def scan_memory(state: AdminState, canaries: list[Canary]) -> ScanResult:
    """The session store (every field of every session: ids, CSRF tokens, sealed vaults),
    the enrolment secrets on show and the sign-in throttles."""
    result = ScanResult()
    kept: dict[str, object] = {
        "sessions": state.sessions._sessions,
        "pending_totp": state.pending_totp,
        "sign_in_backoff": state.sign_in_backoff,
        "second_factor_backoff": state.second_factor_backoff,
    }
    for name, value in kept.items():
        for where, data in _pieces(value, name):
            result.extend(scan_bytes(data, canaries, f"memory: {where}"))
    return result


# --- the staff -------------------------------------------------------------------------------


async def enrol_on_the_web(client: Client, app: App, name: str, password: str) -> Member:
    """An admin's link (made with the service); the member enrols on the page."""
    invitation = await accounts.add_member(app, name, [Role.KEYHOLDER])
    page = await client.get(f"/enrol/{invitation.token}")
    text = await page.text()
    secret = _SECRET.search(text)
    assert secret is not None, text
    totp_secret = secret.group(1).replace(" ", "")
    done = await client.post(
        f"/enrol/{invitation.token}",
        data={
            "csrf": csrf_of(text),
            "password": password,
            "repeat": password,
            "code": pyotp.TOTP(totp_secret).now(),
        },
    )
    enrolled = await done.text()
    assert done.status == 200, enrolled
    shown = _FINGERPRINT.search(enrolled)
    assert shown is not None
    return Member(name, password, totp_secret, frozenset({Role.KEYHOLDER}), shown.group(1))


async def post_form(client: Client, page: str, action: str, **fields: str) -> str:
    """Submit a form of ``page`` with its CSRF token; the page it leads to."""
    token = csrf_of(await (await client.get(page)).text())
    response = await client.post(action, data={"csrf": token, **fields})
    text = await response.text()
    assert response.status == 200, (response.status, text)
    return text


# --- the test ----------------------------------------------------------------------------------


async def test_no_plaintext_anywhere_after_browsing_and_triage(
    site: Site,
    app: App,
    first: Member,
    production: Production,
    capfd: pytest.CaptureFixture[str],
) -> None:
    settings = app.settings
    root = production.log_file.parents[1]  # the test's tmp_path
    c = Canaries(first)
    document = evidence(c["file-bytes"], 150_000, b"%PDF-1.4\n")
    photo = evidence(c["photo-bytes"], 40_000, b"\x89PNG\r\n\x1a\n")
    report_id = await make_report(
        app,
        [(TEXT_QUESTION, [{"text": c["answer"]}]), ("urgent_details", [{"text": c["answer-az"]}])],
        files=[
            (c["file-name"], "application/pdf", document),
            (c["photo-name"], "image/png", photo),
        ],
        urgent=True,
    )
    report = f"/reports/{report_id.hex()}"

    # A new key-holder enrols on the web; the first member grants them the keys.
    keyholder = await site.client()
    zaur = await enrol_on_the_web(keyholder, app, "zaur", c["password"])
    assert zaur.fingerprint is not None
    granter = await site.client("127.0.0.2")
    await sign_in(granter, app, first)
    granted = await post_form(
        granter,
        "/keys",
        "/keys/grant",
        grantee="zaur",
        fingerprint=zaur.fingerprint,
        password=first.password,
    )
    assert "zaur now holds the organisation keys you hold (1 newly granted)" in granted

    # The key-holder reads and triages.
    await sign_in(keyholder, app, zaur)
    inbox = await (await keyholder.get("/")).text()
    assert c["answer"] in inbox or c["answer-az"] in inbox  # the summary line
    page = await (await keyholder.get(report)).text()
    for name in ("answer", "answer-az", "file-name", "photo-name"):
        assert c[name] in page, name
    file_ids = re.findall(rf'href="{report}/files/([0-9a-f]{{32}})"', page)
    assert len(file_ids) == 2, file_ids
    fetched = {}
    for file_id in file_ids:
        response = await keyholder.get(f"{report}/files/{file_id}")
        assert response.status == 200
        fetched[file_id] = await response.read()
    assert sorted(fetched.values()) == sorted([document, photo])
    [photo_id] = [k for k, v in fetched.items() if v == photo]
    image = await keyholder.get(f"{report}/files/{photo_id}/image")
    assert image.status == 200
    assert image.content_type == "image/png"
    assert await image.read() == photo
    after_note = await post_form(keyholder, report, f"{report}/notes", note=c["note"])
    assert c["note"] in after_note
    after_labels = await post_form(
        keyholder, report, f"{report}/labels", labels="detention, baku, needs-lawyer"
    )
    assert "needs-lawyer" in after_labels
    after_status = await post_form(keyholder, report, f"{report}/status", status="in_review")
    assert "In review" in after_status

    # Another browser stops between the password and the second factor.
    halfway = await site.client("127.0.0.3")
    step = await password_step(halfway, "zaur", c["password"])
    assert step.status == 303

    # The canaries are where they belong: sealed in the session vaults, which the
    # browsers' cookies open.
    state = site.state
    store = state.sessions
    pending = Ticket.decode(session_cookie(halfway))
    signed_in = Ticket.decode(session_cookie(keyholder))
    assert pending is not None
    assert signed_in is not None
    held = store.get(pending)
    assert held is not None
    opened = store.open(pending, held)
    assert opened is not None
    assert opened.reveal() == c["password"].encode()
    mine = store.get(signed_in)
    assert mine is not None
    packed = store.open(signed_in, mine)
    assert packed is not None
    assert unpack_keyring(packed).org_keys

    # ... and nowhere else.
    canaries = c.all()
    result = scan_memory(state, canaries)
    sealed = [s.vault for s in store._sessions.values() if s.vault is not None]
    assert len(sealed) >= 3  # the first member's, the key-holder's, and the halfway one
    result.extend(await scan_database(app, settings.database_url, root, canaries))
    result.extend(scan_tree(root, canaries))
    captured = capfd.readouterr()
    result.extend(scan_text(captured.out + captured.err, canaries, "stdout and stderr"))
    result.assert_clean()

    scanned = set(result.scanned)
    musts = [production.log_file, settings.signing_key_pin]
    for must in musts:
        assert str(must) in scanned, must
    blobs = [p for p in scanned if p.startswith(str(app.blobs.root))]
    assert len(blobs) == 2  # the document and the photo
    if settings.database_url.startswith("sqlite"):
        database = Path(settings.database_url.split("///", 1)[1])
        assert {str(database), f"{database}-wal"} <= scanned
    else:
        assert "pg_dump" in scanned
    assert any(where.startswith("memory: sessions") for where in scanned)
    # Whatever was logged at DEBUG (the admin logs little: no access log, by design) is
    # JSON lines.
    for line in production.log_file.read_text("utf-8").splitlines():
        json.loads(line)

    # Positive control: the same scan finds a canary planted in the log or in memory.
    with production.log_file.open("a", encoding="utf-8") as log:
        log.write(json.dumps({"event": "x", "note": c["note"]}) + "\n")
    planted = scan_tree(root, canaries).findings
    assert {(f.canary, f.where) for f in planted} == {("note", str(production.log_file))}
    state.pending_totp[b"planted"] = (c["answer-az"], 0.0)
    assert {f.canary for f in scan_memory(state, canaries).findings} == {"answer-az"}
    del state.pending_totp[b"planted"]

"""Reading one report through the real application: answers under their questions in the
viewer's language, exact times, the file table, images shown inline only when they are
JPEG/PNG/WebP by their bytes, downloads that stream the exact original (and never a damaged
file as a good one), content escaped everywhere, and every view and file audited."""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from markupsafe import escape

from admin.rendering import SUMMARY_LENGTH
from intake_bot.bootstrap import App
from intake_bot.crypto import random_id
from intake_bot.crypto._files import HEADER_BYTES, RECORD_BYTES
from intake_bot.questionnaire.loader import load_default
from intake_bot.storage.models import Role

from .harness import TEXT_QUESTION, Member, add_member, login
from .reading import audit_entries, png, post, relogin, rich_report, rows, text_of

Client = TestClient[Any, Any]
FILE_ROW = re.compile(r'<tr id="file-([0-9a-f]{32})">(.*?)</tr>', re.DOTALL)
ANSWERS = [
    ("urgent", "someone_else"),
    ("role", "witness"),
    ("violations", ["arbitrary_arrest", "torture"]),
    ("started", {"precision": "day", "value": "2026-10-30"}),
    (TEXT_QUESTION, [{"text": "Gecə gəldilər, telefonunu apardılar."}]),
    ("place_city", None),
]
QUESTIONS = {
    "en": (
        "Please tell us what happened, in your own words.",
        "How are you connected to what happened?",
        "Witness",
        "Torture or ill-treatment",
        "Yes, someone else",
    ),
    "ru": (
        "Расскажите, пожалуйста, что произошло, своими словами.",
        "Какое отношение вы имеете к случившемуся?",
        "Свидетель",
        "Пытки или жестокое обращение",
        "Да, другой человек",
    ),
    "az": (
        "Zəhmət olmasa, baş verənləri öz sözlərinizlə danışın.",
        "Baş verənlərlə əlaqəniz nədir?",
        "Şahid",
        "İşgəncə və ya pis rəftar",
        "Bəli, başqa biri",
    ),
}


async def drain(response: aiohttp.ClientResponse, into: bytearray) -> None:
    async for piece in response.content.iter_any():
        into += piece


def file_rows(page: str) -> dict[str, str]:
    """File id -> the HTML of its row in the file table."""
    return dict(FILE_ROW.findall(page))


async def test_answers_are_shown_under_their_questions_in_the_viewers_language(
    client: Client, app: App, first: Member
) -> None:
    report_id, _ = await rich_report(app, ANSWERS, language="az")
    path = f"/reports/{report_id.hex()}"
    await login(client, app, first)
    for language in ("en", "ru", "az"):
        if language != "en":
            response = await post(client, "/language", {"language": language, "next": path})
            assert response.status == 303
        status, page = await text_of(client, path)
        assert status == 200
        account, role, witness, torture, someone = QUESTIONS[language]
        answer = re.search(rf"<dt>{re.escape(account)}</dt>\s*<dd[^>]*>(.*?)</dd>", page, re.S)
        assert answer is not None, language
        assert "Gecə gəldilər, telefonunu apardılar." in answer.group(1)
        assert re.search(rf"<dt>{re.escape(role)}</dt>\s*<dd[^>]*>\s*<p[^>]*>{witness}</p>", page)
        assert torture in page
        assert someone in page
        # Other languages' question texts are not shown.
        others = [QUESTIONS[other][0] for other in QUESTIONS if other != language]
        assert not any(text in page for text in others), language
    # Exact times, and which questionnaire and language the report was made with.
    assert "2026-11-01T09:58:00.125000+00:00" in page
    assert "2026-11-01T10:05:00.875000+00:00" in page
    assert "2026-10-30" in page
    assert "intake-default v1" in page
    skipped = load_default().question("place_city")
    assert skipped is not None
    assert re.search(rf"<dt>{re.escape(skipped.text['az'])}</dt>\s*<dd[^>]*><em>", page)


async def test_only_key_holders_see_content_and_every_view_is_audited(
    client: Client, app: App, first: Member
) -> None:
    report_id, _ = await rich_report(
        app, ANSWERS, files=[("a.pdf", "application/pdf", b"%PDF-", {})]
    )
    path = f"/reports/{report_id.hex()}"
    rustam = await add_member(app, "rustam", [Role.REVIEWER])
    zaur = await add_member(app, "zaur", [Role.ADMIN])
    leyla = await add_member(app, "leyla", [Role.KEYHOLDER])  # no grant
    await login(client, app, first)
    status, page = await text_of(client, path)
    assert status == 200
    assert "Gecə gəldilər" in page
    for member in (rustam, zaur, leyla):
        await relogin(client, app, member)
        status, page = await text_of(client, path)
        assert status == 200, member.name
        assert "Gecə gəldilər" not in page, member.name
        assert "a.pdf" not in page, member.name
        assert "What happened" not in page, member.name
        assert ('id="history-title"' in page) is True
        assert (f'action="{path}/status"' in page) == (member is not zaur)
        assert ("Your keys cannot open this report" in page) == (member is leyla)
    views = await audit_entries(app, "report.view")
    assert [(e.actor, e.target, e.details) for e in views] == [
        ("amina", report_id.hex(), {"content": True}),
        ("rustam", report_id.hex(), {"content": False}),
        ("zaur", report_id.hex(), {"content": False}),
        ("leyla", report_id.hex(), {"content": False}),
    ]


async def test_files_are_listed_images_inline_and_downloads_are_exact(
    client: Client, app: App, first: Member
) -> None:
    big = os.urandom(300_000)  # five records of 64 KiB
    pdf = b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF\n"
    fake = b"<html><script>alert(1)</script></html>"
    image = png(3, 2)
    report_id, (photo, statement, claimed, video) = await rich_report(
        app,
        [(TEXT_QUESTION, [{"text": "files follow"}])],
        files=[
            ("photo.png", "image/png", image, {"kind": "photo"}),
            ("statement.pdf", "application/pdf", pdf, {}),
            ("fake.png", "image/png", fake, {}),
            ("video.bin", "application/octet-stream", big, {}),
        ],
    )
    other_id, (other_file,) = await rich_report(app, [], files=[("x.png", "image/png", image, {})])
    base = f"/reports/{report_id.hex()}"
    await login(client, app, first)
    status, page = await text_of(client, base)
    assert status == 200
    table = file_rows(page)
    assert list(table) == [f.hex() for f in (photo, statement, claimed, video)]
    for file_id, name, mime, data in (
        (photo, "photo.png", "image/png", image),
        (statement, "statement.pdf", "application/pdf", pdf),
        (claimed, "fake.png", "image/png", fake),
        (video, "video.bin", "application/octet-stream", big),
    ):
        row = table[file_id.hex()]
        assert f'href="{base}/files/{file_id.hex()}" download>{name}</a>' in row
        assert f"<td>{mime}</td>" in row
        assert f"({len(data)} B)</td>" in row or f"<td>{len(data)} B</td>" in row
        assert hashlib.sha256(data).hexdigest() in row
        assert "<td>2026-11-01 10:00 UTC</td>" in row
        assert ("<img " in row) == (file_id == photo), name
    assert f'<img src="{base}/files/{photo.hex()}/image"' in page

    shown = await client.get(f"{base}/files/{photo.hex()}/image")
    assert shown.status == 200
    assert shown.headers["Content-Type"] == "image/png"
    assert shown.headers["Content-Disposition"].startswith("inline;")
    assert shown.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in shown.headers["Content-Security-Policy"]
    assert await shown.read() == image
    for file_id in (statement, claimed, video):
        refused = await client.get(f"{base}/files/{file_id.hex()}/image")
        assert refused.status == 404, file_id

    download = await client.get(f"{base}/files/{video.hex()}")
    assert download.status == 200
    assert download.headers["Content-Disposition"] == "attachment; filename*=UTF-8''video.bin"
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Cache-Control"] == "no-store"
    assert download.headers["Content-Security-Policy"].startswith("sandbox")
    assert download.headers["Content-Length"] == str(len(big))
    body = await download.read()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(big).hexdigest()
    # A file that claims to be an image is still only an attachment of unknown type.
    claimed_download = await client.get(f"{base}/files/{claimed.hex()}")
    assert claimed_download.headers["Content-Type"] == "application/octet-stream"
    assert claimed_download.headers["Content-Disposition"].startswith("attachment;")
    assert await claimed_download.read() == fake

    # Another report's file, an unknown file, ids that are not ids: no such page.
    for path in (
        f"{base}/files/{other_file.hex()}",
        f"{base}/files/{other_file.hex()}/image",
        f"/reports/{other_id.hex()}/files/{photo.hex()}",
        f"{base}/files/{random_id().hex()}",
        f"/reports/{random_id().hex()}/files/{photo.hex()}",
        f"{base}/files/{photo.hex().upper()}",
        f"{base}/files/{photo.hex()[:-1]}",
        f"{base}/files/..%2F{photo.hex()}",
    ):
        assert (await client.get(path, allow_redirects=False)).status == 404, path

    files = await audit_entries(app, "report.file")
    assert [(e.target, e.details) for e in files] == [
        (report_id.hex(), {"file": photo.hex(), "as": "image"}),
        (report_id.hex(), {"file": video.hex(), "as": "download"}),
        (report_id.hex(), {"file": claimed.hex(), "as": "download"}),
    ]

    await relogin(client, app, await add_member(app, "rustam", [Role.REVIEWER]))
    assert (await client.get(f"{base}/files/{photo.hex()}")).status == 403
    assert (await client.get(f"{base}/files/{photo.hex()}/image")).status == 403


async def test_a_damaged_file_is_never_served_as_a_good_one(
    client: Client, app: App, first: Member
) -> None:
    small = b"%PDF-1.4 small statement"
    big = os.urandom(600_000)  # ten records; the first read decrypts three of them
    report_id, (first_file, later_file, swapped) = await rich_report(
        app,
        [(TEXT_QUESTION, [{"text": "the answers still show"}])],
        files=[
            ("small.pdf", "application/pdf", small, {}),
            ("big.bin", "application/octet-stream", big, {}),
            ("swapped.png", "image/png", png(3, 2), {}),
        ],
    )
    base = f"/reports/{report_id.hex()}"

    def flip(file_id: bytes, offset: int) -> None:
        path = app.blobs.path(file_id)
        data = bytearray(path.read_bytes())
        data[offset] ^= 0x01
        path.write_bytes(bytes(data))

    flip(first_file, HEADER_BYTES + 100)
    flip(later_file, HEADER_BYTES + 6 * RECORD_BYTES + 100)
    app.blobs.path(swapped).write_bytes(app.blobs.path(first_file).read_bytes())

    await login(client, app, first)
    status, page = await text_of(client, base)
    assert status == 200
    assert "the answers still show" in page
    table = file_rows(page)
    assert "does not decrypt" in table[first_file.hex()]
    assert "does not decrypt" in table[swapped.hex()]
    assert "does not decrypt" not in table[later_file.hex()]  # only the start is checked here
    assert "<img " not in table[swapped.hex()]

    # Damage in the first records: nothing is sent but a 404.
    for file_id in (first_file, swapped):
        assert (await client.get(f"{base}/files/{file_id.hex()}")).status == 404
        assert (await client.get(f"{base}/files/{file_id.hex()}/image")).status == 404

    # Damage further on: the 200 and the first records went out before it was found; the
    # connection is then cut, so the body is short of its Content-Length and never ends
    # as a complete one: the client sees a failed download, not a truncated file.
    response = await client.get(f"{base}/files/{later_file.hex()}")
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(big))
    received = bytearray()
    with pytest.raises(aiohttp.ClientPayloadError):
        await drain(response, received)
    assert 0 < len(received) < len(big)
    assert big.startswith(bytes(received))  # what was sent had been authenticated
    # The server is still well after a cut connection.
    assert (await client.get(base)).status == 200


HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "'><iframe srcdoc='<script>alert(1)</script>'>",
]


async def test_report_content_is_escaped_everywhere(
    client: Client, app: App, first: Member
) -> None:
    evil = " ".join(HOSTILE)
    origin = {
        "type": "user",
        "date": "2026-10-01T00:00:00+00:00",
        "user": {"id": 7, "name": HOSTILE[1], "username": HOSTILE[2]},
    }
    report_id, (named,) = await rich_report(
        app,
        [
            (TEXT_QUESTION, [{"text": evil}, {"text": "forwarded", "forward": origin}]),
            ("role", HOSTILE[2]),  # not an option: shown as it is, escaped
            ("reporter_name", [{"text": HOSTILE[0]}]),
            (HOSTILE[1], [{"text": "an answer to a question id no version has"}]),
        ],
        files=[
            (
                f"{HOSTILE[2]}\u202egpj.exe",
                HOSTILE[0],
                b"data",
                {"caption": HOSTILE[1], "forward": origin},
            )
        ],
    )
    base = f"/reports/{report_id.hex()}"
    await login(client, app, first)
    response = await post(client, f"{base}/notes", {"note": evil})
    assert response.status == 303
    # Refused values come back as fixed messages, not echoed.
    assert (await post(client, f"{base}/labels", {"labels": HOSTILE[0]})).status == 400
    assert (await post(client, f"{base}/links", {"other": HOSTILE[2]})).status == 400
    refused = await post(client, f"{base}/status", {"status": HOSTILE[1]})
    assert refused.status == 400
    for text in [await refused.text()]:
        assert not any(h in text for h in HOSTILE)

    _, inbox = await text_of(client, "/")
    _, page = await text_of(client, base)
    for where, html in (("inbox", inbox), ("report", page)):
        for hostile in HOSTILE:
            assert hostile not in html, (where, hostile)
        for fragment in ("onerror=alert(1)>", "<svg", "<iframe", "<script>alert"):
            assert fragment not in html, (where, fragment)
    # The summary line: the longest text the reporter wrote, cut to one line.
    line = " ".join(evil.split())
    line = line if len(line) <= SUMMARY_LENGTH else line[: SUMMARY_LENGTH - 1] + "…"
    assert f'<td class="summary" dir="auto">{escape(line)}</td>' in inbox
    assert str(escape(evil)) in page  # the answer and the note
    assert page.count(str(escape(evil))) == 2
    assert str(escape(f"{HOSTILE[2]}gpj.exe")) in page  # the bidi override is gone
    assert "\u202e" not in page
    assert str(escape(HOSTILE[1])) in page  # the caption, the forward's sender
    assert str(escape(f"{HOSTILE[1]}, @{HOSTILE[2]}")) in page
    assert f"<dt>{escape(HOSTILE[1])}</dt>" in page  # an unknown question id

    download = await client.get(f"{base}/files/{named.hex()}")
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename*=UTF-8''")
    encoded = disposition.removeprefix("attachment; filename*=UTF-8''")
    assert re.fullmatch(r"[A-Za-z0-9%._~-]+", encoded), encoded
    assert unquote(encoded) == f"{HOSTILE[2]}gpj.exe"
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert rows(inbox) == [report_id.hex()]

"""Triage through the real application: the status workflow, priority, assignee, labels,
links, bulk close as spam and encrypted notes; refused changes answer 400 with a message
in the member's language; forged ids are 404; the page's history comes from the audit."""

from __future__ import annotations

import html
import io
import re
import secrets
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.support import Translations
from canary import Canary, scan_pg_dump, scan_tree

from intake_bot.bootstrap import App
from intake_bot.config import Settings
from intake_bot.crypto import random_id
from intake_bot.services import accounts, triaging
from intake_bot.storage import audit
from intake_bot.storage.models import Role
from intake_bot.triage import CloseReason, Status

from .harness import TEXT_QUESTION, Member, add_member, login, make_report
from .reading import audit_entries, make_draft, post, relogin, rows, state_of, text_of

Client = TestClient[Any, Any]
CURRENT = re.compile(r'<dd id="current-status">(.*?)</dd>')
HISTORY = re.compile(r'<table class="history">(.*?)</table>', re.S)


def current_status(page: str) -> str:
    found = CURRENT.search(page)
    assert found is not None
    return found.group(1)


def offered_statuses(page: str) -> list[str]:
    form = re.search(r'<select id="status" name="status">(.*?)</select>', page, re.S)
    assert form is not None
    return re.findall(r'<option value="([a-z_]+)">', form.group(1))


def history(page: str) -> str:
    found = HISTORY.search(page)
    assert found is not None
    return found.group(1)


def error_of(page: str) -> str:
    found = re.search(r'<p class="error"[^>]*>(.*?)</p>', page, re.S)
    assert found is not None, "the page shows no error"
    return html.unescape(found.group(1).strip())


def russian(messages: dict[str, str]) -> Translations:
    catalogue = Catalog(locale="ru", domain="admin")
    for english, translated in messages.items():
        catalogue.add(english, translated)
    compiled = io.BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return Translations(compiled, domain="admin")


async def test_the_status_workflow_allows_and_refuses_as_the_rules_say(
    client: Client, app: App, first: Member
) -> None:
    report_id = await make_report(app, [(TEXT_QUESTION, [{"text": "x"}])])
    path = f"/reports/{report_id.hex()}"
    await login(client, app, first)

    async def change(status: str, reason: str = "") -> tuple[int, str]:
        response = await post(client, f"{path}/status", {"status": status, "reason": reason})
        return response.status, await response.text()

    _, page = await text_of(client, path)
    assert offered_statuses(page) == ["in_review", "closed"]
    refusals = [
        ("verified", "", "That status cannot follow the current one."),
        ("closed", "", "Choose why the report is closed."),
        ("in_review", "spam", "A reason is given only when closing."),
        ("new", "", "That status cannot follow the current one."),
        ("archived", "", "That change is not possible."),
        ("closed", "because", "That change is not possible."),
    ]
    for status, reason, message in refusals:
        code, page = await change(status, reason)
        assert code == 400, status
        assert error_of(page) == message
        assert current_status(page) == "New"
    assert await audit_entries(app, "report.status") == []

    for status, reason, shown in [
        ("in_review", "", "In review"),
        ("escalated", "", "Escalated"),
        ("verified", "", "Verified"),
        ("closed", "duplicate", "Closed (duplicate)"),
    ]:
        code, _ = await change(status, reason)
        assert code == 303, status
        _, page = await text_of(client, path)
        assert current_status(page) == shown
    assert offered_statuses(page) == ["in_review"]
    code, page = await change("verified")
    assert code == 400
    assert error_of(page) == "That status cannot follow the current one."
    code, _ = await change("in_review")  # reopened
    assert code == 303
    _, page = await text_of(client, path)
    assert current_status(page) == "In review"
    assert offered_statuses(page) == ["needs_information", "verified", "escalated", "closed"]

    changes = await audit_entries(app, "report.status")
    assert [(e.actor, e.target, e.details) for e in changes] == [
        ("amina", report_id.hex(), {"status": "in_review", "reason": None}),
        ("amina", report_id.hex(), {"status": "escalated", "reason": None}),
        ("amina", report_id.hex(), {"status": "verified", "reason": None}),
        ("amina", report_id.hex(), {"status": "closed", "reason": "duplicate"}),
        ("amina", report_id.hex(), {"status": "in_review", "reason": None}),
    ]
    shown = history(page)
    assert shown.count("<td>report.status</td>") == 5
    assert "reason: duplicate status: closed" in shown
    assert "<td>report.view</td>" in shown

    # Much reading does not push the changes off the page.
    async with app.sessions() as session, session.begin():
        for _ in range(260):
            await audit.append(
                session, actor="rustam", action="report.view", target=report_id.hex()
            )
    _, page = await text_of(client, path)
    shown = history(page)
    assert shown.count("<td>report.status</td>") == 5
    assert shown.count("<td>report.view</td>") == triaging.READS_SHOWN

    # The refusal is in the member's language.
    state_of(client).catalogues["ru"] = russian(
        {"That status cannot follow the current one.": "Этот статус не может следовать за текущим."}
    )
    assert (await post(client, "/language", {"language": "ru", "next": path})).status == 303
    code, page = await change("new")
    assert code == 400
    assert error_of(page) == "Этот статус не может следовать за текущим."

    # A reviewer triages; an admin who is neither may not.
    await relogin(client, app, await add_member(app, "rustam", [Role.REVIEWER]))
    assert (await change("verified"))[0] == 303
    await relogin(client, app, await add_member(app, "zaur", [Role.ADMIN]))
    assert (await change("escalated"))[0] == 403
    _, page = await text_of(client, path)
    assert f'action="{path}/status"' not in page
    assert [e.details["status"] for e in await audit_entries(app, "report.status")][-1] == (
        "verified"
    )


async def test_priority_assignee_and_labels(client: Client, app: App, first: Member) -> None:
    report_id = await make_report(app, [(TEXT_QUESTION, [{"text": "x"}])])
    other = await make_report(app, [(TEXT_QUESTION, [{"text": "y"}])])
    path = f"/reports/{report_id.hex()}"
    await add_member(app, "rustam", [Role.REVIEWER])
    await add_member(app, "leyla", [Role.KEYHOLDER])
    await add_member(app, "zaur", [Role.ADMIN])
    await add_member(app, "farid", [Role.REVIEWER])
    await accounts.disable(app, "farid", actor="amina")
    await login(client, app, first)

    async def send(change: str, field: str, value: str) -> tuple[int, str]:
        response = await post(client, f"{path}/{change}", {field: value})
        return response.status, await response.text()

    assert (await send("priority", "priority", "high"))[0] == 303
    code, page = await send("priority", "priority", "critical")
    assert code == 400
    assert error_of(page) == "That change is not possible."
    assert "<dt>Priority</dt><dd>High</dd>" in page

    _, page = await text_of(client, path)
    choices = re.search(r'<select id="assignee" name="assignee">(.*?)</select>', page, re.S)
    assert choices is not None
    # Active key-holders and reviewers only (not an admin alone, not a disabled member).
    assert sorted(re.findall(r'<option value="([^"]*)"', choices.group(1))) == [
        "",
        "amina",
        "leyla",
        "rustam",
    ]
    for name in ("zaur", "farid", "nobody", "amina' OR '1'='1"):
        code, page = await send("assignee", "assignee", name)
        assert code == 400, name
        assert error_of(page) == "That member cannot be assigned."
    for name in ("rustam", "leyla"):
        assert (await send("assignee", "assignee", name))[0] == 303
        _, page = await text_of(client, path)
        assert f"<dt>Assignee</dt><dd>{name}</dd>" in page
    assert (await send("assignee", "assignee", ""))[0] == 303
    _, page = await text_of(client, path)
    assert "<dt>Assignee</dt><dd>—</dd>" in page

    labels = " İşgəncə ,Bakı,  saxta   ittiham, Bakı ,"
    assert (await send("labels", "labels", labels))[0] == 303
    _, page = await text_of(client, path)
    for label in ("Bakı", "saxta ittiham", "İşgəncə"):
        assert f'<span class="tag">{label}</span>' in page
    assert 'value="Bakı, saxta ittiham, İşgəncə"' in page
    for labels, message in [
        ("ok, <b>", "A label has only letters, digits, spaces, '-' and '_'."),
        ("x" * 41, "A label has 1 to 40 characters."),
        (",".join(f"l{i}" for i in range(13)), "At most 12 labels."),
    ]:
        code, page = await send("labels", "labels", labels)
        assert code == 400, labels
        assert error_of(page) == message
    _, inbox = await text_of(client, "/?label=İşgəncə")
    assert rows(inbox) == [report_id.hex()]
    assert other.hex() not in inbox
    assert (await send("labels", "labels", ""))[0] == 303
    _, inbox = await text_of(client, "/?label=İşgəncə")
    assert rows(inbox) == []

    changes = [
        (e.action, e.details)
        for e in await audit_entries(app)
        if e.action in ("report.priority", "report.assign", "report.labels")
    ]
    assert changes == [
        ("report.priority", {"priority": "high"}),
        ("report.assign", {"assignee": "rustam"}),
        ("report.assign", {"assignee": "leyla"}),
        ("report.assign", {"assignee": None}),
        ("report.labels", {"labels": "Bakı, saxta ittiham, İşgəncə"}),
        ("report.labels", {"labels": ""}),
    ]
    _, page = await text_of(client, path)
    shown = history(page)
    assert "priority: high" in shown
    assert "assignee: leyla" in shown
    assert "labels: Bakı, saxta ittiham, İşgəncə" in shown


async def test_links_go_both_ways_and_forged_ids_are_not_found(
    client: Client, app: App, first: Member, settings: Settings
) -> None:
    one, two, three = [
        await make_report(app, [(TEXT_QUESTION, [{"text": str(i)}])]) for i in range(3)
    ]
    hidden = await make_draft(app, settings, {TEXT_QUESTION: [{"text": "typing"}]}, close=False)
    await login(client, app, first)

    async def link(source: bytes, other: str) -> tuple[int, str]:
        response = await post(client, f"/reports/{source.hex()}/links", {"other": other})
        return response.status, await response.text()

    def linked(page: str) -> list[str]:
        section = re.search(r'<section aria-labelledby="links-title">(.*?)</section>', page, re.S)
        assert section is not None
        return re.findall(r'<a href="/reports/([0-9a-f]{32})">', section.group(1))

    assert (await link(one, two.hex()))[0] == 303
    assert (await link(one, f"https://intake.example/reports/{three.hex().upper()}/"))[0] == 303
    assert (await link(two, one.hex()))[0] == 303  # already linked: nothing new
    for other, message in [
        (one.hex(), "A report cannot be linked to itself."),
        (random_id().hex(), "There is no report with that id."),
        (hidden.hex(), "There is no report with that id."),
        ("not an id", "There is no report with that id."),
        ("", "There is no report with that id."),
    ]:
        code, page = await link(one, other)
        assert code == 400, other
        assert error_of(page) == message
    _, page = await text_of(client, f"/reports/{one.hex()}")
    assert sorted(linked(page)) == sorted([two.hex(), three.hex()])
    for report_id in (two, three):
        _, page = await text_of(client, f"/reports/{report_id.hex()}")
        assert linked(page) == [one.hex()]
    assert len(await audit_entries(app, "report.link")) == 4  # two links, each both ways

    response = await post(client, f"/reports/{two.hex()}/unlink", {"other": one.hex()})
    assert response.status == 303
    for source in (one, two):
        _, page = await text_of(client, f"/reports/{source.hex()}")
        assert two.hex() not in linked(page)
        assert one.hex() not in linked(page)
    for value in (one.hex(), "forged", random_id().hex()):  # nothing (more) to remove
        response = await post(client, f"/reports/{two.hex()}/unlink", {"other": value})
        assert response.status == 303
    unlinks = await audit_entries(app, "report.unlink")
    assert sorted(e.target for e in unlinks) == sorted([one.hex(), two.hex()])

    # Ids of no report, or of a report staff do not see yet: 404 on every route.
    before = len(await audit_entries(app))
    for report_hex in (random_id().hex(), hidden.hex()):
        assert (await text_of(client, f"/reports/{report_hex}"))[0] == 404
        for change, field, value in [
            ("status", "status", "in_review"),
            ("priority", "priority", "high"),
            ("assignee", "assignee", "amina"),
            ("labels", "labels", "x"),
            ("links", "other", one.hex()),
            ("unlink", "other", one.hex()),
            ("notes", "note", "a note"),
        ]:
            response = await post(client, f"/reports/{report_hex}/{change}", {field: value})
            assert response.status == 404, (change, report_hex)
    for forged in (one.hex().upper(), one.hex()[:-1], one.hex() + "0", "..%2F" + one.hex()):
        assert (await text_of(client, f"/reports/{forged}"))[0] == 404, forged
        response = await post(client, f"/reports/{forged}/status", {"status": "in_review"})
        assert response.status == 404, forged
    assert len(await audit_entries(app)) == before  # nothing was recorded for them


async def test_bulk_close_as_spam_closes_only_open_reports(
    client: Client, app: App, first: Member
) -> None:
    made = [await make_report(app, [(TEXT_QUESTION, [{"text": str(i)}])]) for i in range(5)]
    fresh, reviewing, escalated, resolved, untouched = made
    await triaging.change_status(app, "amina", reviewing, Status.IN_REVIEW, None)
    await triaging.change_status(app, "amina", escalated, Status.IN_REVIEW, None)
    await triaging.change_status(app, "amina", escalated, Status.ESCALATED, None)
    await triaging.change_status(app, "amina", resolved, Status.CLOSED, CloseReason.RESOLVED)
    await login(client, app, await add_member(app, "rustam", [Role.REVIEWER]))
    chosen = [("report", r.hex()) for r in (fresh, reviewing, escalated, resolved, fresh)]
    chosen += [("report", "zz" * 16), ("report", random_id().hex()), ("report", "<script>")]
    response = await post(client, "/reports/close-spam", chosen)
    assert response.status == 303
    assert response.headers["Location"] == "/"

    _, closed = await text_of(client, "/?status=closed")
    assert sorted(rows(closed)) == sorted(r.hex() for r in (fresh, reviewing, escalated, resolved))
    for report_id, shown in [
        (fresh, "Closed (spam)"),
        (reviewing, "Closed (spam)"),
        (escalated, "Closed (spam)"),
        (resolved, "Closed (resolved)"),
        (untouched, "New"),
    ]:
        _, page = await text_of(client, f"/reports/{report_id.hex()}")
        assert current_status(page) == shown
    bulk = [e for e in await audit_entries(app, "report.status") if e.details.get("bulk")]
    assert sorted(e.target for e in bulk) == sorted(r.hex() for r in (fresh, reviewing, escalated))
    assert {e.actor for e in bulk} == {"rustam"}

    # Again: nothing left to close.
    response = await post(client, "/reports/close-spam", chosen)
    assert response.status == 303
    assert len([e for e in await audit_entries(app, "report.status") if e.details.get("bulk")]) == 3
    assert (await post(client, "/reports/close-spam", [("report", "nothing")])).status == 400
    assert (await post(client, "/reports/close-spam")).status == 400
    await relogin(client, app, await add_member(app, "zaur", [Role.ADMIN]))
    response = await post(client, "/reports/close-spam", [("report", untouched.hex())])
    assert response.status == 403
    _, page = await text_of(client, f"/reports/{untouched.hex()}")
    assert current_status(page) == "New"


async def test_notes_are_encrypted_and_only_for_key_holders(
    client: Client, app: App, first: Member, settings: Settings, tmp_path: Path
) -> None:
    report_id = await make_report(app, [(TEXT_QUESTION, [{"text": "x"}])])
    path = f"/reports/{report_id.hex()}"
    secret = f"Note-canary {secrets.token_hex(8)} — şahid ilə danışdım"
    await login(client, app, first)
    assert (await post(client, f"{path}/notes", {"note": f"  {secret}\n"})).status == 303
    assert (await post(client, f"{path}/notes", {"note": "second note"})).status == 303
    for note, message in [
        ("   \n ", "The note is empty."),
        ("x" * 10_001, "The note is too long (at most 10,000 characters)."),
    ]:
        response = await post(client, f"{path}/notes", {"note": note})
        assert response.status == 400
        assert error_of(await response.text()) == message
    _, page = await text_of(client, path)
    notes = re.findall(r'<article class="note"><header>(.*?)</header><p dir="auto">(.*?)</p>', page)
    assert [(header.split(" · ")[0], text) for header, text in notes] == [
        ("amina", secret),
        ("amina", "second note"),
    ]
    assert re.fullmatch(r"amina · \d{4}-\d\d-\d\d \d\d:\d\d UTC", notes[0][0])
    written = await audit_entries(app, "report.note")
    assert [(e.actor, e.target, e.details) for e in written] == [
        ("amina", report_id.hex(), {}),
        ("amina", report_id.hex(), {}),
    ]

    # Never in the clear at rest: not in the database, its journal, or the blobs.
    canaries = [Canary("note", secret), Canary("note-start", secret[:20])]
    scan = scan_tree(tmp_path, canaries)
    if settings.database_url.startswith("postgresql"):
        scan.extend(scan_pg_dump(settings.database_url, canaries))
    scan.assert_clean()
    assert any(name.endswith(".db") for name in scan.scanned) or "pg_dump" in scan.scanned

    rustam = await add_member(app, "rustam", [Role.REVIEWER])
    leyla = await add_member(app, "leyla", [Role.KEYHOLDER])
    await relogin(client, app, rustam)
    _, page = await text_of(client, path)
    assert secret not in page
    assert "second note" not in page
    assert (await post(client, f"{path}/notes", {"note": "from a reviewer"})).status == 403
    await relogin(client, app, leyla)  # a key-holder without this report's key
    _, page = await text_of(client, path)
    assert secret not in page
    response = await post(client, f"{path}/notes", {"note": "cannot be sealed"})
    assert response.status == 403
    assert error_of(await response.text()) == "Your keys cannot open this report."
    assert len(await audit_entries(app, "report.note")) == 2

"""The inbox through the real application: order, keyset pages, every filter, forged query
values, what each role sees of content, and unfinished reports."""

from __future__ import annotations

import datetime as dt
import html
import secrets
from typing import Any

from aiohttp.test_utils import TestClient

from intake_bot.bootstrap import App
from intake_bot.config import Settings
from intake_bot.services import triaging
from intake_bot.storage import reports as report_repo
from intake_bot.storage.models import Role
from intake_bot.triage import CloseReason, Priority, Status

from .harness import TEXT_QUESTION, Member, add_member, login, make_report
from .reading import audit_entries, make_draft, many_reports, relogin, rows, text_of, walk_inbox

Client = TestClient[Any, Any]
TODAY = dt.datetime.now(dt.UTC).date()


async def test_pages_walk_the_inbox_in_order_without_gaps_or_repeats(
    client: Client, app: App, first: Member
) -> None:
    specs = [(i % 7 == 0, TODAY - dt.timedelta(days=i % 5)) for i in range(120)]
    made = dict(zip(await many_reports(app, specs), specs, strict=True))
    batch = sorted(made)[:55]
    async with app.sessions() as session, session.begin():
        for report_id in batch:
            await report_repo.set_labels(session, report_id, {"batch"})
    expected = [
        rid.hex() for rid in sorted(made, key=lambda r: (made[r][0], made[r][1], r), reverse=True)
    ]
    await login(client, app, first)

    pages = await walk_inbox(client)
    assert [len(page) for page in pages] == [50, 50, 20]
    shown = [rid for page in pages for rid in page]
    assert shown == expected  # urgent first, then the newest day, then by id
    assert len(set(shown)) == 120

    # The next page's link keeps the filter.
    labelled = await walk_inbox(client, "label=batch")
    assert [len(page) for page in labelled] == [50, 5]
    assert [rid for page in labelled for rid in page] == [
        rid for rid in expected if bytes.fromhex(rid) in batch
    ]

    # Past the first page there is a way back to it.
    status, page_two = await text_of(client, f"/?after={_cursor_after(expected[49], made)}")
    assert status == 200
    assert rows(page_two) == expected[50:100]
    assert ">First page</a>" in page_two


def _cursor_after(report_hex: str, made: dict[bytes, tuple[bool, dt.date]]) -> str:
    urgent, day = made[bytes.fromhex(report_hex)]
    return f"{int(urgent)}.{day.isoformat()}.{report_hex}"


async def _triaged(app: App, settings: Settings, first: Member) -> dict[str, bytes]:
    """Reports with every kind of triage field, and unfinished ones."""
    rustam = await add_member(app, "rustam", [Role.REVIEWER])
    made = {
        "plain": await make_report(app, [(TEXT_QUESTION, [{"text": "plain"}])]),
        "urgent": await make_report(app, [(TEXT_QUESTION, [{"text": "urgent"}])], urgent=True),
        "closed": await make_report(app, [(TEXT_QUESTION, [{"text": "closed"}])]),
        "incomplete": await make_draft(app, settings, {TEXT_QUESTION: [{"text": "half"}]}),
        "writing": await make_draft(
            app,
            settings,
            {"urgent": "me", "urgent_details": [{"text": "now"}]},
            urgent=True,
            close=False,
        ),
        "hidden": await make_draft(
            app, settings, {TEXT_QUESTION: [{"text": "not finished"}]}, close=False
        ),
    }
    actor = first.name
    await triaging.change_status(app, actor, made["urgent"], Status.IN_REVIEW, None)
    await triaging.set_priority(app, actor, made["urgent"], Priority.HIGH)
    await triaging.assign(app, actor, made["urgent"], rustam.name)
    await triaging.set_labels(app, actor, made["urgent"], frozenset({"İşgəncə"}))
    await triaging.change_status(app, actor, made["closed"], Status.CLOSED, CloseReason.SPAM)
    await triaging.set_priority(app, actor, made["closed"], Priority.LOW)
    await triaging.assign(app, actor, made["closed"], first.name)
    await triaging.set_labels(app, actor, made["closed"], frozenset({"İşgəncə", "Bakı"}))
    return made


FILTERS = {
    "": {"plain", "urgent", "closed", "incomplete", "writing"},
    "status=new": {"plain", "incomplete", "writing"},
    "status=in_review": {"urgent"},
    "status=closed": {"closed"},
    "status=verified": set(),
    "priority=high": {"urgent"},
    "priority=low": {"closed"},
    "priority=normal": {"plain", "incomplete"},
    "priority=urgent": {"writing"},  # an urgent report starts at urgent priority
    "assignee=rustam": {"urgent"},
    "assignee=amina": {"closed"},
    "assignee=-": {"plain", "incomplete", "writing"},
    "assignee=nobody-by-that-name": set(),
    "label=İşgəncə": {"urgent", "closed"},
    "label=Bakı": {"closed"},
    "label=bakı": set(),
    "urgent=yes": {"urgent", "writing"},
    "urgent=no": {"plain", "closed", "incomplete"},
    "incomplete=yes": {"incomplete", "writing"},
    "incomplete=no": {"plain", "urgent", "closed"},
    "status=new&urgent=yes": {"writing"},
    "label=İşgəncə&assignee=rustam&priority=high&status=in_review": {"urgent"},
}


FORGED = [
    "status=<script>alert(1)</script>",
    "status=NEW",
    "status=new%00",
    "priority=%22%3E%3Csvg%20onload%3Dalert(1)%3E",
    "priority=" + "x" * 5000,
    "urgent=1",
    "urgent=true",
    "incomplete=<img src=x onerror=alert(1)>",
    "after=<script>",
    "after=1.2026-99-99." + "00" * 16,
    "after=" + "f" * 40,
    "after=1.2026-01-01.zz",
    "status=new&status=closed",
    "label=" + "l" * 400,
    "assignee=" + "%E2%80%AE" * 50,
    "%ff%fe=%ff",
]


async def test_every_filter_narrows_the_inbox_and_forged_values_are_ignored(
    client: Client, app: App, first: Member, settings: Settings
) -> None:
    made = await _triaged(app, settings, first)
    names = {report_id.hex(): name for name, report_id in made.items()}
    # A reviewer sees the same rows without the cost of decrypting summaries.
    await login(client, app, await add_member(app, "samir", [Role.REVIEWER]))
    for query, expected in FILTERS.items():
        status, page = await text_of(client, f"/?{query}")
        assert status == 200, query
        assert {names[rid] for rid in rows(page)} == expected, query
    # The chosen values stay selected in the form.
    _, page = await text_of(client, "/?status=closed&assignee=-&urgent=no&label=Bak%C4%B1")
    assert '<option value="closed" selected>' in page
    assert '<option value="-" selected>' in page
    assert '<option value="no" selected>' in page
    assert '<option value="Bakı" selected>' in page

    # Values that are not choices are ignored, and never reflected unescaped.
    everything = {made[name].hex() for name in FILTERS[""]}
    for query in FORGED:
        status, page = await text_of(client, f"/?{query}")
        assert status == 200, query
        assert "<script>alert(1)" not in page, query
        assert "<svg onload" not in page, query
        assert "<img src=x" not in page, query
        if query.startswith(("status=new&", "label=", "assignee=")):
            continue  # a valid value among them, or a name that matches no one
        assert set(rows(page)) == everything, query
    # A cursor past the last row is an empty page, not an error.
    status, page = await text_of(client, "/?after=0.0001-01-01." + "00" * 16)
    assert status == 200
    assert rows(page) == []


async def test_only_a_key_holder_sees_summaries_and_file_counts(
    client: Client, app: App, first: Member
) -> None:
    canary = f"canary-{secrets.token_hex(8)}"
    await make_report(
        app,
        [(TEXT_QUESTION, [{"text": f"{canary} they came at night"}])],
        files=[("a.pdf", "application/pdf", b"%PDF-1.7 a"), ("b.txt", "text/plain", b"b")],
    )
    leyla = await add_member(app, "leyla", [Role.KEYHOLDER])  # no grant yet
    rustam = await add_member(app, "rustam", [Role.REVIEWER])
    zaur = await add_member(app, "zaur", [Role.ADMIN])

    await login(client, app, first)
    _, page = await text_of(client, "/")
    assert f"{canary} they came at night" in page
    assert ">Summary</th>" in page
    assert ">Files</th>" in page
    assert "<td>2</td>" in page

    await relogin(client, app, leyla)
    _, page = await text_of(client, "/")
    assert canary not in page
    assert "cannot be opened with your keys" in page

    for member in (rustam, zaur):
        await relogin(client, app, member)
        status, page = await text_of(client, "/")
        assert status == 200
        assert canary not in page
        assert "they came at night" not in page
        assert ">Summary</th>" not in page
        assert ">Files</th>" not in page
        assert "<td>2</td>" not in page
        assert len(rows(page)) == 1
        assert ('name="report"' in page) == (member is rustam)  # bulk close needs triage

    # Decrypting summaries is audited (a count, no content); labels-only views are not.
    shown = await audit_entries(app, "inbox.summaries")
    assert {e.actor for e in shown} == {"amina", "leyla"}
    assert all(e.details == {"reports": 1} for e in shown)


async def test_unfinished_reports_show_as_such_and_render_from_their_answers(
    client: Client, app: App, first: Member, settings: Settings
) -> None:
    incomplete = await make_draft(
        app,
        settings,
        {"urgent": "no", TEXT_QUESTION: [{"text": "Yarımçıq hesabat"}]},
        files=[("sübut.pdf", "application/pdf", b"%PDF-1.4 evidence")],
    )
    writing = await make_draft(
        app,
        settings,
        {"urgent": "someone_else", "urgent_details": [{"text": "İndi kömək lazımdır"}]},
        urgent=True,
        close=False,
    )
    hidden = await make_draft(
        app, settings, {TEXT_QUESTION: [{"text": "still typing"}]}, close=False
    )
    await login(client, app, first)
    _, page = await text_of(client, "/")
    assert rows(page) == [writing.hex(), incomplete.hex()]  # urgent first
    row_of = {rid: part for part in page.split("<tr")[1:] for rid in rows(part)}
    assert 'class="tag incomplete">Being written<' in row_of[writing.hex()]
    assert 'class="tag urgent">urgent<' in row_of[writing.hex()]
    assert 'class="tag incomplete">Incomplete<' in row_of[incomplete.hex()]
    assert "İndi kömək lazımdır" in row_of[writing.hex()]
    assert "Yarımçıq hesabat" in row_of[incomplete.hex()]
    assert "<td>1</td>" in row_of[incomplete.hex()]
    assert "still typing" not in page

    status, report = await text_of(client, f"/reports/{incomplete.hex()}")
    assert status == 200
    assert "not submitted (incomplete)" in report
    assert "<dt>Please tell us what happened, in your own words.</dt>" in report
    assert "Yarımçıq hesabat" in report
    assert "sübut.pdf" in report
    status, report = await text_of(client, f"/reports/{writing.hex()}")
    assert status == 200
    assert "İndi kömək lazımdır" in report
    assert "In a few words: who is it, and what is happening now?" in report

    # A draft that is not urgent is the reporter's until it is submitted or closed.
    status, _ = await text_of(client, f"/reports/{hidden.hex()}")
    assert status == 404
    status, _ = await text_of(client, "/?incomplete=yes")
    assert hidden.hex() not in _
    assert html.escape("still typing") not in _

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from intake_bot.bootstrap import App

from .harness import TEXT_QUESTION, Member, login, make_report


async def test_a_keyholder_logs_in_and_reads_a_report(
    client: TestClient[Any, Any], app: App, first: Member
) -> None:
    report_id = await make_report(
        app,
        [(TEXT_QUESTION, [{"text": "<script>alert(1)</script> they came at night"}])],
        files=[("photo.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"x" * 1000)],
    )
    await login(client, app, first)
    inbox = await (await client.get("/")).text()
    assert "they came at night" in inbox
    assert "<script>alert(1)</script>" not in inbox
    page = await client.get(f"/reports/{report_id.hex()}")
    text = await page.text()
    assert page.status == 200, text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; they came at night" in text
    assert "photo.png" in text

"""`/supervisor` and `/api/supervisor`: per team and agent, today and this week, read from the
sink's tables (calls, surveys, `ticket.assigned` events, open tickets) on SQLite and PostgreSQL,
and the page in real headless Chromium with the one who needs help on top."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sinks.db.models import Call, StoredEvent, Survey
from tests.e2e.test_wallboard_browser import MORNING, config_for, engine, fill, serve  # noqa: F401  (fixture)
from tests.support.chromium import Chromium

YESTERDAY = MORNING - timedelta(days=1)  # Tuesday: this week, not today


def assigned(ticket_id: str, team: str, agent: str, minutes_ago: int) -> StoredEvent:
    at = MORNING - timedelta(minutes=minutes_ago)
    return StoredEvent(
        id=f"assign-{ticket_id}-{agent}",
        type="ticket.assigned",
        subject=ticket_id,
        time=at,
        source="/crm",
        stored_at=at,
        payload=json.dumps({"type": "ticket.assigned", "data": {"team": team, "agent": agent}}),
    )


def staff(engine: Engine) -> None:
    """a-1 answers well; a-2 has the breached ticket; a-3 worked yesterday with unhappy callers."""
    rows: list[Any] = [
        assigned("T-2025-000123", "maintenance", "a-1", 300),
        assigned("T-2025-000123", "maintenance", "a-2", 200),  # reassigned: a-2 holds it now
        assigned("T-2025-000124", "zakat-desk", "a-3", 100),
    ]
    for index, (agent, when, handle, satisfied) in enumerate(
        [
            ("a-1", MORNING, 240.0, True),
            ("a-1", MORNING, 360.0, True),
            ("a-3", YESTERDAY, 600.0, False),
            ("a-3", YESTERDAY, 500.0, False),
        ]
    ):
        call_id = f"C-staff-{index}"
        rows.append(
            Call(
                call_id=call_id,
                queue="general",
                agent=agent,
                offered_at=when - timedelta(minutes=20),
                answered_at=when - timedelta(minutes=19),
                ended_at=when - timedelta(minutes=15),
                handle_seconds=handle,
            )
        )
        rows.append(
            Survey(
                id=f"S-{index}",
                subject=call_id,
                channel="call",
                score=5 if satisfied else 1,
                scale=5,
                satisfied=satisfied,
                time=when - timedelta(minutes=10),
            )
        )
    with Session(engine) as session, session.begin():
        session.add_all(rows)


def test_supervisor_figures_and_page(engine: Engine, tmp_path: Path) -> None:  # noqa: F811
    fill(engine, MORNING)
    staff(engine)
    with serve(config_for(engine), engine) as served:
        with urllib.request.urlopen(served.url + "api/supervisor", timeout=10) as response:
            view = json.loads(response.read())

        async def browse() -> dict[str, Any]:
            async with Chromium(tmp_path / "profile") as browser:
                page = await browser.page(1920, 1080)
                await page.goto(served.url + "supervisor?lang=ar")
                await page.wait_for("document.querySelectorAll('#agents tbody tr').length >= 2")
                today = await page.evaluate(
                    "[...document.querySelectorAll('#agents tbody tr')].map(r => r.dataset.name)"
                )
                await page.evaluate("document.querySelector('[data-period=week]').click()")
                week = await page.evaluate(
                    "[...document.querySelectorAll('#agents tbody tr')].map(r => r.dataset.name)"
                )
                shot = await page.screenshot(tmp_path / "supervisor-ar-1920x1080.png")
                print("\nscreenshot:", shot)
                return {"today": today, "week": week, "dir": await page.evaluate("document.documentElement.dir")}

        page = asyncio.run(browse())
    agents = {period: {a["name"]: a for a in view["agents"][period]} for period in ("today", "week")}
    assert [a["name"] for a in view["agents"]["today"]][0] == "a-2"  # holds the breached ticket
    a1 = agents["today"]["a-1"]
    assert (a1["team"], a1["calls_answered"], a1["average_handle_seconds"], a1["satisfaction"], a1["responses"]) == (
        "maintenance",
        2,
        300.0,
        1.0,
        2,
    )
    a2 = agents["today"]["a-2"]
    assert (a2["open_tickets"], a2["breached"], a2["needs_help"]) == (1, 1, True)
    a3_week = agents["week"]["a-3"]
    assert (a3_week["calls_answered"], a3_week["satisfaction"], a3_week["at_risk"], a3_week["team"]) == (
        2,
        0.0,
        1,
        "zakat-desk",
    )
    assert agents["today"]["a-3"]["calls_answered"] == 0
    teams = [t["name"] for t in view["teams"]["week"]]
    assert teams[0] == "maintenance" and "zakat-desk" in teams
    assert page["today"][0] == "a-2" and page["week"][:2] == ["a-2", "a-3"] and page["dir"] == "rtl"

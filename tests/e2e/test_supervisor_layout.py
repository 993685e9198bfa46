"""`/supervisor` in real headless Chromium at 1920x1080 and 3840x2160, in Arabic and in English, with a full
department (six teams, 33 agents): the page does not scroll, every card and column is inside
the screen, the agents' table scrolls inside its card with the one who needs help on top and in
view. Screenshots are saved in the test's directory (`pytest -s` prints them)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sinks.db.models import Call, Survey
from tests.e2e.test_wallboard_browser import MORNING, config_for, engine, fill, serve  # noqa: F401  (fixture)
from tests.e2e.test_wallboard_supervisor import assigned, staff
from tests.support.chromium import Chromium

TEAMS = ("maintenance", "zakat-desk", "quran-centres", "mosque-services", "fatwa-line", "events")
MEASURE = r"""(() => {
  const d = document.documentElement, rect = (e) => e.getBoundingClientRect();
  const cards = [...document.querySelectorAll(".card")];
  const first = document.querySelector("#agents tbody tr");
  return {
    scrollHeight: d.scrollHeight, scrollWidth: d.scrollWidth, innerHeight, innerWidth, lang: d.lang, dir: d.dir,
    outside: cards.filter((c) => { const r = rect(c);
      return r.top < 0 || r.left < 0 || r.bottom > innerHeight + 0.5 || r.right > innerWidth + 0.5; }).length,
    clippedCells: [...document.querySelectorAll("td, th")].filter((cell) => {
      const c = rect(cell.closest(".card")), r = rect(cell);
      return r.right > c.right + 0.5 || r.left < c.left - 0.5; }).length,
    agents: document.querySelectorAll("#agents tbody tr").length,
    firstAgent: first.dataset.name,
    firstAgentInView: rect(first).bottom <= Math.min(innerHeight, rect(first.closest(".card")).bottom),
    minText: Math.min(...[...document.querySelectorAll("td, th")].map((e) => parseFloat(getComputedStyle(e).fontSize))),
  };
})()"""


def department(engine: Engine) -> None:
    """Thirty agents in six teams, each with answered calls, survey answers and a ticket this morning."""
    rows: list[Any] = []
    for index in range(30):
        agent, team = f"agent-{index:03d}", TEAMS[index % len(TEAMS)]
        rows.append(assigned(f"T-dept-{index:03d}", team, agent, 120 + index))
        rows.append(
            Survey(
                id=f"S-dept-{index:03d}",
                subject=f"T-dept-{index:03d}",
                channel="crm",
                score=4,
                scale=5,
                satisfied=True,
                time=MORNING - timedelta(minutes=20),
            )
        )  # names the agent's team
        for n in range(1 + index % 3):
            call_id = f"C-dept-{index:03d}-{n}"
            at = MORNING - timedelta(minutes=30 + 7 * n + index)
            rows.append(
                Call(
                    call_id=call_id,
                    queue="general",
                    agent=agent,
                    offered_at=at - timedelta(minutes=5),
                    answered_at=at - timedelta(minutes=4),
                    ended_at=at,
                    handle_seconds=240.0 + 11 * index,
                )
            )
            rows.append(
                Survey(
                    id=f"S-dept-{index:03d}-{n}",
                    subject=call_id,
                    channel="call",
                    score=2 + (index + n) % 4,
                    scale=5,
                    satisfied=(index + n) % 4 >= 2,
                    time=at + timedelta(minutes=2),
                )
            )
    with Session(engine) as session, session.begin():
        session.add_all(rows)


def test_supervisor_fits_both_sizes_in_both_languages(engine: Engine, tmp_path: Path) -> None:  # noqa: F811
    fill(engine, MORNING)
    staff(engine)  # a-1 to a-3; a-2 holds the breached ticket
    department(engine)
    with serve(config_for(engine), engine) as served:

        async def browse() -> dict[tuple[str, int], dict[str, Any]]:
            results: dict[tuple[str, int], dict[str, Any]] = {}
            shots: list[Path] = []
            async with Chromium(tmp_path / "profile") as browser:
                for lang in ("ar", "en"):
                    for width, height in ((1920, 1080), (3840, 2160)):
                        page = await browser.page(width, height)
                        await page.goto(f"{served.url}supervisor?lang={lang}")
                        await page.wait_for("document.querySelectorAll('#agents tbody tr').length >= 33")
                        results[(lang, width)] = await page.evaluate(MEASURE)
                        shots.append(await page.screenshot(tmp_path / f"supervisor-{lang}-{width}x{height}.png"))
            print("\nsupervisor screenshots:", *shots, sep="\n  ")
            return results

        results = asyncio.run(browse())
    for (lang, width), r in results.items():
        where = (lang, width, r)
        assert r["scrollHeight"] <= r["innerHeight"] and r["scrollWidth"] <= r["innerWidth"], where
        assert (r["outside"], r["clippedCells"], r["agents"]) == (0, 0, 33), where
        assert r["firstAgentInView"] and r["firstAgent"] == "a-2", where  # holds the breached ticket
        assert r["minText"] >= 16 * width / 1920, where
        assert (r["lang"], r["dir"]) == ((lang, "rtl") if lang == "ar" else (lang, "ltr")), where

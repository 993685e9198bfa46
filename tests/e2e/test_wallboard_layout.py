"""The wall display in a real headless Chromium (DevTools protocol): it fits 1920x1080 and
3840x2160 without scrolling in each language, nothing is clipped, type is large enough, every
text keeps a contrast of at least 4.5:1 and no state is told by colour alone.

Screenshots of each language at each size are saved under the test's tmp folder; their paths
are printed (`pytest -s`) and listed in `screenshots.txt` there.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sinks.db.engine import make_engine
from sinks.db.migrate import upgrade
from sinks.db.models import Call, Visit
from tests.e2e.test_wallboard_browser import MORNING, breach, config_for, fill, kpi, serve, ticket
from tests.support.chromium import Chromium, Page

SIZES = ((1920, 1080), (3840, 2160))
LANGUAGES = ("both", "ar", "en")

MEASURE = r"""(() => {
  const d = document.documentElement;
  const visible = (e) => { const s = getComputedStyle(e);
    return s.display !== "none" && s.visibility !== "hidden" && e.getClientRects().length > 0; };
  const ownText = (e) => [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  const cards = [...document.querySelectorAll(".card")];
  const rect = (e) => e.getBoundingClientRect();
  const texts = [...document.querySelectorAll("body *")].filter((e) => visible(e) && ownText(e));
  const size = (e) => parseFloat(getComputedStyle(e).fontSize);
  const min = (list) => Math.min(...list.map(size));
  const dataIds = (e) => e.closest(".category, .ticket-id, .id");
  const language = texts.filter((e) => !dataIds(e)).map((e) => [...e.childNodes]
    .filter((n) => n.nodeType === 3).map((n) => n.textContent).join("")).join(" ");
  return {
    scrollHeight: d.scrollHeight, scrollWidth: d.scrollWidth, innerHeight, innerWidth,
    lang: d.lang, dir: d.dir,
    overflowing: cards.filter((c) => c.scrollHeight > c.clientHeight + 1 || c.scrollWidth > c.clientWidth + 1)
      .map((c) => c.className),
    outside: cards.filter((c) => { const r = rect(c);
      return r.top < 0 || r.left < 0 || r.bottom > innerHeight + 0.5 || r.right > innerWidth + 0.5; })
      .map((c) => c.className),
    clippedCells: [...document.querySelectorAll("td, th")].filter(visible).filter((cell) => {
      const c = rect(cell.closest(".card")), r = rect(cell);
      return r.right > c.right + 0.5 || r.left < c.left - 0.5 || r.bottom > c.bottom + 0.5; }).length,
    minText: min(texts), minFigure: min([...document.querySelectorAll(".tile-value, .state-value, .ratio")]),
    minTableFigure: min([...document.querySelectorAll("td.num")].filter(visible)),
    text: language,
    rows: { breaches: document.querySelectorAll("#breaches-body tr").length,
            queues: document.querySelectorAll("#queues-body tr").length,
            centres: document.querySelectorAll("#walkin-body tr").length },
    ticketsLeft: rect(document.querySelector(".tickets")).left,
    breachesLeft: rect(document.querySelector(".breaches")).left,
  };
})()"""

CONTRAST = r"""(() => {
  const parse = (c) => { const p = c.match(/rgba?\(([^)]+)\)/)[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  const background = (e) => { const layers = [];
    for (let n = e; n; n = n.parentElement) { const c = parse(getComputedStyle(n).backgroundColor);
      if (c[3] > 0) layers.push(c); if (c[3] >= 1) break; }
    return layers.reverse().reduce((bg, layer) => over(layer, bg), [255, 255, 255, 1]); };
  const channel = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const luminance = (c) => 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]);
  const visible = (e) => { const s = getComputedStyle(e);
    return s.display !== "none" && s.visibility !== "hidden" && e.getClientRects().length > 0; };
  const checked = [], failing = [];
  for (const e of document.querySelectorAll("body *")) {
    if (!visible(e) || ![...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    let opacity = 1;
    for (let n = e; n; n = n.parentElement) opacity *= parseFloat(getComputedStyle(n).opacity);
    const bg = background(e), fg = parse(getComputedStyle(e).color);
    const text = over([fg[0], fg[1], fg[2], fg[3] * opacity], bg);
    const [hi, lo] = [luminance(text), luminance(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    checked.push(ratio);
    if (ratio < 4.5) failing.push([e.textContent.trim().slice(0, 40), getComputedStyle(e).color, ratio.toFixed(2)]);
  }
  // states: every coloured figure carries a symbol, or sits in a tile labelled with symbol and word
  const uncoded = [...document.querySelectorAll(".on_target, .at_risk, .breached")].filter((e) =>
    visible(e) && e.textContent.trim() && !/[✓▲✕]/.test(e.textContent) && !e.closest(".state"))
    .map((e) => e.outerHTML.slice(0, 80));
  return { checked: checked.length, lowest: Math.min(...checked), failing, uncoded };
})()"""


def fill_busy(engine: Engine) -> None:
    """More than fits: twelve breaches, four queues, four centres, five channels of open tickets."""
    now = MORNING
    as_of = now - timedelta(seconds=10)
    rows: list[Any] = []
    queues = {"mosques": 0.64, "quran_centres": 0.91}
    for queue, level in queues.items():
        rows.append(kpi("calls.service_level", {"queue": queue}, level, 100, as_of))
        rows.append(kpi("calls.average_speed_of_answer_seconds", {"queue": queue}, 20 + 40 * (1 - level), 90, as_of))
        rows.append(Call(call_id=f"C-wait-{queue}", queue=queue, offered_at=now - timedelta(seconds=30 + 100 * level)))
    for index, centre in enumerate(
        ["mbr_islamic_culture_centre", "mosque_engineering_building", "maktoum_quran_centre"]
    ):
        rows.append(
            Visit(visit_id=f"V-w-{centre}", centre=centre, checked_in_at=now - timedelta(minutes=5 + 14 * index))
        )
    channels = ["crm", "email", "web", "app", "social", "call"]
    for index in range(12):
        ticket_id = f"T-2025-0007{index:02d}"
        rows += ticket(
            ticket_id,
            channels[index % len(channels)],
            "complaint",
            "high",
            "open",
            now - timedelta(hours=9),
            {"resolution": ("breached", True, True)},
            category="mosque.air_conditioning.maintenance_request",
        )
        rows.append(
            breach(
                ticket_id,
                now - timedelta(minutes=20 + 37 * index),
                "mosque.air_conditioning.maintenance_request",
                channels[index % len(channels)],
            )
        )
    with Session(engine) as session, session.begin():
        session.add_all(rows)


@pytest.fixture
def busy_sqlite(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    upgrade(url)
    engine = make_engine(url)
    fill(engine, MORNING)
    fill_busy(engine)
    return engine


async def open_board(browser: Chromium, url: str, width: int, height: int) -> Page:
    page = await browser.page(width, height)
    await page.goto(url)
    await page.wait_for(
        "document.documentElement.dataset.live === 'live' && document.querySelectorAll('#breaches-body tr').length > 0"
    )
    return page


def test_board_fits_both_sizes_in_each_language(busy_sqlite: Engine, tmp_path: Path) -> None:
    shots: list[Path] = []

    async def run(url: str) -> dict[tuple[str, int], dict[str, Any]]:
        results = {}
        async with Chromium(tmp_path / "profile") as browser:
            for lang in LANGUAGES:
                for width, height in SIZES:
                    page = await open_board(browser, f"{url}?lang={lang}", width, height)
                    results[(lang, width)] = {**await page.evaluate(MEASURE), **await page.evaluate(CONTRAST)}
                    shots.append(await page.screenshot(tmp_path / f"wallboard-{lang}-{width}x{height}.png"))
                    await browser.send("Target.closeTarget", {"targetId": await _target(page)})
        return results

    with serve(config_for(busy_sqlite), busy_sqlite) as served:
        results = asyncio.run(run(served.url))
    (tmp_path / "screenshots.txt").write_text("\n".join(map(str, shots)) + "\n")
    print("\nwall display screenshots:", *shots, sep="\n  ")
    for (lang, width), r in results.items():
        where = f"{lang} at {width}"
        scale = width / 1920
        assert r["scrollHeight"] <= r["innerHeight"] and r["scrollWidth"] <= r["innerWidth"], (where, r)
        assert (r["overflowing"], r["outside"], r["clippedCells"]) == ([], [], 0), (where, r)
        assert r["minText"] >= 18 * scale, (where, r["minText"])  # labels: 18 px at 1080p
        assert r["minFigure"] >= 48 * scale, (where, r["minFigure"])  # headline figures
        assert r["minTableFigure"] >= 26 * scale, (where, r["minTableFigure"])
        assert r["rows"]["breaches"] >= 4 and r["rows"]["queues"] == 4, (where, r["rows"])
        assert r["failing"] == [] and r["lowest"] >= 4.5 and r["checked"] > 50, (where, r["failing"])
        assert r["uncoded"] == [], (where, r["uncoded"])
        if lang == "ar":
            assert (r["lang"], r["dir"]) == ("ar", "rtl"), where
            assert r["ticketsLeft"] > r["breachesLeft"], where  # mirrored: the first panel on the right
            assert not any(c.isascii() and c.isalpha() for c in r["text"]), (where, r["text"][:300])
            assert "الطلبات المفتوحة" in r["text"]
        else:
            assert (r["lang"], r["dir"]) == ("en", "ltr") and r["ticketsLeft"] < r["breachesLeft"], where
        if lang == "en":
            assert not any("\u0600" <= c <= "\u06ff" for c in r["text"]), (where, r["text"][:300])
        if lang == "both":
            assert "Open tickets" in r["text"] and "الطلبات المفتوحة" in r["text"]
    for shot in shots:
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def _target(page: Page) -> str:
    info = await page.send("Target.getTargetInfo")
    return str(info["targetInfo"]["targetId"])


def test_arabic_digits_and_the_stale_banner(tmp_path: Path) -> None:
    """`&digits=arab` writes figures in Arabic-Indic digits; the stale banner keeps its contrast."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url)
    engine = make_engine(url)
    fill(engine, MORNING - timedelta(hours=1))

    async def run(base: str) -> dict[str, Any]:
        async with Chromium(tmp_path / "profile") as browser:
            page = await open_board(browser, f"{base}?lang=ar&digits=arab", 1920, 1080)
            await page.wait_for("!document.getElementById('stale').hidden")
            shot = await page.screenshot(tmp_path / "wallboard-ar-digits-stale.png")
            print("\nscreenshot:", shot)
            return {
                **await page.evaluate(CONTRAST),
                **await page.evaluate(MEASURE),
                "banner": await page.evaluate("document.getElementById('stale').innerText"),
                "breached": await page.evaluate("document.getElementById('tickets-breached').textContent"),
            }

    with serve(config_for(engine, stale_after_seconds=300), engine) as served:
        result = asyncio.run(run(served.url))
    engine.dispose()
    assert result["breached"] == "١"
    assert "البيانات لا تتحدث" in result["banner"] and "Data is not" not in result["banner"]
    assert result["failing"] == [] and result["scrollHeight"] <= result["innerHeight"]

"""`/tickets/<id>` on the wall display server, rendered by a real headless Chromium: the
hand-computed National Day scenario shows its deadlines exactly, in English and in Arabic (right
to left), without JavaScript."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import Engine

from sinks.db.engine import make_engine
from sinks.wallboard import WallboardConfig, create_app
from tests.integration.test_ticket_cmd import store_pipeline_run

NOW = datetime(2025, 12, 30, 8, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    store_pipeline_run(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@contextmanager
def serve(engine: Engine) -> Iterator[str]:
    config = WallboardConfig(database_url=engine.url.render_as_string(hide_password=False))
    app = create_app(config, engine=engine, clock=lambda: NOW)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def chromium(url: str, profile: Path, *extra: str) -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is missing: install the Debian package chromium")
    result = subprocess.run(
        [
            path,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=3000",
            f"--user-data-dir={profile}",
            "--window-size=1920,1080",
            *extra,
            url,
        ],
        capture_output=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result.stdout.decode()


def deadlines(dom: str) -> list[str]:
    return re.findall(r'class="deadline-value"><time datetime="([^"]+)"', dom)


def test_the_page_shows_the_hand_computed_deadlines(engine: Engine, tmp_path: Path) -> None:
    with serve(engine) as url:
        dom = chromium(url + "tickets/T-77?lang=en", tmp_path / "en", "--dump-dom")
        assert deadlines(dom) == ["2025-12-03T09:30:00+04:00", "2025-12-10T11:30:00+04:00"]
        assert re.findall(r'class="warning-value"><time datetime="([^"]+)"', dom) == [
            "2025-12-03T07:54:00+04:00",
            "2025-12-09T11:30:00+04:00",
        ]
        assert "Mon 2025-12-01: holiday - National Day" in dom
        assert "31h30m = 40h − 8h30m (counted before), from <time" in dom
        assert "6h30m working time not counted" in dom
        assert '<html lang="en" dir="ltr">' in dom
        with urllib.request.urlopen(url + "tickets/T-77", timeout=10) as served:
            assert "<script" not in served.read().decode()  # the whole story without JavaScript
        assert "✗ breached" in dom and "✓ met" in dom  # a symbol and a word, not colour alone
        assert dom.count("= agree") == 3 and "◐ computed only" in dom
        assert re.findall(r'class="stored-target">Stored by the pipeline: <span class="state state-(\w+)"', dom) == [
            "met",
            "breached",
        ]
        arabic = chromium(url + "tickets/T-77?lang=ar", tmp_path / "ar", "--dump-dom")
        assert '<html lang="ar" dir="rtl">' in arabic
        assert deadlines(arabic) == deadlines(dom) and "الموعد النهائي" in arabic and "Deadline" not in arabic
        both = chromium(url + "tickets/T-77", tmp_path / "both", "--dump-dom")
        assert "Deadline" in both and "الموعد النهائي" in both
        paused = chromium(url + "tickets/T-77?lang=en&at=2025-12-03T12:00", tmp_path / "p", "--dump-dom")
        assert deadlines(paused) == ["2025-12-03T09:30:00+04:00"] and "none while the clock is paused" in paused
        shots = Path(os.environ.get("TAWASUL_TEST_ARTIFACTS") or tmp_path)  # screenshots to look at
        shots.mkdir(parents=True, exist_ok=True)
        for lang in ("en", "ar"):
            chromium(
                url + f"tickets/T-77?lang={lang}",
                tmp_path / f"shot-{lang}",
                f"--screenshot={shots / f'ticket-page-{lang}.png'}",
            )
            assert (shots / f"ticket-page-{lang}.png").stat().st_size > 10_000
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(url + "tickets/T-404?lang=en", timeout=10)
        assert missing.value.code == 404 and "No stored event of this ticket." in missing.value.read().decode()

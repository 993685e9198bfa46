"""The wall display's server end to end: a database filled with the sink's models (SQLite and
PostgreSQL), the aiohttp server on a free loopback port, its JSON API, health and errors, and the
`wallboard` command. The page itself is tested in Chromium by test_wallboard_layout.py,
test_wallboard_live.py and test_wallboard_supervisor.py, which use the helpers here."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sinks.db.engine import make_engine
from sinks.db.migrate import upgrade
from sinks.db.models import Call, KpiSnapshot, SlaOutcome, Ticket, TicketTarget, Visit
from sinks.wallboard import WallboardConfig, create_app

BREACHED_TICKET = "T-2025-000123"


# -- data -----------------------------------------------------------------------------------------
def kpi(figure: str, scope: dict[str, str], value: float | None, count: int | None, as_of: datetime) -> KpiSnapshot:
    scope_text = json.dumps(scope, sort_keys=True, separators=(",", ":"))
    key = f"{figure}|today|{','.join(f'{k}={v}' for k, v in sorted(scope.items()))}"
    return KpiSnapshot(
        key=key,
        figure=figure,
        window="today",
        scope=scope_text,
        value=value,
        count=count,
        as_of=as_of,
        event_id=f"kpi-{key}",
        payload="{}",
    )


def ticket(
    ticket_id: str,
    channel: str,
    kind: str,
    priority: str,
    status: str,
    opened: datetime,
    targets: dict[str, tuple[str, bool, bool]],
    category: str = "mosque.air_conditioning",
) -> list[Any]:
    rows: list[Any] = [
        Ticket(
            ticket_id=ticket_id,
            channel=channel,
            kind=kind,
            category=category,
            priority=priority,
            department=None,
            status=status,
            policy="mosque-urgent",
            opened_at=opened,
            resolved_at=None if status == "open" else opened + timedelta(hours=5),
            closed_at=None,
            updated_at=opened + timedelta(minutes=1),
            version=3,
        )
    ]
    for target, (state, warned, breached) in targets.items():
        rows.append(
            TicketTarget(
                ticket_id=ticket_id,
                target=target,
                deadline=opened + timedelta(hours=4),
                state=state,
                warned=warned,
                breached=breached,
                version=3,
            )
        )
    return rows


def breach(ticket_id: str, deadline: datetime, category: str, channel: str) -> SlaOutcome:
    return SlaOutcome(
        id=f"{ticket_id}:resolution:sla.breached:0",
        type="sla.breached",
        ticket_id=ticket_id,
        target="resolution",
        policy="mosque-urgent",
        deadline=deadline,
        channel=channel,
        kind="facility_report",
        category=category,
        priority="urgent",
        time=deadline,
    )


MORNING = datetime(2026, 3, 4, 6, 30, tzinfo=UTC)
"""10:30 on a Wednesday in Dubai: the served wall display's clock. With the wall clock, the
"today" counts of calls and visits filled minutes before `now` fell on yesterday when the
suite ran in the half hour after Dubai midnight."""


def fill(engine: Engine, now: datetime) -> None:
    """A morning at the department up to `now`: KPIs, calls, visits, open tickets and one breach."""
    as_of = now - timedelta(seconds=10)
    opened = now - timedelta(hours=6, minutes=15)
    with Session(engine) as session, session.begin():
        session.add_all(
            [
                kpi("surveys.satisfaction", {"channel": "call"}, 0.985, 200, as_of),
                kpi("surveys.satisfaction", {"channel": "crm"}, 0.912, 150, as_of),
                kpi("surveys.satisfaction", {"channel": "walk_in"}, 0.96, 25, as_of),
                kpi("calls.service_level", {}, 0.84, 180, as_of),
                kpi("calls.service_level", {"queue": "general"}, 0.87, 120, as_of),
                kpi("calls.service_level", {"queue": "zakat"}, 0.72, 60, as_of),
                kpi("calls.average_speed_of_answer_seconds", {}, 14.5, 170, as_of),
                kpi("calls.average_speed_of_answer_seconds", {"queue": "zakat"}, 41.0, 55, as_of),
                kpi("calls.abandon_ratio", {}, 0.031, 180, as_of),
                Call(
                    call_id="C-1",
                    queue="general",
                    offered_at=now - timedelta(minutes=30),
                    answered_at=now - timedelta(minutes=29, seconds=50),
                ),
                Call(
                    call_id="C-2",
                    queue="general",
                    offered_at=now - timedelta(minutes=20),
                    answered_at=now - timedelta(minutes=19),
                ),
                Call(call_id="C-3", queue="general", offered_at=now - timedelta(seconds=95)),
                Call(
                    call_id="C-4",
                    queue="zakat",
                    offered_at=now - timedelta(minutes=10),
                    abandoned_at=now - timedelta(minutes=9),
                ),
                Call(call_id="C-5", queue="zakat", offered_at=now - timedelta(seconds=40)),
                Call(call_id="C-old", queue="general", offered_at=now - timedelta(days=2)),
                Visit(
                    visit_id="V-1",
                    centre="main_building",
                    checked_in_at=now - timedelta(minutes=50),
                    called_at=now - timedelta(minutes=40),
                    completed_at=now - timedelta(minutes=20),
                ),
                Visit(visit_id="V-2", centre="main_building", checked_in_at=now - timedelta(minutes=10)),
                *ticket(
                    BREACHED_TICKET,
                    "complaints_platform",
                    "facility_report",
                    "urgent",
                    "open",
                    opened,
                    {"first_response": ("met", False, False), "resolution": ("breached", True, True)},
                ),
                *ticket(
                    "T-2025-000124",
                    "crm",
                    "request",
                    "normal",
                    "open",
                    opened,
                    {"first_response": ("met", False, False), "resolution": ("running", True, False)},
                    category="zakat.request",
                ),
                *ticket(
                    "T-2025-000125",
                    "crm",
                    "request",
                    "normal",
                    "open",
                    opened,
                    {"first_response": ("running", False, False), "resolution": ("running", False, False)},
                    category="zakat.request",
                ),
                *ticket(
                    "T-2025-000126",
                    "call",
                    "inquiry",
                    "low",
                    "resolved",
                    opened,
                    {"resolution": ("met", False, False)},
                    category="general.inquiry",
                ),
                breach(
                    BREACHED_TICKET,
                    now - timedelta(hours=2, minutes=15),
                    "mosque.air_conditioning",
                    "complaints_platform",
                ),
            ]
        )


# -- server ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Served:
    url: str
    port: int


@contextmanager
def serve(config: WallboardConfig, engine: Engine, *, now: datetime = MORNING, port: int = 0) -> Iterator[Served]:
    """The wall display on a loopback port (a free one unless given), in a thread with its own
    event loop; its clock stands at `now` (the "today" figures must not depend on when the suite runs)."""
    app = create_app(config, engine=engine, clock=lambda: now)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, shutdown_timeout=2)
    started: concurrent.futures.Future[int] = concurrent.futures.Future()

    async def start() -> None:
        try:
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
            started.set_result(runner.addresses[0][1])
        except BaseException as exc:
            started.set_exception(exc)

    def run() -> None:  # its own thread: a test may run its own event loop meanwhile
        asyncio.set_event_loop(loop)
        loop.create_task(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    bound = started.result(timeout=30)
    try:
        yield Served(f"http://127.0.0.1:{bound}/", bound)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def config_for(engine: Engine, **changes: Any) -> WallboardConfig:
    return WallboardConfig(database_url=engine.url.render_as_string(hide_password=False), **changes)


# -- tests ----------------------------------------------------------------------------------------
def test_api_reports_the_database(engine: Engine) -> None:
    now = MORNING
    fill(engine, now)
    with serve(config_for(engine), engine) as served:
        with urllib.request.urlopen(served.url + "api/wallboard", timeout=10) as response:
            board = json.loads(response.read())
            assert response.headers["Cache-Control"] == "no-store"
        with urllib.request.urlopen(served.url + "healthz", timeout=10) as response:
            assert json.loads(response.read()) == {"status": "ok"}
    assert board["stale"] is False and board["timezone"] == "Asia/Dubai"
    assert board["generated_at"].endswith("+04:00")
    calls = board["calls"]
    assert (calls["offered_today"] >= 3, calls["waiting"], calls["service_level"], calls["asa_seconds"]) == (
        True,
        2,
        0.84,
        14.5,
    )
    queues = {q["queue"]: q for q in calls["queues"]}
    assert queues["general"]["waiting"] == 1 and 94 <= queues["general"]["longest_wait_seconds"] <= 120
    assert (queues["zakat"]["service_level"], queues["zakat"]["service_level_status"]) == (0.72, "at_risk")
    assert (queues["zakat"]["asa_seconds"], queues["zakat"]["asa_status"]) == (41.0, "at_risk")
    satisfaction = {s["channel"]: s for s in board["satisfaction"]}
    assert [s["channel"] for s in board["satisfaction"]][:2] == ["call", "crm"]
    assert (satisfaction["call"]["ratio"], satisfaction["call"]["target"], satisfaction["call"]["status"]) == (
        0.985,
        0.98,
        "on_target",
    )
    assert (satisfaction["crm"]["ratio"], satisfaction["crm"]["status"]) == (0.912, "at_risk")
    assert satisfaction["walk_in"]["status"] == "none"
    tickets = board["tickets"]
    assert (tickets["on_track"], tickets["at_risk"], tickets["breached"], tickets["no_sla"]) == (1, 1, 1, 0)
    [late] = tickets["breaches"]
    assert (late["ticket_id"], late["category"], late["channel"], late["still_open"]) == (
        BREACHED_TICKET,
        "mosque.air_conditioning",
        "complaints_platform",
        True,
    )
    assert 2 * 3600 + 15 * 60 <= late["late_seconds"] <= 2 * 3600 + 16 * 60
    [centre] = board["walk_in"]
    assert (centre["centre"], centre["waiting"], centre["completed_today"]) == ("main_building", 1, 1)


def test_visits_count_today_by_their_own_times_across_midnight(engine: Engine) -> None:
    """00:20 in Dubai: a visit checked in at 23:50 and completed at 00:10 is completed today,
    not checked in today; one checked in at 00:05 and still waiting is checked in today."""
    from sinks.wallboard.queries import read_board

    now = datetime(2026, 11, 28, 20, 20, tzinfo=UTC)  # 2026-11-29 00:20 Asia/Dubai
    with Session(engine) as session, session.begin():
        session.add_all(
            [
                Visit(
                    visit_id="V-night",
                    centre="main_building",
                    checked_in_at=now - timedelta(minutes=30),
                    called_at=now - timedelta(minutes=20),
                    completed_at=now - timedelta(minutes=10),
                ),
                Visit(visit_id="V-early", centre="main_building", checked_in_at=now - timedelta(minutes=15)),
                Visit(
                    visit_id="V-other",
                    centre="branch",
                    checked_in_at=now - timedelta(hours=2),
                    completed_at=now - timedelta(minutes=90),
                ),  # all of it yesterday
            ]
        )
    centres = {c.centre: c for c in read_board(engine, config_for(engine), now).walk_in}
    assert (centres["main_building"].checked_in_today, centres["main_building"].completed_today) == (1, 1)
    assert "branch" not in centres


def test_api_says_stale_when_the_data_stops(engine: Engine) -> None:
    fill(engine, MORNING - timedelta(hours=1))
    with (
        serve(config_for(engine, stale_after_seconds=300), engine) as served,
        urllib.request.urlopen(served.url + "api/wallboard", timeout=10) as response,
    ):
        board = json.loads(response.read())
    assert board["stale"] is True


def test_api_and_health_answer_503_without_a_database(tmp_path: Path) -> None:
    missing = make_engine(f"sqlite:///{tmp_path / 'absent' / 'nothing.db'}")
    with serve(WallboardConfig(database_url=str(missing.url)), missing) as served:
        for path in ("api/wallboard", "healthz"):
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(served.url + path, timeout=10)
            assert answer.value.code == 503
        with urllib.request.urlopen(served.url, timeout=10) as page:
            assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    missing.dispose()


def test_wallboard_command_serves_the_page(tmp_path: Path) -> None:
    """`tawasul wallboard` with its token from `TAWASUL_WALLBOARD_TOKEN`, on loopback."""
    url = f"sqlite:///{tmp_path / 'tawasul.db'}"
    upgrade(url)
    engine = make_engine(url)
    fill(engine, datetime.now(UTC))
    engine.dispose()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-c",
        "from sinks.wallboard.cli import wallboard; wallboard()",
        "--db",
        url,
        "--port",
        str(port),
        "--refresh",
        "2",
    ]
    server = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TAWASUL_WALLBOARD_TOKEN": "wall-token"},
    )
    base = f"http://127.0.0.1:{port}"
    bearer = {"Authorization": "Bearer wall-token"}

    def get(path: str, headers: dict[str, str] | None = None) -> Any:
        return urllib.request.urlopen(urllib.request.Request(base + path, headers=headers or {}), timeout=5)

    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with get("/healthz") as response:
                    assert response.status == 200
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the wallboard did not start"
                time.sleep(0.2)
        with pytest.raises(urllib.error.HTTPError) as refused:
            get("/api/wallboard")
        assert refused.value.code == 401
        with get("/?lang=ar", bearer) as page:
            assert '<html lang="ar" dir="rtl" data-mode="ar" data-digits="latn">' in page.read().decode()
        with get("/api/wallboard", bearer) as response:
            board = json.loads(response.read())
        assert board["refresh_seconds"] == 2 and board["tickets"]["breaches"][0]["ticket_id"] == BREACHED_TICKET
        with get("/static/wallboard.js", bearer) as script:
            assert script.headers["Content-Type"].startswith(("application/javascript", "text/javascript"))
        with pytest.raises(urllib.error.HTTPError) as bad:
            get("/?lang=fr", bearer)
        assert bad.value.code == 400 and b"lang must be one of both, ar, en" in bad.value.read()
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0

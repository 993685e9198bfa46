"""Helpers of the fault tests on live workers (`tawasul worker`): the events, their oracle, the
sink storing the outcomes, the consumer group's lag.

The events leave no race to chance: half the tickets were opened 2 minutes ago (their warning
and breach are due the moment a worker reads them), the others are acknowledged half a second
after opening, a minute before their deadline (met, never warned).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from schemas import Event, new_event
from tawasul.domain.calendars import to_us
from tawasul.domain.policies import load_policies
from tawasul.domain.sla import apply, due_us
from tawasul.infra.settings import Settings
from tawasul.infra.topics import partition_end_offsets
from tests.faults.conftest import REPO, _child_env
from tests.integration.test_sla_stream import prefixed_settings
from tests.support.kafka import committed_offsets

POLICIES = """\
calendars:
  always: {timezone: Asia/Dubai, always_open: true}
policies:
  - name: kills
    match: {}
    calendar: always
    first_response: 60s
    resolution: 24h
    warn_at: 0.6
"""


@dataclass(frozen=True)
class LiveSetup:
    """Topics of one test (a unique prefix), its policy book, the worker group and the sink's database."""

    settings: Settings
    policies: Path
    app_id: str
    db: str
    env: dict[str, str]
    """The environment of `tawasul sink` (and any command) for this setup."""


def live_setup(bootstrap: str, folder: Path, name: str) -> LiveSetup:
    """Topics prefixed `<name>-<random>.` created on `bootstrap`, the policy book POLICIES, a
    SQLite database, all in `folder`."""
    policies = folder / "policies.yaml"
    policies.write_text(POLICIES)
    settings = prefixed_settings(bootstrap, policies, name)
    db = f"sqlite:///{folder / 'outcomes.db'}"
    env = {
        "TAWASUL_KAFKA": bootstrap,
        "TAWASUL_TOPIC_PREFIX": settings.topic_prefix,
        "TAWASUL_DATABASE_URL": db,
        "TAWASUL_POLICIES": str(policies),
    }
    return LiveSetup(settings, policies, f"{settings.topic_prefix}worker", db, env)


def chunk(run: str, n: int, now: datetime, size: int) -> list[Event]:
    """About `size` events: tickets opened 2 minutes ago (warning and breach due at once), and
    tickets opened now and acknowledged 0.5 s later (met). Ticket ids are `K-<run>-<n>-<k>-...`."""
    data = {"channel": "crm", "kind": "request", "category": "licensing.renewal", "priority": "normal"}
    source = "/channels/test/worker-kill"
    events: list[Event] = []
    for k in range(size // 3):
        late = f"K-{run}-{n}-{k}-late"
        events.append(new_event("ticket.opened", late, now - timedelta(minutes=2), data, source, id=f"{late}-open"))
        met = f"K-{run}-{n}-{k}-met"
        events.append(new_event("ticket.opened", met, now - timedelta(seconds=1), data, source, id=f"{met}-open"))
        events.append(new_event("ticket.acknowledged", met, now - timedelta(seconds=0.5), {}, source, id=f"{met}-ack"))
    return events


def oracle(events: list[Event], policies: Path, now: datetime) -> dict[str, str]:
    """Outcome id -> type, as the domain computes them from the events, due as of `now`."""
    book = load_policies(policies)
    states: dict[str, Any] = {}
    found: dict[str, str] = {}
    for event in events:
        state, outcomes = apply(states.get(event.subject), event, book)
        states[event.subject] = state
        found.update({o.id: o.type for o in outcomes})
    for state in states.values():
        _, outcomes = due_us(state, to_us(now), book)
        found.update({o.id: o.type for o in outcomes})
    return found


def stored_outcomes(db: str) -> dict[str, str]:
    """The sink's `sla_outcomes` as id -> type (empty before the schema exists)."""
    engine = create_engine(db)
    try:
        with engine.connect() as connection:
            return {row[0]: row[1] for row in connection.execute(text("select id, type from sla_outcomes"))}
    except Exception:  # noqa: BLE001 - the schema may not exist yet
        return {}
    finally:
        engine.dispose()


@contextmanager
def sink(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`tawasul sink` with `env` (see `_child_env`), its output in `log` at info level (how it joined
    its group, what it stored); stopped cleanly at the end."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tawasul", "sink", "--metrics-port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_child_env({"TAWASUL_LOG_LEVEL": "info", **env}),
            cwd=REPO,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)


def wait_stored(
    db: str, expected: dict[str, str], sink_process: subprocess.Popen[bytes], log: Path, timeout_s: float
) -> dict[str, str]:
    """The stored outcomes once they include `expected` (or at the timeout), and 2 s later (anything
    extra still on its way)."""
    deadline = time.monotonic() + timeout_s
    stored = stored_outcomes(db)
    while not expected.keys() <= stored.keys() and time.monotonic() < deadline:
        assert sink_process.poll() is None, log.read_text(errors="replace")[-3000:]
        time.sleep(1.0)
        stored = stored_outcomes(db)
    time.sleep(2.0)
    return stored_outcomes(db)


def stored_events(url: str) -> tuple[int, set[str]]:
    """(rows in the sink's `events`, distinct ids); (0, empty) before the sink made its tables or
    while the database does not answer."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            ids = [row[0] for row in connection.execute(text("select id from events"))]
        return len(ids), set(ids)
    except Exception:  # noqa: BLE001 - the schema may not exist yet, the server may be down
        return 0, set()
    finally:
        engine.dispose()


def split_in_halves(days: Path, folder: Path) -> tuple[set[str], list[list[str]], list[Path]]:
    """The event ids of a JSON Lines file, its lines in two halves, and a file of each half."""
    lines = [line for line in days.read_text(encoding="utf-8").splitlines() if line]
    expected = {json.loads(line)["id"] for line in lines}
    halves = [lines[: len(lines) // 2], lines[len(lines) // 2 :]]
    files = []
    for n, half in enumerate(halves):
        files.append(folder / f"half-{n}.jsonl")
        files[-1].write_text("\n".join(half) + "\n", encoding="utf-8")
    return expected, halves, files


def group_lag(bootstrap: str, group: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """End offset minus the group's committed offset, per partition of `topics` (none committed: 0)."""
    ends = partition_end_offsets(bootstrap, topics)
    lag: dict[tuple[str, int], int] = {}
    for topic in topics:
        committed = committed_offsets(bootstrap, group, topic)
        for (name, partition), end in ends.items():
            if name == topic:
                lag[(topic, partition)] = end - committed.get(partition, 0)
    return lag

"""`tawasul replay --engine batch` (the default) stores exactly what the faust agents store.

The same recorded days are replayed once through each engine into two SQLite databases; every
SLA outcome (same ids), every ticket's final state and targets, and the final value of every
KPI figure must be identical, and so must the newest `as_of` of the figures.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.support.sla_invariants import assert_no_sla_contradictions

REPO = Path(__file__).resolve().parents[2]

QUERIES = {
    "outcomes": "SELECT id, type, ticket_id, target, policy, deadline, channel, kind, category, priority, time "
    "FROM sla_outcomes ORDER BY id",
    "tickets": "SELECT ticket_id, channel, kind, category, priority, department, status, policy, opened_at, "
    "resolved_at, closed_at, updated_at, version FROM tickets ORDER BY ticket_id",
    "targets": "SELECT ticket_id, target, deadline, state, warned, breached, version FROM ticket_targets "
    "ORDER BY ticket_id, target",
    "figures": "SELECT key, value, count FROM kpi_snapshots ORDER BY key",
    "as_of": "SELECT max(as_of) FROM kpi_snapshots",
    "events": "SELECT count(*) FROM events",
}
UNMARKED = (
    "SELECT o.id FROM sla_outcomes o JOIN ticket_targets t ON t.ticket_id = o.ticket_id AND t.target = o.target "
    "WHERE o.id LIKE '%\\:0' AND ((o.type = 'sla.breached' AND NOT t.breached) "
    "OR (o.type = 'sla.warning' AND NOT t.warned))"
)
"""First-cycle warnings and breaches that the ticket's stored target does not show."""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("engines") / "days.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tawasul",
            "simulate",
            "--from",
            "2025-03-26",
            "--to",
            "2025-04-02",
            "--seed",
            "5",
            "--scale",
            "0.25",
            "--tail",
            "--out",
            str(path),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return path


def replay(path: Path, engine: str, db: str, kafka: str) -> None:
    env = {**os.environ, "TAWASUL_KAFKA": kafka, "TAWASUL_DATABASE_URL": db, "TAWASUL_LOG_LEVEL": "warning"}
    result = subprocess.run(
        [sys.executable, "-m", "tawasul", "replay", str(path), "--no-progress", "--engine", engine, "--timeout", "240"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def contents(db: str) -> dict[str, list[Any]]:
    engine = create_engine(db)
    try:
        with engine.connect() as connection:
            return {
                name: [tuple(row) for row in connection.execute(text(sql))]
                for name, sql in {**QUERIES, "unmarked": UNMARKED}.items()
            }
    finally:
        engine.dispose()


def test_the_batch_engine_stores_what_the_faust_agents_store(
    recorded: Path, tmp_path: Path, kafka_bootstrap: str
) -> None:
    batch_db, faust_db = f"sqlite:///{tmp_path / 'batch.db'}", f"sqlite:///{tmp_path / 'faust.db'}"
    replay(recorded, "batch", batch_db, kafka_bootstrap)
    replay(recorded, "faust", faust_db, kafka_bootstrap)
    batch, faust = contents(batch_db), contents(faust_db)
    assert len(batch["outcomes"]) > 100 and len(batch["tickets"]) > 100 and len(batch["figures"]) > 500
    assert {row[1] for row in batch["outcomes"]} == {"sla.warning", "sla.breached", "sla.met"}
    # a warning or breach fired by the clock (no new event, same version) reaches the ticket's row
    assert (batch["unmarked"], faust["unmarked"]) == ([], [])
    assert_no_sla_contradictions(batch_db)
    assert_no_sla_contradictions(faust_db)
    for name in QUERIES:
        if name == "figures":
            continue
        differing = sorted(set(batch[name]) ^ set(faust[name]))[:10]
        assert batch[name] == faust[name], f"{name} differ, e.g. {differing}"
    # Figures: the same value and count for every key. Both keep a zero for each backlog class
    # a ticket passed through, and the agents see each ticket state while the batch engine sees
    # the latest of each batch: such zero keys may exist on one side only.
    batch_figures = {key: (value, count) for key, value, count in batch["figures"]}
    faust_figures = {key: (value, count) for key, value, count in faust["figures"]}
    differing = [
        (key, batch_figures.get(key), faust_figures.get(key))
        for key in sorted(batch_figures.keys() | faust_figures.keys())
        if batch_figures.get(key) != faust_figures.get(key)
    ]
    unexplained = [
        item
        for item in differing
        if not (item[0].startswith("tickets.open|now|") and {item[1], item[2]} == {None, (0.0, 0)})
    ]
    assert not unexplained, f"{len(unexplained)} figures differ, e.g. {unexplained[:10]}"


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def _niceness(pid: int) -> tuple[int, str] | None:
    """(niceness of the process's main thread, its command line), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[16]), command


def test_the_replay_yields_the_cpu_to_its_engine(recorded: Path, tmp_path: Path, kafka_bootstrap: str) -> None:
    """The batch engine is the replay's critical path: `tawasul replay` lowers its own priority
    (and so its sink's and publisher's) once the engine runs, and the engine keeps the priority
    it was started with (read from /proc: the suite runs on Linux, as CI does)."""
    from tawasul.app.replay import YIELD_NICENESS

    base = os.nice(0)
    env = {
        **os.environ,
        "TAWASUL_KAFKA": kafka_bootstrap,
        "TAWASUL_DATABASE_URL": f"sqlite:///{tmp_path / 'n.db'}",
        "TAWASUL_LOG_LEVEL": "warning",
    }
    replay = subprocess.Popen(
        [sys.executable, "-m", "tawasul", "replay", str(recorded), "--no-progress", "--timeout", "240"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    seen: dict[int, tuple[int, str]] = {}
    try:
        while replay.poll() is None:
            for pid in _descendants(replay.pid):
                observed = _niceness(pid)
                if observed is not None and observed[1]:  # no command line: exiting, or not yet running
                    seen[pid] = (max(observed[0], seen.get(pid, observed)[0]), observed[1])
            time.sleep(0.02)
    finally:
        if replay.poll() is None:
            replay.kill()
        _, errors = replay.communicate(timeout=60)
    assert replay.returncode == 0, errors.decode()[-3000:]
    engines = [nice for pid, (nice, command) in seen.items() if pid != replay.pid and "spawn_main" in command]
    assert engines, f"the engine process was never seen among {sorted(command for _, command in seen.values())}"
    assert engines == [base] * len(engines)
    assert seen[replay.pid][0] == min(base + YIELD_NICENESS, 19)

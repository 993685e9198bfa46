"""Fault 2: the live worker (`tawasul worker`) SIGKILLed at random moments while live events
flow, restarted each time (same state directory), with `tawasul sink` storing the outcomes.

Afterwards the database's `sla_outcomes` equals the oracle exactly (the pure domain
computation, `tawasul.domain.sla`, from the same events): no outcome lost, none extra (a
false breach would be one). Raw duplicates on the outcome topic (re-sent after a kill, which
consumers drop by id) are counted and printed.

The events leave no race to chance: half the tickets were opened long ago (their warning and
breach are due the moment the worker reads them), the others are acknowledged half a second
after opening, a minute before their deadline. CI: 3 kills, ~5,000 events;
`TAWASUL_FAULTS_FULL=1`: 20 kills, ~100,000 events.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from schemas import Event, new_event
from tawasul.domain.calendars import to_us
from tawasul.domain.policies import load_policies
from tawasul.domain.sla import apply, due_us
from tawasul.infra.topics import partition_end_offsets
from tests.faults.conftest import FULL, REPO, _child_env
from tests.integration.test_sla_restart import WorkerProcess
from tests.integration.test_sla_stream import prefixed_settings, publish, read_outcomes
from tests.support.kafka import committed_offsets

pytestmark = pytest.mark.kafka
KILLS, EVENTS = (20, 100_000) if FULL else (3, 5_000)
KILLS = int(os.environ.get("TAWASUL_FAULTS_WORKER_KILLS", KILLS))  # 0: the same run without a kill
CHUNK = 250
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


def _chunk(run: str, n: int, now: datetime) -> list[Event]:
    """About CHUNK events: tickets opened 2 minutes ago (warning and breach due at once), and
    tickets opened now and acknowledged 0.5 s later (met)."""
    data = {"channel": "crm", "kind": "request", "category": "licensing.renewal", "priority": "normal"}
    source = "/channels/test/worker-kill"
    events: list[Event] = []
    for k in range(CHUNK // 3):
        late = f"K-{run}-{n}-{k}-late"
        events.append(new_event("ticket.opened", late, now - timedelta(minutes=2), data, source, id=f"{late}-open"))
        met = f"K-{run}-{n}-{k}-met"
        events.append(new_event("ticket.opened", met, now - timedelta(seconds=1), data, source, id=f"{met}-open"))
        events.append(new_event("ticket.acknowledged", met, now - timedelta(seconds=0.5), {}, source, id=f"{met}-ack"))
    return events


def _oracle(events: list[Event], policies: Path, now: datetime) -> dict[str, str]:
    """Outcome id -> type, as the domain computes them from the events, due as of `now`."""
    book = load_policies(policies)
    states: dict[str, object] = {}
    found: dict[str, str] = {}
    for event in events:
        state, outcomes = apply(states.get(event.subject), event, book)  # type: ignore[arg-type]
        states[event.subject] = state
        found.update({o.id: o.type for o in outcomes})
    for state in states.values():
        _, outcomes = due_us(state, to_us(now), book)  # type: ignore[arg-type]
        found.update({o.id: o.type for o in outcomes})
    return found


def _stored(db: str) -> dict[str, str]:
    engine = create_engine(db)
    try:
        with engine.connect() as connection:
            return {row[0]: row[1] for row in connection.execute(text("select id, type from sla_outcomes"))}
    except Exception:  # noqa: BLE001 - the schema may not exist yet
        return {}
    finally:
        engine.dispose()


@pytest.mark.timeout(1800)
def test_a_worker_killed_at_random_moments_gives_every_outcome_once(kafka_bootstrap: str, tmp_path: Path) -> None:
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    settings = prefixed_settings(kafka_bootstrap, policies, "worker-kill")
    app_id = f"{settings.topic_prefix}worker"
    events_topic = settings.topic("tawasul.events")
    state_dir = tmp_path / "state"
    db = f"sqlite:///{tmp_path / 'outcomes.db'}"
    env = {
        "TAWASUL_KAFKA": kafka_bootstrap,
        "TAWASUL_TOPIC_PREFIX": settings.topic_prefix,
        "TAWASUL_DATABASE_URL": db,
        "TAWASUL_POLICIES": str(policies),
    }
    log = tmp_path / "sink.log"
    with log.open("ab") as out:
        sink = subprocess.Popen(
            [sys.executable, "-m", "tawasul", "sink", "--metrics-port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_child_env(env),
            cwd=REPO,
        )
    run = uuid.uuid4().hex[:6]
    chunks = -(-EVENTS // CHUNK)
    chance = random.Random(2)
    kill_after = sorted(chance.sample(range(1, chunks), KILLS))  # before these chunks
    worker = WorkerProcess(settings, app_id, state_dir)
    sent: list[Event] = []
    restarts: list[float] = []
    logs: list[dict[str, object]] = []
    try:
        worker.wait_ready(120)
        for n in range(chunks):
            if n in kill_after:
                time.sleep(chance.uniform(0.0, 0.5))  # mid-way through the previous chunk's processing
                before = committed_offsets(kafka_bootstrap, app_id, events_topic)
                worker.kill()
                logs.extend(worker.logs)
                worker = WorkerProcess(settings, app_id, state_dir)
                restarts.append(worker.wait_ready(120))
                ends = {p: end for (_, p), end in partition_end_offsets(kafka_bootstrap, [events_topic]).items()}
                after = committed_offsets(kafka_bootstrap, app_id, events_topic)
                print(f"kill before chunk {n}: committed {before} -> {after} after the restart; ends {ends}")
            events = _chunk(run, n, datetime.now(UTC))
            publish(kafka_bootstrap, events_topic, events)
            sent.extend(events)
        expected = _oracle(sent, policies, datetime.now(UTC))
        deadline = time.monotonic() + (300 if FULL else 90)  # healthy: seconds; a loss never comes
        stored = _stored(db)
        while not expected.keys() <= stored.keys() and time.monotonic() < deadline:
            assert sink.poll() is None, log.read_text(errors="replace")[-3000:]
            time.sleep(1.0)
            stored = _stored(db)
        time.sleep(2.0)  # anything extra still on its way
        stored = _stored(db)
        raw = Counter(event.id for event, _ in read_outcomes(settings))
        assert worker.terminate() == 0
    finally:
        if worker.proc.poll() is None:
            worker.kill()
        logs.extend(worker.logs)
        (tmp_path / "worker.log").write_text("\n".join(map(str, logs)), encoding="utf-8")
        if sink.poll() is None:
            sink.terminate()
            sink.wait(timeout=60)
    duplicates = sum(count - 1 for count in raw.values())
    print(
        f"\nworker kill x{KILLS}: {len(sent)} events, {len(expected)} outcomes expected, {len(stored)} stored, "
        f"{sum(raw.values())} records on the outcome topic ({duplicates} raw duplicates), "
        f"restarts to ready: {[round(s, 1) for s in restarts]} s"
    )
    missing = expected.keys() - stored.keys()
    extra = {i: t for i, t in stored.items() if i not in expected}
    print(
        f"kills before chunks {kill_after}; missing by chunk "
        f"{sorted(Counter(int(i.split('-')[2]) for i in missing).items())}; logs in {tmp_path}"
    )
    assert not missing and not extra, (
        f"missing {len(missing)} e.g. {sorted(missing)[:5]}; extra {list(extra.items())[:5]}"
    )
    assert stored == expected
    assert raw.keys() == expected.keys()

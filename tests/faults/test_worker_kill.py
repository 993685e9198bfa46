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
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas import Event
from tawasul.infra.topics import partition_end_offsets
from tests.faults.conftest import FULL
from tests.faults.live import chunk, live_setup, oracle, sink, wait_stored
from tests.integration.test_sla_restart import WorkerProcess
from tests.integration.test_sla_stream import publish, read_outcomes
from tests.support.kafka import committed_offsets

pytestmark = pytest.mark.kafka
KILLS, EVENTS = (20, 100_000) if FULL else (3, 5_000)
KILLS = int(os.environ.get("TAWASUL_FAULTS_WORKER_KILLS", KILLS))  # 0: the same run without a kill
CHUNK = 250


@pytest.mark.timeout(1800)
def test_a_worker_killed_at_random_moments_gives_every_outcome_once(kafka_bootstrap: str, tmp_path: Path) -> None:
    setup = live_setup(kafka_bootstrap, tmp_path, "worker-kill")
    settings, app_id = setup.settings, setup.app_id
    events_topic = settings.topic("tawasul.events")
    log = tmp_path / "sink.log"
    run = uuid.uuid4().hex[:6]
    chunks = -(-EVENTS // CHUNK)
    chance = random.Random(2)
    kill_after = sorted(chance.sample(range(1, chunks), KILLS))  # before these chunks
    sent: list[Event] = []
    restarts: list[float] = []
    logs: list[dict[str, object]] = []
    with sink(setup.env, log) as sink_process:
        worker = WorkerProcess(settings, app_id, tmp_path / "state")
        try:
            worker.wait_ready(120)
            for n in range(chunks):
                if n in kill_after:
                    time.sleep(chance.uniform(0.0, 0.5))  # mid-way through the previous chunk's processing
                    before = committed_offsets(kafka_bootstrap, app_id, events_topic)
                    worker.kill()
                    logs.extend(worker.logs)
                    worker = WorkerProcess(settings, app_id, tmp_path / "state")
                    restarts.append(worker.wait_ready(120))
                    ends = {p: end for (_, p), end in partition_end_offsets(kafka_bootstrap, [events_topic]).items()}
                    after = committed_offsets(kafka_bootstrap, app_id, events_topic)
                    print(f"kill before chunk {n}: committed {before} -> {after} after the restart; ends {ends}")
                events = chunk(run, n, datetime.now(UTC), CHUNK)
                publish(kafka_bootstrap, events_topic, events)
                sent.extend(events)
            expected = oracle(sent, setup.policies, datetime.now(UTC))
            # healthy: seconds; a loss never comes
            stored = wait_stored(setup.db, expected, sink_process, log, 300 if FULL else 90)
            raw = Counter(event.id for event, _ in read_outcomes(settings))
            assert worker.terminate() == 0
        finally:
            if worker.proc.poll() is None:
                worker.kill()
            logs.extend(worker.logs)
            (tmp_path / "worker.log").write_text("\n".join(map(str, logs)), encoding="utf-8")
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

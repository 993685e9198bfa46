"""Fault 3: `tawasul sink` SIGKILLed at random moments while events flow into the 3-node cluster,
restarted each time. Afterwards the database holds every published event exactly once (the
set of ids equals the input's) and the sink group's lag on the events topic is 0.

CI: 5 kills, one simulated day at scale 1 in 5 publications; `TAWASUL_FAULTS_FULL=1`: 20 kills,
scale 8 in 10 publications.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.faults.conftest import FULL, REPO, LocalCluster, _child_env, run_tawasul, simulated

pytestmark = pytest.mark.kafka
KILLS = 20 if FULL else 5


def _sink(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tawasul", "sink", "--metrics-port", "0", "--batch-max", "300"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_child_env(env),
            cwd=REPO,
        )


def _stored_ids(db: str) -> list[str]:
    engine = create_engine(db)
    try:
        with engine.connect() as connection:
            return [row[0] for row in connection.execute(text("select id from events"))]
    except Exception:  # noqa: BLE001 - the schema may not exist yet
        return []
    finally:
        engine.dispose()


@pytest.mark.timeout(900)
def test_a_sink_killed_at_random_moments_stores_every_event_once(
    three_brokers: LocalCluster, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    import json

    days = simulated(tmp_path_factory, "sink-kill", scale="8" if FULL else "1", days=("2025-03-03", "2025-03-04"))
    lines = [line for line in days.read_text(encoding="utf-8").splitlines() if line]
    expected = {json.loads(line)["id"] for line in lines}
    prefix = f"sinkkill-{uuid.uuid4().hex[:8]}."
    db = f"sqlite:///{tmp_path / 'sink.db'}"
    env = {**three_brokers.env, "TAWASUL_TOPIC_PREFIX": prefix, "TAWASUL_DATABASE_URL": db}
    assert run_tawasul("topics", "create", env=env).returncode == 0
    batches = 10 if FULL else 5
    chunks = [lines[i::batches] for i in range(batches)]
    published: list[int] = []

    def publish() -> None:
        for n, chunk in enumerate(chunks):
            file = tmp_path / f"chunk-{n}.jsonl"
            file.write_text("\n".join(chunk) + "\n", encoding="utf-8")
            result = run_tawasul("publish", str(file), env=env)
            published.append(result.returncode)

    log = tmp_path / "sink.log"
    sink = _sink(env, log)
    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    chance = random.Random(14)
    kills = 0
    try:
        while kills < KILLS:
            time.sleep(chance.uniform(1.0, 4.0))
            sink.send_signal(signal.SIGKILL)
            sink.wait(timeout=30)
            kills += 1
            sink = _sink(env, log)
        publisher.join(timeout=300)
        assert published == [0] * len(chunks)
        deadline = time.monotonic() + 180
        stored = _stored_ids(db)
        while set(stored) != expected and time.monotonic() < deadline:
            assert sink.poll() is None, log.read_text(errors="replace")[-3000:]
            time.sleep(1.0)
            stored = _stored_ids(db)
    finally:
        if sink.poll() is None:
            sink.send_signal(signal.SIGTERM)
            sink.wait(timeout=60)
    assert set(stored) == expected, f"missing {len(expected - set(stored))}, extra {len(set(stored) - expected)}"
    assert len(stored) == len(expected)
    from tawasul.infra.topics import partition_end_offsets
    from tests.support.kafka import committed_offsets

    events = f"{prefix}tawasul.events"
    ends = {p: end for (_, p), end in partition_end_offsets(three_brokers.bootstrap, [events]).items()}
    assert committed_offsets(three_brokers.bootstrap, f"{prefix}tawasul-sink", events) == ends

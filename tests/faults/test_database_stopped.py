"""Fault 5 (stopped): the PostgreSQL server under `tawasul sink` stopped for a while, then
started again. The test runs its own throw-away server (initdb into a temporary folder, on a
free port from 19590 to 19599, as the `postgres` user when run as root), so stopping it
disturbs no one; it is skipped with the reason when the server binaries are absent.

The sink must wait (alive, committing no offset it has not stored), then store every
published event exactly once (the oracle: the ids of the input) and bring its lag to 0.

CI: stopped 30 s, one simulated day at scale 1; `TAWASUL_FAULTS_FULL=1`: 5 minutes, scale 4.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tawasul.infra.kafka_local.broker import bind_error
from tawasul.infra.topics import partition_end_offsets
from tests.faults.conftest import FULL, REPO, _child_env, run_tawasul, simulated
from tests.faults.live import split_in_halves, stored_events
from tests.support.kafka import committed_offsets
from tests.support.postgres import PostgresUnavailable, TempPostgres

pytestmark = pytest.mark.kafka
STOPPED_S = 300.0 if FULL else 30.0
PORTS = range(19590, 19600)


@pytest.fixture()
def own_postgres() -> Iterator[TempPostgres]:
    """A throw-away PostgreSQL server of this test only (stopped and removed at the end)."""
    port = next((p for p in PORTS if bind_error("127.0.0.1", p) is None), None)
    if port is None:
        pytest.skip(f"no free port in {PORTS.start}-{PORTS.stop - 1} for a throw-away PostgreSQL")
    base = Path(tempfile.mkdtemp(prefix="faults-pg-"))
    try:
        server = TempPostgres(base, port)
    except PostgresUnavailable as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(str(exc))
    try:
        server.init()
        server.start()
        server.create_database()
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.timeout(1200)
def test_the_sink_waits_for_a_stopped_database_and_loses_nothing(
    kafka_bootstrap: str, own_postgres: TempPostgres, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    url = own_postgres.url
    days = simulated(tmp_path_factory, "db-stopped", scale="4" if FULL else "1", days=("2025-03-03", "2025-03-04"))
    expected, halves, files = split_in_halves(days, tmp_path)
    prefix = f"dbstopped-{uuid.uuid4().hex[:8]}."
    env = {"TAWASUL_KAFKA": kafka_bootstrap, "TAWASUL_TOPIC_PREFIX": prefix, "TAWASUL_DATABASE_URL": url}
    assert run_tawasul("topics", "create", env=env).returncode == 0
    log = tmp_path / "sink.log"
    with log.open("ab") as out:
        sink = subprocess.Popen(
            [sys.executable, "-m", "tawasul", "sink", "--metrics-port", "0", "--batch-max", "300"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_child_env(env),
            cwd=REPO,
        )
    events = f"{prefix}tawasul.events"
    group = f"{prefix}tawasul-sink"
    try:
        assert run_tawasul("publish", str(files[0]), env=env).returncode == 0
        deadline = time.monotonic() + 120
        while stored_events(url)[0] < len(halves[0]) // 4:  # mid-way through the first half
            assert sink.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.05)
        own_postgres.stop("fast")  # connections closed, new ones refused
        stopped = time.monotonic()
        frozen_offsets = sum(committed_offsets(kafka_bootstrap, group, events).values())
        assert run_tawasul("publish", str(files[1]), env=env).returncode == 0
        time.sleep(max(0.0, STOPPED_S - (time.monotonic() - stopped)))
        assert sink.poll() is None, log.read_text(errors="replace")[-3000:]
        during_offsets = sum(committed_offsets(kafka_bootstrap, group, events).values())
        assert during_offsets <= frozen_offsets + 300  # at most the batch stored as the server stopped
        own_postgres.start()
        back = time.monotonic()
        deadline = back + 180
        rows, ids = stored_events(url)
        while ids != expected and time.monotonic() < deadline:
            assert sink.poll() is None, log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
            rows, ids = stored_events(url)
        drained_s = time.monotonic() - back
        ends = {p: end for (_, p), end in partition_end_offsets(kafka_bootstrap, [events]).items()}
        deadline = time.monotonic() + 60
        while committed_offsets(kafka_bootstrap, group, events) != ends and time.monotonic() < deadline:
            time.sleep(0.5)
        lag = {p: end - committed_offsets(kafka_bootstrap, group, events).get(p, 0) for p, end in ends.items()}
    finally:
        if sink.poll() is None:
            sink.terminate()
            sink.wait(timeout=60)
    print(
        f"\ndatabase stopped {STOPPED_S:.0f} s: {len(expected)} events, offsets {frozen_offsets} committed when it "
        f"stopped, {during_offsets} at its end; all stored {drained_s:.1f} s after it started again"
    )
    assert ids == expected, f"missing {len(expected - ids)}, extra {len(ids - expected)}"
    assert rows == len(expected)
    assert set(lag.values()) == {0}, lag
    sink_log = log.read_text(errors="replace")
    assert "sink_db_unavailable" in sink_log, sink_log[-3000:]

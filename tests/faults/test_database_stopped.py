"""Fault 5 (stopped): the PostgreSQL server under `tawasul sink` stopped for a while, then
started again. The test runs its own throw-away server (initdb into a temporary folder, on a
free port from 19590 to 19599, as the `postgres` user when run as root), so stopping it
disturbs no one; it is skipped with the reason when the server binaries are absent.

The sink must wait (alive, committing no offset it has not stored), then store every
published event exactly once (the oracle: the ids of the input) and bring its lag to 0.

CI: stopped 30 s, one simulated day at scale 1; `TAWASUL_FAULTS_FULL=1`: 5 minutes, scale 4.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tawasul.infra.kafka_local.broker import bind_error
from tests.faults.conftest import FULL
from tests.faults.sink_outage import BATCH, outage_run
from tests.support.postgres import PostgresUnavailable, TempPostgres

pytestmark = pytest.mark.kafka
STOPPED_S = 300.0 if FULL else 30.0
PORTS = range(19590, 19600)


@pytest.fixture()
def own_postgres() -> Iterator[TempPostgres]:
    """A throw-away PostgreSQL server of this test only (stopped and removed at the end)."""
    port = next((p for p in PORTS if bind_error("127.0.0.1", p) is None), None)
    if port is None:
        pytest.fail(f"no free port in {PORTS.start}-{PORTS.stop - 1} for a throw-away PostgreSQL")
    base = Path(tempfile.mkdtemp(prefix="faults-pg-"))
    try:
        server = TempPostgres(base, port)
    except PostgresUnavailable as exc:
        shutil.rmtree(base, ignore_errors=True)
        if os.environ.get(
            "TAWASUL_TEST_POSTGRES_URL"
        ):  # PostgreSQL is installed here (CI): a missing binary is a failure
            pytest.fail(str(exc))
        pytest.skip(str(exc))  # a machine without PostgreSQL, where every PostgreSQL test is skipped too
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
    kafka_bootstrap: str, own_postgres: TempPostgres, outage_day: Path, tmp_path: Path
) -> None:
    url = own_postgres.url
    with outage_run(kafka_bootstrap, url, url, "db-stopped", outage_day, tmp_path) as run:
        run.publish(0)
        run.wait_a_quarter_stored()
        own_postgres.stop("fast")  # connections closed, new ones refused
        stopped = time.monotonic()
        frozen_offsets = run.committed()
        run.publish(1)
        time.sleep(max(0.0, STOPPED_S - (time.monotonic() - stopped)))
        run.alive()
        during_offsets = run.committed()
        assert during_offsets <= frozen_offsets + BATCH  # at most the batch stored as the server stopped
        own_postgres.start()
        rows, ids, drained_s, lag = run.wait_all_stored()
        expected, log = run.expected, run.log
    print(
        f"\ndatabase stopped {STOPPED_S:.0f} s: {len(expected)} events, offsets {frozen_offsets} committed when it "
        f"stopped, {during_offsets} at its end; all stored {drained_s:.1f} s after it started again"
    )
    assert ids == expected, f"missing {len(expected - ids)}, extra {len(ids - expected)}"
    assert rows == len(expected)
    assert set(lag.values()) == {0}, lag
    sink_log = log.read_text(errors="replace")
    assert "sink_db_unavailable" in sink_log, sink_log[-3000:]

"""The frame of the fault tests where `tawasul sink`'s database goes away (scenario 5): one
simulated day published in two halves to fresh topics, the sink (batches of 300) storing it,
and what the tests check afterwards (every id stored once, the sink group's lag 0).
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tawasul.infra.topics import partition_end_offsets
from tests.faults.conftest import REPO, _child_env, run_tawasul
from tests.faults.live import split_in_halves, stored_events
from tests.support.kafka import committed_offsets

BATCH = 300


@dataclass
class OutageRun:
    """One run: the sink process and what was published (or is to be)."""

    bootstrap: str
    env: dict[str, str]
    db: str
    """The URL the test reads the database with (not the sink's when a proxy sits between)."""
    expected: set[str]
    halves: list[list[str]]
    files: list[Path]
    log: Path
    sink: subprocess.Popen[bytes]

    @property
    def events_topic(self) -> str:
        return f"{self.env['TAWASUL_TOPIC_PREFIX']}tawasul.events"

    @property
    def group(self) -> str:
        return f"{self.env['TAWASUL_TOPIC_PREFIX']}tawasul-sink"

    def publish(self, half: int) -> None:
        assert run_tawasul("publish", str(self.files[half]), env=self.env).returncode == 0

    def alive(self) -> None:
        assert self.sink.poll() is None, self.log.read_text(errors="replace")[-3000:]

    def committed(self) -> int:
        """The sink group's committed offsets of the events topic, summed."""
        return sum(committed_offsets(self.bootstrap, self.group, self.events_topic).values())

    def wait_a_quarter_stored(self) -> None:
        """Until the sink stored a quarter of the first half (it is mid-way through it)."""
        deadline = time.monotonic() + 120
        while stored_events(self.db)[0] < len(self.halves[0]) // 4:
            self.alive()
            assert time.monotonic() < deadline, "the sink stored too little in 120 s"
            time.sleep(0.05)

    def wait_all_stored(self) -> tuple[int, set[str], float, dict[int, int]]:
        """(rows, ids, seconds until every id was stored, lag per partition once it is 0 or after 60 s)."""
        back = time.monotonic()
        deadline = back + 180
        rows, ids = stored_events(self.db)
        while ids != self.expected and time.monotonic() < deadline:
            self.alive()
            time.sleep(0.5)
            rows, ids = stored_events(self.db)
        drained_s = time.monotonic() - back
        ends = {p: end for (_, p), end in partition_end_offsets(self.bootstrap, [self.events_topic]).items()}
        deadline = time.monotonic() + 60
        while committed_offsets(self.bootstrap, self.group, self.events_topic) != ends and time.monotonic() < deadline:
            time.sleep(0.5)
        committed = committed_offsets(self.bootstrap, self.group, self.events_topic)
        return rows, ids, drained_s, {p: end - committed.get(p, 0) for p, end in ends.items()}


@contextmanager
def outage_run(bootstrap: str, sink_url: str, db: str, name: str, days: Path, folder: Path) -> Iterator[OutageRun]:
    """Fresh topics, the events of `days` (the `outage_day` fixture) in two halves, and `tawasul
    sink` writing to `sink_url`; the sink is stopped at the end."""
    expected, halves, files = split_in_halves(days, folder)
    prefix = f"{name}-{uuid.uuid4().hex[:8]}."
    env = {"TAWASUL_KAFKA": bootstrap, "TAWASUL_TOPIC_PREFIX": prefix, "TAWASUL_DATABASE_URL": sink_url}
    assert run_tawasul("topics", "create", env=env).returncode == 0
    log = folder / "sink.log"
    with log.open("ab") as out:
        sink = subprocess.Popen(
            [sys.executable, "-m", "tawasul", "sink", "--metrics-port", "0", "--batch-max", str(BATCH)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_child_env(env),
            cwd=REPO,
        )
    try:
        yield OutageRun(bootstrap, env, db, expected, halves, files, log, sink)
    finally:
        if sink.poll() is None:
            sink.terminate()
            sink.wait(timeout=60)

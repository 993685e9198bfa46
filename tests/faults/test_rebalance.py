"""Fault 4: two live workers, then one, then two again, while events flow (the session broker).

Worker A owns the six partitions; worker B joins (the group splits them), leaves with SIGTERM
(static membership sends no leave request: the group gives its partitions back to A after the
session timeout, 8 s here), and joins again with the same instance id and state directory.
Events are published every 0.4 s throughout. Afterwards the database's `sla_outcomes` equals
the oracle exactly (every deadline fired once, none falsely: the domain computation from the
accepted events), the outcome topic holds exactly those ids (raw duplicates are counted and
printed), and the group's lag is 0 on every partition of the workers' input topics.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas import Event
from stream_processors.sla_agent import READY_MESSAGE
from tawasul.infra.topics import EVENTS, KPI_INPUT, SLA_TICKS, TICKET_STATE
from tests.faults.conftest import FULL
from tests.faults.live import chunk, group_lag, live_setup, oracle, sink, wait_stored
from tests.integration.test_sla_restart import WorkerProcess
from tests.integration.test_sla_stream import publish, read_outcomes

pytestmark = pytest.mark.kafka
SESSION_TIMEOUT_S = 8
CHUNK = 60 if FULL else 30
EVERY_S = 0.4
ALL = set(range(EVENTS.partitions))


class Publisher(threading.Thread):
    """Publishes a chunk of live events every EVERY_S seconds until stopped."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.run_id = uuid.uuid4().hex[:6]
        self.sent: list[Event] = []
        self.stopped = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        n = 0
        try:
            while not self.stopped.is_set():
                events = chunk(self.run_id, n, datetime.now(UTC), CHUNK)
                publish(self.bootstrap, self.topic, events)
                self.sent.extend(events)
                n += 1
                self.stopped.wait(EVERY_S)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test
            self.error = exc

    def stop(self) -> list[Event]:
        self.stopped.set()
        self.join(60)
        if self.error is not None:
            raise self.error
        return self.sent


def owned_since(worker: WorkerProcess, mark: int) -> set[int] | None:
    """The partitions the worker last reported running its timers on, after log line `mark`."""
    ready = [e for e in worker.logs[mark:] if e.get("message") == READY_MESSAGE]
    return set(ready[-1]["partitions"]) if ready else None  # type: ignore[call-overload]


def wait_owned(layout: dict[str, tuple[WorkerProcess, int]], split: bool, timeout_s: float) -> dict[str, set[int]]:
    """Wait until the workers (name -> (process, log mark)) own disjoint, non-empty sets of
    partitions covering all of them (one worker: all six); returns them."""
    deadline = time.monotonic() + timeout_s
    while True:
        owned = {name: owned_since(worker, mark) for name, (worker, mark) in layout.items()}
        sets = [s for s in owned.values() if s]
        if len(sets) == len(layout) and set().union(*sets) == ALL and sum(map(len, sets)) == len(ALL):
            return owned  # type: ignore[return-value]
        for worker, _ in layout.values():
            assert worker.proc.poll() is None, f"a worker exited: {worker.logs[-20:]}"
        assert time.monotonic() < deadline, f"partitions not {'split' if split else 'taken'} in {timeout_s} s: {owned}"
        time.sleep(0.2)


@pytest.mark.timeout(600)
def test_two_workers_then_one_then_two_again_fire_every_deadline_once(kafka_bootstrap: str, tmp_path: Path) -> None:
    setup = live_setup(kafka_bootstrap, tmp_path, "rebalance")
    settings, app_id = setup.settings, setup.app_id

    def worker(name: str) -> WorkerProcess:
        args = ("--instance-id", f"{app_id}@{name}", "--session-timeout", str(SESSION_TIMEOUT_S))
        return WorkerProcess(settings, app_id, tmp_path / f"state-{name}", extra_args=args)

    log = tmp_path / "sink.log"
    publisher = Publisher(kafka_bootstrap, settings.topic(EVENTS.name))
    workers: list[WorkerProcess] = []
    phases: list[tuple[str, dict[str, set[int]], float]] = []
    started = time.monotonic()
    with sink(setup.env, log) as sink_process:
        try:
            a = worker("a")
            workers.append(a)
            a.wait_ready(120)
            publisher.start()
            b = worker("b")
            workers.append(b)
            phases.append(("two", wait_owned({"a": (a, len(a.logs)), "b": (b, 0)}, True, 120), time.monotonic()))
            mark = len(a.logs)
            assert b.terminate() == 0
            phases.append(("one", wait_owned({"a": (a, mark)}, False, 120), time.monotonic()))
            b = worker("b")
            workers.append(b)
            phases.append(("two", wait_owned({"a": (a, len(a.logs)), "b": (b, 0)}, True, 120), time.monotonic()))
            time.sleep(2.0)  # events flow to the new split
            sent = publisher.stop()
            expected = oracle(sent, setup.policies, datetime.now(UTC))
            stored = wait_stored(setup.db, expected, sink_process, log, 300 if FULL else 90)
            topics = [settings.topic(t.name) for t in (EVENTS, SLA_TICKS, TICKET_STATE, KPI_INPUT)]
            deadline = time.monotonic() + 60
            while any(group_lag(kafka_bootstrap, app_id, topics).values()) and time.monotonic() < deadline:
                time.sleep(1.0)
            lag = group_lag(kafka_bootstrap, app_id, topics)
            raw = Counter(event.id for event, _ in read_outcomes(settings))
            assert a.terminate() == 0
            assert b.terminate() == 0
        finally:
            publisher.stopped.set()
            for process in workers:
                if process.proc.poll() is None:
                    process.kill()
            (tmp_path / "worker.log").write_text(
                "\n".join(str(line) for process in workers for line in process.logs), encoding="utf-8"
            )
    duplicates = sum(count - 1 for count in raw.values())
    print(
        f"\nrebalance: {len(sent)} events, {len(expected)} outcomes expected, {len(stored)} stored, "
        f"{sum(raw.values())} on the outcome topic ({duplicates} raw duplicates); phases "
        f"{[(name, {k: sorted(v) for k, v in owned.items()}, round(at - started, 1)) for name, owned, at in phases]}; "
        f"logs in {tmp_path}"
    )
    missing = expected.keys() - stored.keys()
    extra = {i: t for i, t in stored.items() if i not in expected}
    assert not missing and not extra, (
        f"missing {len(missing)} e.g. {sorted(missing)[:5]}; extra {list(extra.items())[:5]}"
    )
    assert stored == expected
    assert raw.keys() == expected.keys()
    assert not any(lag.values()), f"lag left: { {k: v for k, v in lag.items() if v} }"

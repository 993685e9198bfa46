"""Benchmark of the KPI processor: throughput of call and survey events, and snapshot delay under load.

Three measurements, each printed on its own lines:

1. domain: `kpi_state.apply` + `KpiBook.update` in this process, without Kafka (events/s);
2. pipeline throughput: a burst of call events, then surveys about those calls, is published
   first; then a live worker (subprocess: `build_app(mode="live")` + `register_kpis`, the SLA
   engine included) works through it; the times between the snapshots that show the first
   event, every call and every survey give the events processed per second;
3. delay at a steady load: background call and survey events at `--rate` events/s (wall-clock
   times) plus probes: a `call.offered` into one of several probe queues, each probe queue
   touched at most every 1.2 s (so the one-per-second coalescing never holds a probe back).
   The delay of a probe is from just before it is sent to the moment its
   `calls.offered|15m|queue=probe-N` snapshot with the new count is read back by a separate
   consumer process. Busy keys (e.g. all calls) are published at most once a second by design.
   Probes start after `--warmup` seconds (default 3) of the same load, so that they measure
   the worker's steady state rather than its first second under load.

Run: `python bench/bench_kpis.py --kafka localhost:9092 [--rate 1000 --seconds 30 --burst 6000]`.
Needs a running broker; every run uses its own topic prefix and consumer group.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import queue
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kafka import KafkaConsumer, KafkaProducer  # noqa: E402  # after the sys.path set-up above

from schemas import parse_event  # noqa: E402  # after the sys.path set-up above
from tawasul.domain.kpi_state import KpiBook, KpiConfig, SubjectRecord, apply  # noqa: E402  # after the sys.path set-up above
from tawasul.domain.windows import DUBAI, to_us  # noqa: E402  # after the sys.path set-up above
from tawasul.infra.settings import Settings  # noqa: E402  # after the sys.path set-up above
from tawasul.infra.topics import EVENTS, KPIS, ensure_topics  # noqa: E402  # after the sys.path set-up above

WORKER = """
import sys
from tawasul.infra.logs import configure_logging
from tawasul.infra.settings import Settings
from stream_processors.app import build_app
from stream_processors.kpi_agent import register_kpis
from stream_processors.runner import run_until
configure_logging("warning")
settings = Settings(kafka=sys.argv[1], topic_prefix=sys.argv[2])
role = sys.argv[4] if len(sys.argv) > 4 else "all"
app = build_app(settings, mode="live", app_id=sys.argv[3], with_sla=role != "kpis",
                extra_registrars=() if role == "sla" else (register_kpis,))
run_until(app, lambda: False)
"""
PROBE_QUEUES = 6
PROBE_GAP_S = 1.2


def stamp(at: datetime) -> str:
    return at.astimezone(DUBAI).isoformat(timespec="milliseconds")


def _event(kind: str, subject: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """A contract event as a dict, built without validation (cheap at 1,000 a second; the shapes
    are checked once by `check_shapes`)."""
    return {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "/bench",
        "type": kind,
        "time": stamp(at),
        "subject": subject,
        "data": data,
    }


def call_events(number: int, at: datetime, tag: str) -> list[dict[str, Any]]:
    """offered, answered 8 s later, ended 3 min later (times may lie in the future: the live clock)."""
    subject = f"C-{tag}-{number:07d}"
    queue = ("general", "zakat", "mosques", "quran_centres")[number % 4]
    agent = f"agent-{number % 40:03d}"
    return [
        _event("call.offered", subject, at, {"queue": queue}),
        _event("call.answered", subject, at + timedelta(seconds=8), {"queue": queue, "agent": agent}),
        _event("call.ended", subject, at + timedelta(seconds=188), {"wrap_up_seconds": 20}),
    ]


def survey_event(number: int, at: datetime, tag: str) -> dict[str, Any]:
    subject = f"C-{tag}-{number:07d}"
    return _event("survey.submitted", subject, at, {"channel": "call", "score": 1 + number % 5})


def check_shapes() -> None:
    """Every kind of event the benchmark sends is valid (raises InvalidEvent otherwise)."""
    now = datetime.now(UTC)
    for raw in [*call_events(1, now, "c"), survey_event(1, now, "c")]:
        parse_event(raw)


# -- 1. the pure domain ----------------------------------------------------------------------


def domain_rate(calls: int) -> tuple[float, float]:
    start = datetime(2025, 3, 4, 8, tzinfo=DUBAI)
    call_evs = [parse_event(e) for n in range(calls) for e in call_events(n, start + timedelta(seconds=n), "d")]
    survey_evs = [parse_event(survey_event(n, start + timedelta(seconds=n + 300), "d")) for n in range(calls)]
    book = KpiBook(KpiConfig())
    records: dict[str, SubjectRecord] = {}
    rates = []
    for batch in (sorted(call_evs, key=lambda e: e.time), survey_evs):
        began = time.perf_counter()
        for event in batch:
            book.advance(to_us(event.time), records.get)
            record = apply(records.get(event.subject), event)
            assert record is not None
            records[event.subject] = record
            book.update(event.subject, record)
        rates.append(len(batch) / (time.perf_counter() - began))
    return rates[0], rates[1]


# -- the worker and the snapshot reader ------------------------------------------------------


def start_worker(settings: Settings, app_id: str, log: Path, role: str = "all") -> subprocess.Popen[bytes]:
    """A worker running both processors (`all`), the SLA engine only, or the KPI processor only."""
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, settings.kafka, settings.topic_prefix, app_id, role],
        cwd=REPO,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(10)


def read_snapshots(kafka: str, topic: str, watched: tuple[str, ...], out: Any, stop: Any) -> None:
    """Child process: the snapshots of keys starting with one of `watched`, as (receive time, key,
    value, count) on the queue `out` (only those: thousands of snapshots a second would clog it)."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        group_id=None,
    )
    try:
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=50).values():
                received = time.time()
                for record in records:
                    key = record.key.decode()
                    if key.startswith(watched):
                        data = json.loads(record.value)["data"]
                        out.put((received, key, data["value"], data["count"]))
    finally:
        consumer.close()


class Snapshots:
    """The reader process and what it has seen so far."""

    def __init__(self, kafka: str, topic: str, watched: tuple[str, ...]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.queue = ctx.Queue()
        self.stop = ctx.Event()
        self.process = ctx.Process(
            target=read_snapshots, args=(kafka, topic, watched, self.queue, self.stop), daemon=True
        )
        self.process.start()
        self.seen: list[tuple[float, str, Any, Any]] = []

    def drain(self, quiet_s: float = 0.0) -> list[tuple[float, str, Any, Any]]:
        """Take what the reader sent; with `quiet_s`, until nothing came for that long."""
        while True:
            try:
                self.seen.append(self.queue.get(timeout=quiet_s) if quiet_s else self.queue.get_nowait())
            except queue.Empty:
                return self.seen

    def wait_value(self, key: str, wanted: float, field: int = 2, timeout_s: float = 300.0) -> float:
        give_up = time.monotonic() + timeout_s
        while time.monotonic() < give_up:
            for row in self.drain():
                if row[1] == key and row[field] == wanted:
                    return row[0]
            time.sleep(0.05)
        raise TimeoutError(f"{key} never reached {wanted}")

    def close(self) -> None:
        self.stop.set()
        self.process.join(10)


def fresh_run(kafka: str) -> tuple[Settings, str]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka, prefix)
    return Settings(kafka=kafka, topic_prefix=prefix), prefix + "app"


def wait_worker_ready(snapshots: Snapshots, producer: KafkaProducer, topic: str, tag: str) -> None:
    """Send one warm-up call until its snapshot comes back (the worker has its partitions)."""
    for event in call_events(0, datetime.now(UTC), f"{tag}w"):
        if event["type"] == "call.offered":
            event["data"]["queue"] = "warmup"
            producer.send(topic, key=event["subject"].encode(), value=json.dumps(event).encode())
    producer.flush()
    snapshots.wait_value("calls.offered|15m|queue=warmup", 1.0, timeout_s=180)


# -- 2. pipeline throughput -------------------------------------------------------------------


def throughput(kafka: str, calls: int, workdir: Path) -> tuple[float, float, float | None]:
    """Publish the burst first, then start the worker: it works through a backlog at full speed.

    Calls are timed from the first snapshot to the one showing every call ended; surveys
    (published after all calls, so behind them on every partition) from there to the one
    showing every survey. The one-per-second coalescing adds up to a second to each end.
    """
    settings, app_id = fresh_run(kafka)
    topic = settings.topic(EVENTS.name)
    now = datetime.now(UTC)
    producer = KafkaProducer(bootstrap_servers=kafka, linger_ms=5)
    try:
        for number in range(calls):
            for event in call_events(number, now, "t"):
                producer.send(topic, key=event["subject"].encode(), value=json.dumps(event).encode())
        for number in range(calls):
            event = survey_event(number, now, "t")
            producer.send(topic, key=event["subject"].encode(), value=json.dumps(event).encode())
        producer.flush()
    finally:
        producer.close()
    snapshots = Snapshots(
        kafka,
        settings.topic(KPIS.name),
        ("calls.average_handle_seconds|1h|", "surveys.responses|1h|", "calls.offered|15m|"),
    )
    worker = start_worker(settings, app_id, workdir / "throughput.log")
    try:
        started = cpu_seconds(worker.pid)
        calls_done = snapshots.wait_value("calls.average_handle_seconds|1h|", calls, field=3)
        first = min(row[0] for row in snapshots.seen)
        surveys_done = snapshots.wait_value("surveys.responses|1h|", float(calls))
        ended = cpu_seconds(worker.pid)
        per_event = None if started is None or ended is None else (ended - started) / (4 * calls)
        return 3 * calls / (calls_done - first), calls / max(surveys_done - calls_done, 1e-3), per_event
    finally:
        stop_worker(worker)
        snapshots.close()


# -- 3. delay at a steady rate ---------------------------------------------------------------


def background(rate: int, tag: str) -> Iterator[dict[str, Any]]:
    """An endless mix at wall-clock times: 3 call events, then a survey, per call."""
    number = 0
    while True:
        now = datetime.now(UTC)
        yield from call_events(number, now, tag)
        yield survey_event(number, now, tag)
        number += 1


def delays(
    kafka: str, rate: int, seconds: float, workdir: Path, split: bool = False, warmup_s: float = 0.0
) -> tuple[list[float], float | None, float]:
    """Probe delays (seconds, sorted), the (KPI) worker's CPU share and the event rate really sent.

    `split`: the SLA engine and the KPI processor in two workers (two consumer groups).
    `warmup_s`: the load runs that long before the first probe (and `seconds` more with probes)."""
    settings, app_id = fresh_run(kafka)
    topic = settings.topic(EVENTS.name)
    snapshots = Snapshots(kafka, settings.topic(KPIS.name), ("calls.offered|15m|queue=",))
    other = start_worker(settings, app_id + "-sla", workdir / "delay-sla.log", "sla") if split else None
    worker = start_worker(
        settings, app_id + ("-kpis" if split else ""), workdir / "delay.log", "kpis" if split else "all"
    )
    producer = KafkaProducer(bootstrap_servers=kafka, linger_ms=0)
    sent: dict[tuple[str, float], float] = {}
    try:
        wait_worker_ready(snapshots, producer, topic, "l")
        load = background(rate, "l")
        counts = [0] * PROBE_QUEUES
        last_probe = [0.0] * PROBE_QUEUES
        began = time.monotonic()
        cpu_began = cpu_seconds(worker.pid)
        ticks = sent_events = 0
        while time.monotonic() - began < warmup_s + seconds:
            ticks += 1
            for _ in range(rate // 100):  # 10 ms slices
                event = next(load)
                producer.send(topic, key=event["subject"].encode(), value=json.dumps(event).encode())
                sent_events += 1
            for queue in range(PROBE_QUEUES if time.monotonic() - began >= warmup_s else 0):
                now = time.monotonic()
                if now - last_probe[queue] >= PROBE_GAP_S and ticks % PROBE_QUEUES == queue:
                    last_probe[queue] = now
                    counts[queue] += 1
                    probe = _event(
                        "call.offered",
                        f"P-{uuid.uuid4().hex[:12]}",
                        datetime.now(UTC),
                        {"queue": f"probe-{queue}"},
                    )
                    key = f"calls.offered|15m|queue=probe-{queue}"
                    sent[(key, float(counts[queue]))] = time.time()
                    producer.send(topic, key=probe["subject"].encode(), value=json.dumps(probe).encode())
            producer.flush()
            pause = began + ticks * 0.01 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        elapsed = time.monotonic() - began
        cpu_ended = cpu_seconds(worker.pid)
        time.sleep(5)
        seen = snapshots.drain(quiet_s=2.0)
        measured = []
        for (key, count), at in sent.items():
            # coalescing may skip a count: the first snapshot showing at least this many probes
            arrivals = [when for when, k, value, _ in seen if k == key and value is not None and value >= count]
            if arrivals:
                measured.append(min(arrivals) - at)
        cpu_share = None if cpu_began is None or cpu_ended is None else (cpu_ended - cpu_began) / elapsed
        return sorted(measured), cpu_share, sent_events / elapsed
    finally:
        producer.close()
        stop_worker(worker)
        if other is not None:
            stop_worker(other)
        snapshots.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kafka", default=os.environ.get("TAWASUL_KAFKA", "localhost:9092"))
    parser.add_argument(
        "--rate", type=int, action="append", help="background events per second (repeat for several runs; default 1000)"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the delay measurement")
    parser.add_argument("--burst", type=int, default=6000, help="calls in the throughput burst (3 events each)")
    parser.add_argument(
        "--split-workers",
        action="store_true",
        help="delay runs with the SLA engine and the KPI processor in two workers "
        "(tawasul worker --processors sla / kpis)",
    )
    parser.add_argument("--skip-throughput", action="store_true", help="only the delay measurement")
    parser.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="seconds of load before the first probe (the worker reaches its steady state)",
    )
    args = parser.parse_args()
    check_shapes()
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f} / {os.getloadavg()[1]:.2f} (1 / 5 min)"
    )
    calls_rate, survey_rate = domain_rate(5000)
    print(f"domain (apply + KpiBook.update, no Kafka): {calls_rate:,.0f} call events/s, {survey_rate:,.0f} surveys/s")
    with tempfile.TemporaryDirectory(prefix="bench-kpis-") as tmp:
        workdir = Path(tmp)
        if not args.skip_throughput:
            call_rate, survey_rate, per_event = throughput(args.kafka, args.burst, workdir)
            cpu_note = "" if per_event is None else f"; worker CPU {per_event * 1e6:,.0f} us per event"
            print(
                f"pipeline backlog ({args.burst * 3:,} call events, then {args.burst:,} surveys, one worker "
                f"running the SLA engine and the KPI processor): {call_rate:,.0f} call events/s, "
                f"{survey_rate:,.0f} surveys/s processed{cpu_note}"
            )
        for rate in args.rate or [1000]:
            measured, cpu_share, achieved = delays(
                args.kafka, rate, args.seconds, workdir, args.split_workers, args.warmup
            )
            if args.split_workers:
                print("two workers: the SLA engine in one, the KPI processor in the other (CPU share below)")
            if not measured:
                print(f"delay at {rate:,} events/s: no probe came back")
                continue
            cpu_note = "" if cpu_share is None else f", worker CPU {cpu_share:.0%} of a core"
            print(
                f"delay at {achieved:,.0f} events/s for {args.seconds:.0f} s after {args.warmup:.0f} s of warm-up "
                f"({len(measured)} probes): "
                f"p50 {percentile(measured, 0.5) * 1000:.0f} ms, p99 {percentile(measured, 0.99) * 1000:.0f} ms, "
                f"max {max(measured) * 1000:.0f} ms (load average {os.getloadavg()[0]:.2f}{cpu_note})"
            )


if __name__ == "__main__":
    main()

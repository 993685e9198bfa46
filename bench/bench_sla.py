"""Benchmark of the live SLA worker: ingest rate, memory, breach delay, recovery after kill -9.

    python bench/bench_sla.py                      # 1,000,000 tickets, deadlines over an hour
    python bench/bench_sla.py --tickets 100000 --spread 600

The worker runs the SLA engine alone (`--processors sla`, as `tawasul worker --processors sla`)
unless `--processors all` adds the KPI processor to it. Opens `--tickets` tickets whose first-response
deadlines are spread evenly over `--spread`
seconds, starting `--margin` seconds after the ingest begins (the default leaves time to
ingest them all), on a running broker (`--kafka`, TAWASUL_KAFKA). The worker runs as
`tawasul worker` in a subprocess; half-way through the deadlines it is killed with SIGKILL and
restarted. Prints events/s processed, the worker's peak RSS, p50/p99/max delay from each
deadline to its `sla.breached` record (Kafka timestamp), and the restart-to-ready time.
Goals: p99 <= 1 s, RSS <= 1.5 GB, recovery <= 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402  # after the sys.path set-up above

from stream_processors.sla_agent import INDEX_MESSAGE, READY_MESSAGE  # noqa: E402  # after the sys.path set-up above
from tawasul.infra.settings import Settings  # noqa: E402  # after the sys.path set-up above
from tawasul.infra.topics import EVENTS, SLA_OUTCOMES, ensure_topics  # noqa: E402  # after the sys.path set-up above

TARGET = timedelta(hours=4)
POLICIES = """\
calendars:
  always: {timezone: Asia/Dubai, always_open: true}
policies:
  - name: bench
    match: {}
    calendar: always
    first_response: 4h
    warn_at: 0.99
"""


class Worker:
    """`tawasul worker` in a subprocess, with its JSON logs and RSS samples."""

    def __init__(self, settings: Settings, app_id: str, processors: str, state_dir: Path) -> None:
        env = {
            **os.environ,
            "TAWASUL_KAFKA": settings.kafka,
            "TAWASUL_POLICIES": str(settings.policies),
            "TAWASUL_TOPIC_PREFIX": settings.topic_prefix,
            "TAWASUL_LOG_LEVEL": "info",
            "TAWASUL_STATE_DIR": str(state_dir),
        }
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stream_processors.worker_cmd",
                "--metrics-port",
                "0",
                "--app-id",
                app_id,
                "--processors",
                processors,
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.ready_at: float | None = None
        self.rebuilds: list[dict[str, object]] = []
        self.peak_rss = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._sample, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("message") == READY_MESSAGE and len(entry.get("partitions", ())) == 6 and not self.ready_at:
                self.ready_at = time.monotonic()
            elif entry.get("message") == INDEX_MESSAGE:
                self.rebuilds.append(entry)
            elif entry.get("level") in ("error", "critical"):
                print(f"worker: {entry.get('message')}", file=sys.stderr)

    def _sample(self) -> None:
        status = Path(f"/proc/{self.proc.pid}/status")
        while self.proc.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.peak_rss = max(self.peak_rss, int(line.split()[1]) * 1024)
            except OSError:
                return
            time.sleep(0.5)

    def wait_ready(self, timeout_s: float = 600) -> float:
        while self.ready_at is None:
            if self.proc.poll() is not None:
                raise SystemExit("worker exited before it was ready")
            if time.monotonic() - self.started > timeout_s:
                raise SystemExit("worker not ready in time")
            time.sleep(0.05)
        return self.ready_at - self.started

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Outcomes:
    """Breach delays and counts read from the outcome topic as they come."""

    delays: dict[str, float] = field(default_factory=dict)
    deadlines: dict[str, float] = field(default_factory=dict)
    records: int = 0
    warnings: int = 0


def watch_outcomes(settings: Settings, out: Outcomes, stop: threading.Event) -> None:
    topic = settings.topic(SLA_OUTCOMES.name)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in range(SLA_OUTCOMES.partitions)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    while not stop.is_set():
        for batch in consumer.poll(timeout_ms=200).values():
            for record in batch:
                out.records += 1
                body = json.loads(record.value)
                if body["type"] == "sla.breached":
                    deadline = datetime.fromisoformat(body["data"]["deadline"]).timestamp()
                    out.deadlines.setdefault(body["id"], deadline)
                    out.delays.setdefault(body["id"], record.timestamp / 1000 - deadline)
                elif body["type"] == "sla.warning":
                    out.warnings += 1
    consumer.close()


def committed_events(settings: Settings, group: str) -> int:
    from kafka import KafkaAdminClient

    topic = settings.topic(EVENTS.name)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka)
    try:
        partitions = [TopicPartition(topic, p) for p in range(EVENTS.partitions)]
        offsets = admin.list_group_offsets({group: partitions}).get(group, {})
        return sum(meta.offset for meta in offsets.values() if meta is not None and meta.offset > 0)
    finally:
        admin.close()


def publish_tickets(settings: Settings, count: int, first_deadline: datetime, spread_s: float) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka, linger_ms=20, batch_size=256 * 1024, acks=1)
    topic = settings.topic(EVENTS.name)
    run = uuid.uuid4().hex[:6]
    for i in range(count):
        ticket = f"B-{run}-{i:07d}"
        opened = first_deadline + timedelta(seconds=spread_s * i / count) - TARGET
        body = {
            "specversion": "1.0",
            "id": f"{ticket}-open",
            "source": "/bench",
            "type": "ticket.opened",
            "time": opened.isoformat(),
            "subject": ticket,
            "datacontenttype": "application/json",
            "data": {"channel": "crm", "kind": "request", "category": "bench.load", "priority": "normal"},
        }
        producer.send(topic, key=ticket.encode(), value=json.dumps(body).encode())
    producer.flush()
    producer.close()


def wait_reporting(out: Outcomes, until: float, until_count: int | None = None) -> None:
    """Sleep until `until` (or `until_count` breaches), printing progress every minute."""
    last = time.time()
    while time.time() < until and (until_count is None or len(out.delays) < until_count):
        time.sleep(1.0)
        if time.time() - last >= 60:
            last = time.time()
            delays = list(out.delays.values())
            print(
                f"  {datetime.now(UTC):%H:%M:%S} breaches so far {len(delays)}, "
                f"p99 {percentile(delays, 0.99):.3f} s, max {max(delays, default=0):.3f} s",
                flush=True,
            )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--spread", type=float, default=3600.0, help="seconds over which deadlines fall")
    parser.add_argument(
        "--margin",
        type=float,
        default=None,
        help="seconds from the start of ingest to the first deadline [tickets/1000 + 30 + 144]",
    )
    parser.add_argument("--kafka", default=os.environ.get("TAWASUL_KAFKA", "localhost:9092"))
    parser.add_argument("--no-kill", action="store_true", help="do not kill -9 the worker")
    parser.add_argument(
        "--processors",
        choices=("sla", "all"),
        default="sla",
        help="the worker's processors: the SLA engine alone [default], or with the KPI processor",
    )
    parser.add_argument(
        "--kill-at", type=float, default=0.5, help="share of the deadline spread after which the worker is killed [0.5]"
    )
    args = parser.parse_args()
    # The tickets are backdated (opened up to 4 h ago): history to the worker, which keeps event
    # time until it has read them (docs/sla.md, "Live clock"); the warnings (1 % = 144 s before
    # their deadlines) then overdue fire at once. The first deadline comes after that burst.
    margin = args.margin if args.margin is not None else args.tickets / 1000 + 30 + 144

    folder = Path(tempfile.mkdtemp(prefix="tawasul-bench-"))
    (folder / "policies.yaml").write_text(POLICIES)
    settings = Settings(
        kafka=args.kafka, policies=folder / "policies.yaml", topic_prefix=f"bench-{uuid.uuid4().hex[:8]}."
    )
    ensure_topics(settings.kafka, settings.topic_prefix)
    app_id = f"{settings.topic_prefix}worker"
    worker = Worker(settings, app_id, args.processors, folder / "state")
    print(
        f"processors: {args.processors}; worker ready after {worker.wait_ready():.1f} s "
        f"(cpus: {os.cpu_count()}, load: {os.getloadavg()[0]:.1f})"
    )

    out, stop = Outcomes(), threading.Event()
    watcher = threading.Thread(target=watch_outcomes, args=(settings, out, stop), daemon=True)
    watcher.start()
    start = datetime.now(UTC)
    first_deadline = start + timedelta(seconds=margin)
    last_deadline = first_deadline + timedelta(seconds=args.spread)
    began = time.monotonic()
    publish_tickets(settings, args.tickets, first_deadline, args.spread)
    published = time.monotonic() - began
    while committed_events(settings, app_id) < args.tickets:
        time.sleep(1.0)
    ingested = time.monotonic() - began
    ingest_rss = worker.peak_rss
    print(
        f"published {args.tickets} in {published:.1f} s; processed in {ingested:.1f} s "
        f"= {args.tickets / ingested:,.0f} events/s; worker RSS {ingest_rss / 2**20:,.0f} MiB"
    )
    if ingested > margin:
        print(f"warning: ingest took longer than the margin ({margin:.0f} s): early deadlines were late")

    killed = recovered = None
    recovery_s = None
    peak_before = ingest_rss
    if not args.no_kill:
        kill_at = first_deadline + timedelta(seconds=args.spread * args.kill_at)
        wait_reporting(out, kill_at.timestamp())
        worker.kill()
        killed = time.time()
        peak_before = worker.peak_rss
        worker = Worker(settings, app_id, args.processors, folder / "state")
        recovery_s = worker.wait_ready()
        recovered = time.time()
        print(
            f"kill -9 at +{killed - start.timestamp():.0f} s; restarted worker ready after {recovery_s:.1f} s "
            f"(peak RSS before the kill {peak_before / 2**20:,.0f} MiB)"
        )
        for entry in worker.rebuilds:
            print(
                f"  deadline index rebuilt from the local state: {entry.get('tickets')} tickets in "
                f"{entry.get('seconds')} s; changelog records read on recovery: {entry.get('changelog_records')}"
            )

    wait_reporting(out, last_deadline.timestamp() + 120, until_count=args.tickets)
    time.sleep(2.0)
    stop.set()
    watcher.join()
    worker.stop()

    delays = list(out.delays.values())
    steady = [
        d
        for i, d in out.delays.items()
        if killed is None or not (killed - 1 <= out.deadlines[i] <= (recovered or killed) + 1)
    ]
    print(
        f"breaches: {len(delays)} of {args.tickets} (missing {args.tickets - len(delays)}); "
        f"warnings: {out.warnings}; outcome records: {out.records}"
    )
    if delays:
        print(
            f"deadline -> breach record, all: p50 {percentile(delays, 0.5):.3f} s, "
            f"p99 {percentile(delays, 0.99):.3f} s, max {max(delays):.3f} s, mean {statistics.fmean(delays):.3f} s"
        )
    if steady and killed is not None:
        print(
            f"  excluding deadlines during the restart ({len(delays) - len(steady)}): "
            f"p50 {percentile(steady, 0.5):.3f} s, p99 {percentile(steady, 0.99):.3f} s, max {max(steady):.3f} s"
        )
    print(
        f"worker peak RSS {max(worker.peak_rss, peak_before) / 2**20:,.0f} MiB"
        + (f"; recovery after kill -9: {recovery_s:.1f} s" if recovery_s is not None else "")
    )


if __name__ == "__main__":
    main()

"""Benchmark: `tawasul publish` against the raw kafka-python producer on the same file.

    python bench/bench_publish.py [--events N] [--kafka HOST:PORT] [--file PATH] [--compression C]

1. writes N simulated events (default 1,000,000) to a JSON Lines file (or reuses `--file`
   when it exists);
2. (a) raw: a kafka-python producer with the publisher's settings sends every line as it is
   (key = the subject cut out of the line, no validation);
3. (b) publish: the code path of `tawasul publish` (`publish_lines` with validation workers
   and `BulkPublisher`, or `EventPublisher` with `--workers 0`: validation, privacy check,
   confirmed sends, flush);
4. prints events/s of both and their ratio (goal: publish >= 0.5 x raw) with the machine's
   conditions. Each run writes to topics of its own prefix and deletes them at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import kafka
from kafka import KafkaAdminClient, KafkaProducer

from producers.bulk_publisher import BulkPublisher
from producers.lines import READ_BUFFER, LinePublisher, default_workers, publish_lines
from producers.publisher import PRODUCER_DEFAULTS, EventPublisher
from producers.simulator import Params, iter_events, parse_when
from tawasul.infra.settings import Settings
from tawasul.infra.topics import ALL_TOPICS, EVENTS, ensure_topics

SUBJECT = re.compile(rb'"subject"\s*:\s*"([^"]*)"')
PERIOD_DAYS = 181
EVENTS_PER_SCALE = 330_000
"""About how many events one half-year at scale 1 gives (used to pick the scale)."""


@dataclass(frozen=True)
class Run:
    name: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def generate(path: Path, count: int) -> float:
    """Write `count` simulated events to `path`; returns the seconds it took."""
    began = time.perf_counter()
    written = 0
    start = parse_when("2025-01-01")
    round_no = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        while written < count:
            scale = max(0.01, (count - written) / EVENTS_PER_SCALE * 1.1)
            params = Params(
                start, start + timedelta(days=PERIOD_DAYS), seed=round_no + 1, scale=scale, tag=f"b{round_no}"
            )
            for event in iter_events(params):
                out.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
                written += 1
                if written >= count:
                    break
            round_no += 1
    return time.perf_counter() - began


def raw_run(path: Path, bootstrap: str, topic: str, config: dict[str, object]) -> Run:
    """Send every line unchanged with a plain KafkaProducer (same settings as the publisher)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="bench-raw", **config)
    producer.partitions_for(topic)  # connect and fetch metadata before the clock starts
    sent = 0
    began = time.perf_counter()
    with path.open("rb", buffering=READ_BUFFER) as handle:
        for line in handle:
            value = line.rstrip(b"\r\n")
            match = SUBJECT.search(value)
            producer.send(topic, value=value, key=match.group(1) if match else None)
            sent += 1
    producer.flush()
    seconds = time.perf_counter() - began
    producer.close()
    return Run("raw kafka-python producer", sent, seconds)


def publish_run(path: Path, settings: Settings, config: dict[str, object], workers: int) -> Run:
    """`tawasul publish` without the process start: validate, publish, flush, close. With
    workers it sends record batches (`BulkPublisher`, uncompressed), as the command does."""
    publisher: LinePublisher
    if workers > 0:
        publisher = BulkPublisher(settings, client_id="bench-publish")
    else:
        publisher = EventPublisher(settings, client_id="bench-publish", producer_config=config)
        publisher.connect()
    began = time.perf_counter()
    with path.open("rb", buffering=READ_BUFFER) as handle:
        summary = publish_lines(handle, path.name, publisher, None, workers=workers)
    publisher.close()
    seconds = time.perf_counter() - began
    if summary.rejected:
        raise SystemExit(f"unexpected: {summary.rejected} simulated events were rejected")
    return Run("tawasul publish", summary.published, seconds)


def delete_topics(bootstrap: str, prefixes: list[str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-cleanup")
    try:
        names = [f"{prefix}{spec.name}" for prefix in prefixes for spec in ALL_TOPICS]
        existing = set(admin.list_topics())
        admin.delete_topics([name for name in names if name in existing])
    finally:
        admin.close()


def conditions() -> str:
    return (
        f"CPUs: {os.cpu_count()}, load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"Python {platform.python_version()} ({platform.machine()}); kafka-python {kafka.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to simulate (default 1,000,000)")
    parser.add_argument("--kafka", default=os.environ.get("TAWASUL_KAFKA", "localhost:9092"))
    parser.add_argument(
        "--file", type=Path, help="the JSON Lines file: simulated into when missing, reused when present"
    )
    parser.add_argument(
        "--compression",
        default=None,
        help=f"compression_type for both runs (default the publisher's: "
        f"{PRODUCER_DEFAULTS['compression_type']}; none = no compression)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="validation processes of the publish run (default: as `tawasul publish` chooses)",
    )
    parser.add_argument("--keep-topics", action="store_true", help="do not delete the benchmark topics")
    args = parser.parse_args(argv)

    config = dict(PRODUCER_DEFAULTS)
    if args.compression is not None:
        config["compression_type"] = None if args.compression == "none" else args.compression
    print(conditions())
    print(
        f"producer: acks={config['acks']}, idempotent, linger_ms={config['linger_ms']}, "
        f"batch_size={config['batch_size']}, compression={config['compression_type']}"
    )
    with tempfile.TemporaryDirectory(prefix="tawasul-bench-") as tmp:
        path = args.file or Path(tmp) / "events.jsonl"
        if not path.exists():
            seconds = generate(path, args.events)
            print(f"simulated {args.events:,} events ({path.stat().st_size / 1e6:,.0f} MB) in {seconds:.1f} s")
        run_id = uuid.uuid4().hex[:8]
        raw_prefix, publish_prefix = f"bench-raw-{run_id}-", f"bench-pub-{run_id}-"
        ensure_topics(args.kafka, raw_prefix, (EVENTS,))
        ensure_topics(args.kafka, publish_prefix)
        try:
            raw = raw_run(path, args.kafka, f"{raw_prefix}{EVENTS.name}", config)
            print(f"(a) {raw.name}: {raw.events:,} events in {raw.seconds:.1f} s = {raw.rate:,.0f} events/s")
            settings = Settings(kafka=args.kafka).with_prefix(publish_prefix)
            workers = default_workers(path.stat().st_size) if args.workers is None else args.workers
            published = publish_run(path, settings, config, workers)
            print(
                f"(b) {published.name} ({workers} validation worker(s)): {published.events:,} events in "
                f"{published.seconds:.1f} s = {published.rate:,.0f} events/s"
            )
            print(f"ratio publish / raw = {published.rate / raw.rate:.2f} (goal >= 0.50)")
        finally:
            if not args.keep_topics:
                delete_topics(args.kafka, [raw_prefix, publish_prefix])
    return 0


if __name__ == "__main__":
    sys.exit(main())

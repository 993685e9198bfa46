"""Benchmark: the database sink alone, draining a replay's topics into SQLite or PostgreSQL.

A replay's Kafka topics (input events, SLA outcomes, ticket states, KPI snapshots, the policy
book: the realistic mix `tawasul sink` stores) are produced once, by `tawasul replay` of a
simulated period with `keep_topics`; then each round times `run_db_sink` (the replay's sink:
every partition assigned, batches of 10,000, read through aiokafka) draining all of them into a
fresh database, from the start, with a group of its own. Per round it prints records and rows
per second and the CPU of the sink's process (all its threads: the loop, aiokafka's fetch, the
database driver) per record and per row; on PostgreSQL also the CPU of the server processes
serving the sink's connections. The machine is shared: it prints the load average of each
round; repeat rounds (`--rounds`) and read ranges.

Usage:
  python bench/bench_sink.py [--from 2025-01-01 --to 2025-02-01] [--rounds 3] [--db sqlite|URL]
  python bench/bench_sink.py --keep-topics             # prints the prefix of the produced topics
  python bench/bench_sink.py --prefix PREFIX --db URL  # drain topics kept by an earlier run
  python bench/bench_sink.py --profile 25              # cProfile of one round: the top 25 functions
  python bench/bench_sink.py --prefix PREFIX --stages  # no Kafka in the loop: decode, add, flush timed apart

`--stages` reads the topics into memory once, then per round decodes every message with the
sink's decoders, adds the records to a `DbWriter` and flushes every 10,000 (as the sink's
batches), timing the three apart (CPU of this process; on PostgreSQL also the server's).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text

from sinks.consumer import GC_THRESHOLDS, SINK_TOPICS, run_db_sink, tune_gc
from tawasul.infra.metrics import Metrics
from tawasul.infra.settings import Settings
from tawasul.infra.topics import TopicSpec, partition_end_offsets

REPO = Path(__file__).resolve().parents[1]


def conditions() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}, Python {platform.python_version()}"


def produce(options: argparse.Namespace, work: Path) -> str:
    """Simulate the period, replay it with its topics kept; returns their prefix."""
    from tawasul.app.replay import replay_file

    events = work / "events.jsonl"
    subprocess.run(
        [sys.executable, "-m", "tawasul", "simulate", "--from", options.start, "--to", options.end]
        + ["--scale", options.scale, "--seed", "7", "--out", str(events), "--no-progress"],
        check=True,
        cwd=REPO,
    )
    base = f"bench-sink-{uuid.uuid4().hex[:8]}."
    settings = Settings.resolve(kafka=options.kafka, database_url=f"sqlite:///{work / 'produce.db'}", topic_prefix=base)
    began = time.perf_counter()
    summary = replay_file(events, settings, keep_topics=True)
    print(f"produced: {summary.events:,} events replayed in {time.perf_counter() - began:.1f} s")
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=options.kafka)
    try:
        names = {name for name in admin.list_topics() if name.startswith(base)}
    finally:
        admin.close()
    run = {name[: len(name) - len(spec.name)] for name in names for spec in SINK_TOPICS if name.endswith(spec.name)}
    if len(run) != 1:
        raise SystemExit(f"cannot tell the replay's topics apart: {sorted(names)}")
    return run.pop()


def totals(settings: Settings) -> dict[str, int]:
    """Messages per topic of the sink (full names)."""
    names = [settings.topic(spec.name) for spec in SINK_TOPICS]
    out = dict.fromkeys(names, 0)
    for (topic, _partition), offset in partition_end_offsets(settings.kafka, names).items():
        out[topic] += offset
    return out


@contextmanager
def fresh_database(db: str, work: Path, round_no: int) -> Iterator[str]:
    """A fresh SQLite file, or a fresh schema of the PostgreSQL database `db` (dropped after)."""
    if db == "sqlite":
        yield f"sqlite:///{work / f'round-{round_no}.db'}"
        return
    schema = f"bench_sink_{uuid.uuid4().hex[:10]}"
    admin = create_engine(db, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in db else "?"
    try:
        yield f"{db}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of another process, from /proc; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Round:
    seconds: float
    cpu: float
    server_cpu: float | None
    records: int
    rows: Mapping[str, int]
    load: float


def drain(settings: Settings, expected: Mapping[str, int], profile: cProfile.Profile | None) -> Round:
    """Run the sink until it stored every message of `expected`; time it."""
    stop = threading.Event()
    done: dict[str, int] = {}
    server_pids: set[int] = set()
    server_cpu: dict[int, float] = {}
    failure: list[BaseException] = []
    summary: list[object] = []

    def on_start(engine: Engine) -> None:
        if engine.dialect.name == "postgresql":

            @event.listens_for(engine, "connect")
            def remember(dbapi_connection: object, _record: object) -> None:
                server_pids.add(dbapi_connection.info.backend_pid)  # type: ignore[attr-defined]

    def on_progress(counts: Mapping[str, int]) -> None:
        done.update(counts)
        for pid in server_pids:
            server_cpu[pid] = _process_cpu(pid)
        if all(done.get(topic, 0) >= n for topic, n in expected.items()):
            stop.set()

    def main() -> None:
        if profile is not None:
            profile.enable()
        try:
            summary.append(
                run_db_sink(
                    settings,
                    stop=stop,
                    metrics=Metrics(),
                    group_id=settings.topic(f"bench-sink-{uuid.uuid4().hex[:8]}"),
                    on_progress=on_progress,
                    on_start=on_start,
                    batch_max=10_000,
                    batch_wait_s=0.2,
                    assign=True,
                )
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            failure.append(exc)
            stop.set()
        finally:
            if profile is not None:
                profile.disable()

    cpu_before, began = time.process_time(), time.perf_counter()
    thread = threading.Thread(target=main, name="bench-sink")
    thread.start()
    thread.join()
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu_before
    if failure:
        raise SystemExit(f"the sink failed: {failure[0]!r}")
    result = summary[0]
    return Round(
        seconds=seconds,
        cpu=cpu,
        server_cpu=sum(server_cpu.values()) if server_pids else None,
        records=sum(result.records.values()),  # type: ignore[attr-defined]
        rows=dict(result.rows),  # type: ignore[attr-defined]
        load=os.getloadavg()[0],
    )


def read_all(settings: Settings) -> list[tuple[TopicSpec, bytes]]:
    """Every message of the sink's topics, in partition order."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka, enable_auto_commit=False, max_poll_records=50_000)
    try:
        specs = {settings.topic(spec.name): spec for spec in SINK_TOPICS}
        parts = [TopicPartition(t, p) for t in specs for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        out: list[tuple[TopicSpec, bytes]] = []
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            for tp, batch in consumer.poll(timeout_ms=1000).items():
                out += [(specs[tp.topic], m.value) for m in batch if m.value is not None]
        return out
    finally:
        consumer.close()


def stages(messages: list[tuple[TopicSpec, bytes]], url: str, batch: int = 10_000) -> str:
    """Decode, add and flush `messages` into the fresh database `url`; a line of figures."""
    from sinks.db import migrate
    from sinks.db.engine import make_engine
    from sinks.db.writer import DbWriter
    from sinks.input_checks import decoder_for

    migrate.upgrade(url)
    engine = make_engine(url)
    pids: set[int] = set()
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            pids.add(connection.connection.dbapi_connection.info.backend_pid)  # type: ignore[union-attr]
    decoders = {spec.name: decoder_for(spec) for spec, _ in messages}
    began = time.process_time()
    records = [decoders[spec.name](raw) for spec, raw in messages]
    decode = time.process_time() - began
    writer = DbWriter(engine)
    add = flush = 0.0
    rows = 0
    server_before = sum(_process_cpu(pid) for pid in pids)
    for start in range(0, len(records), batch):
        began = time.process_time()
        for record in records[start : start + batch]:
            writer.add(record)
        middle = time.process_time()
        rows += sum(writer.flush().rows.values())
        add, flush = add + middle - began, flush + time.process_time() - middle
    server = sum(_process_cpu(pid) for pid in pids) - server_before
    engine.dispose()
    n = len(records)
    return (
        f"{n:,} records, {rows:,} rows; CPU per record: decode {decode * 1e6 / n:.1f} us, add {add * 1e6 / n:.1f} us, "
        f"flush {flush * 1e6 / n:.1f} us ({flush * 1e6 / rows:.1f} us/row)"
        + (f"; server {server * 1e6 / rows:.1f} us/row" if pids else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", default="2025-01-01")
    parser.add_argument("--to", dest="end", default="2025-02-01")
    parser.add_argument("--scale", default="1.0")
    parser.add_argument("--kafka", default=os.environ.get("TAWASUL_KAFKA", "localhost:9092"))
    parser.add_argument("--db", default="sqlite", help="'sqlite' (a fresh file per round) or a PostgreSQL URL")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prefix", default=None, help="drain the topics of this prefix (from --keep-topics)")
    parser.add_argument("--keep-topics", action="store_true", help="keep the produced topics and print their prefix")
    parser.add_argument("--default-gc", action="store_true", help="keep Python's GC thresholds (not `tawasul sink`'s)")
    parser.add_argument("--stages", action="store_true", help="decode, add and flush timed apart, no Kafka")
    parser.add_argument("--profile", type=int, default=0, help="profile one round and print the top N functions")
    options = parser.parse_args()
    os.environ.setdefault("TAWASUL_LOG_LEVEL", "error")
    work = Path(tempfile.mkdtemp(prefix="tawasul-bench-sink-"))

    if not options.default_gc:
        tune_gc()  # as `tawasul sink` does
    print(
        f"machine: {conditions()}; GC thresholds {gc.get_threshold()}"
        + ("" if options.default_gc else f" (tawasul sink's {GC_THRESHOLDS})")
    )
    prefix = options.prefix or produce(options, work)
    settings = Settings.resolve(kafka=options.kafka, topic_prefix=prefix)
    expected = totals(settings)
    print(f"topics {prefix}*: " + ", ".join(f"{t[len(prefix) :]} {n:,}" for t, n in expected.items()))
    rounds = 1 if options.profile else options.rounds
    messages = read_all(settings) if options.stages else []
    for number in range(1, rounds + 1):
        profile = cProfile.Profile() if options.profile else None
        if options.stages:
            with fresh_database(options.db, work, number) as url:
                print(f"stages round {number} (load {os.getloadavg()[0]:.1f}): {stages(messages, url)}")
            continue
        with fresh_database(options.db, work, number) as url:
            result = drain(
                Settings.resolve(kafka=options.kafka, database_url=url, topic_prefix=prefix), expected, profile
            )
        rows = sum(result.rows.values())
        server = "" if result.server_cpu is None else f"; server {result.server_cpu * 1e6 / rows:.1f} us/row"
        print(
            f"round {number} ({'sqlite' if options.db == 'sqlite' else 'postgresql'}, load {result.load:.1f}): "
            f"{result.records:,} records, {rows:,} rows in {result.seconds:.1f} s = "
            f"{result.records / result.seconds:,.0f} records/s, {rows / result.seconds:,.0f} rows/s; "
            f"CPU {result.cpu:.1f} s = {result.cpu * 1e6 / result.records:.1f} us/record, "
            f"{result.cpu * 1e6 / rows:.1f} us/row{server}"
        )
        if number == 1:
            print("        rows: " + ", ".join(f"{table} {n:,}" for table, n in sorted(result.rows.items())))
        if profile is not None:
            pstats.Stats(profile).sort_stats("tottime").print_stats(options.profile)
    if options.prefix is None and not options.keep_topics:
        from tawasul.app.replay import _delete_run_topics

        _delete_run_topics(settings)
    elif options.keep_topics:
        print(f"topics kept: --prefix {prefix}")


if __name__ == "__main__":
    main()

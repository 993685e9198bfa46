"""Run `BatchEngine` on Kafka: the replay engine of `tawasul replay` (in a process of its own).

The loop: poll the events and ticks topics (all partitions, assigned: no group rebalance to
wait for) and feed the records to the engine; after `BATCH_MAX` records, `FLUSH_EVERY_S`, or
when the input is idle, produce the engine's outputs to the run's topics (outcomes, ticket
states, KPI snapshots), flush the producer, and only then commit the input offsets in the
consumer group `group_id`. At the end of the input every pending KPI snapshot goes out before
that commit. So `runner.input_drained(settings, group_id)` tells when every output is in
Kafka, as for the faust app.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.synchronize
import time
from dataclasses import dataclass
from datetime import timedelta

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from tawasul.domain.policies import load_policies
from tawasul.partitioner import KeyPartitioner
from tawasul.settings import Settings
from tawasul.topics import EVENTS, KPIS, SLA_OUTCOMES, SLA_TICKS, TICKET_STATE, assignable_partitions

from stream_processors.batch_engine import BatchEngine, Outputs
from stream_processors.clock import DEFAULT_LATENESS
from stream_processors.kpi_agent import config_from_env
from stream_processors.snapshots import SnapshotPacer

log = logging.getLogger(__name__)

BATCH_MAX = 20_000
"""Records fed to the engine between two flushes, at most."""
FLUSH_EVERY_S = 1.0
"""Longest time between two flushes while records come in (larger batches: fewer ticket
states and KPI evaluations per event, less CPU)."""
POLL_MS = 200
SNAPSHOT_INTERVAL_S = 10.0
"""A changed KPI key is published at most this often while a replay runs (its final value
always goes out at the end): the database keeps only the latest snapshot of each key, so
the 1 s pace of live workers would only add work."""


class BatchRunnerError(RuntimeError):
    """The batch engine's process failed or could not start."""


@dataclass(frozen=True)
class BatchJob:
    """What the engine's process needs (picklable)."""

    settings: Settings
    group_id: str
    lateness: timedelta = DEFAULT_LATENESS
    with_kpis: bool = True
    snapshot_interval_s: float = SNAPSHOT_INTERVAL_S


def run_batch(job: BatchJob, stop: multiprocessing.synchronize.Event) -> None:
    """Process the run's input until `stop` is set (the caller waits with `input_drained`)."""
    settings = job.settings
    kpi_topic = settings.topic(KPIS.name)
    engine = BatchEngine(
        load_policies(settings.policies_path), config_from_env(),
        SnapshotPacer(min_interval_s=job.snapshot_interval_s, slow_interval_s=job.snapshot_interval_s),
        lateness=job.lateness, with_kpis=job.with_kpis,
    )
    events, ticks = settings.topic(EVENTS.name), settings.topic(SLA_TICKS.name)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka, group_id=job.group_id, enable_auto_commit=False,
        auto_offset_reset="earliest", max_poll_records=BATCH_MAX, fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024, client_id="tawasul-replay-engine",
    )
    producer = KafkaProducer(bootstrap_servers=settings.kafka, acks="all", linger_ms=20, batch_size=512 * 1024,
                             client_id="tawasul-replay-engine", partitioner=KeyPartitioner())
    outputs = {"outcomes": settings.topic(SLA_OUTCOMES.name), "states": settings.topic(TICKET_STATE.name),
               "snapshots": kpi_topic}
    try:
        consumer.assign(assignable_partitions(consumer, (events, ticks)))
        pending_snapshots = False
        parent = multiprocessing.parent_process()
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        fed, last_flush = 0, time.monotonic()
        while not stop.is_set() and (parent is None or parent.is_alive()):
            polled = consumer.poll(timeout_ms=POLL_MS, max_records=BATCH_MAX)
            for tp, records in sorted(polled.items(), key=lambda item: item[0].topic != events):
                if tp.topic == events:          # events first: a marker may wait for them
                    for record in records:
                        engine.on_event(tp.partition, record.offset, record.value)
                else:
                    for record in records:
                        engine.on_tick(tp.partition, record.value)
                offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
                fed += len(records)
            idle = not polled
            if not (fed >= BATCH_MAX or (idle and (fed or pending_snapshots))
                    or (fed and time.monotonic() - last_flush >= FLUSH_EVERY_S)):
                continue
            # Outputs of everything fed so far, then the input offsets: at least once. At the end
            # of the input every pending snapshot goes out before the commit, so that once the
            # input is drained (`runner.input_drained`) every output is in Kafka.
            at_end = idle or _caught_up(consumer)
            _produce(producer, outputs, engine.flush(force_snapshots=at_end))
            producer.flush()
            if offsets:
                consumer.commit(offsets)
            pending_snapshots = not at_end
            offsets, fed, last_flush = {}, 0, time.monotonic()
    finally:
        counts = engine.counts
        log.info("batch engine stopped", extra={
            "events": counts.events, "outcomes": counts.outcomes, "duplicates": counts.duplicates,
            "unreadable": counts.unreadable})
        producer.close()
        consumer.close()


def _caught_up(consumer: KafkaConsumer) -> bool:
    """True when every assigned partition was read up to its end as of the last fetch."""
    for tp in consumer.assignment():
        end = consumer.highwater(tp)
        if end is None or consumer.position(tp) < end:
            return False
    return True


def _produce(producer: KafkaProducer, topics: dict[str, str], out: Outputs) -> None:
    for name, messages in (("outcomes", out.outcomes), ("states", out.states), ("snapshots", out.snapshots)):
        topic = topics[name]
        for key, value in messages:
            producer.send(topic, key=key, value=value)


def _main(job: BatchJob, stop: multiprocessing.synchronize.Event, level: str) -> None:
    from tawasul.logs import configure_logging

    configure_logging(level)
    run_batch(job, stop)


class BatchProcess:
    """The engine in a child process (so that it has a CPU of its own, apart from the sink)."""

    def __init__(self, job: BatchJob, log_level: str | None = None) -> None:
        """`log_level`: the engine's logging level; by default that of this process's root logger."""
        context = multiprocessing.get_context("spawn")
        log_level = log_level or logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
        self._stop = context.Event()
        self._process = context.Process(target=_main, args=(job, self._stop, log_level),
                                        name="tawasul-replay-engine", daemon=True)

    def start(self) -> BatchProcess:
        self._process.start()
        return self

    def raise_if_dead(self) -> None:
        if not self._process.is_alive():
            raise BatchRunnerError(f"the replay engine stopped (exit code {self._process.exitcode})")

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        self._process.join(timeout_s)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)

    def __enter__(self) -> BatchProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

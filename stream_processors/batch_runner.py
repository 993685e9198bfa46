"""Run `BatchEngine` on Kafka: the replay engine of `tawasul replay` (in a process of its own).

The loop: fetch from the events and ticks topics (all partitions, assigned: no group rebalance
to wait for) and feed the records to the engine; after `BATCH_MAX` records, `FLUSH_EVERY_S`,
or when the input is idle, produce the engine's outputs to the run's topics (outcomes, ticket
states, KPI snapshots), wait until the broker acknowledged all of them, and only then commit
the input offsets in the consumer group `group_id`. At the end of the input every pending KPI
snapshot goes out before that commit. So `runner.input_drained(settings, group_id)` tells when
every output is in Kafka, as for the faust app.

Kafka I/O goes through aiokafka (a dependency of faust), whose record batches are built and
read in compiled code: the outputs are appended to one record batch per partition, keyed as
Kafka's default partitioner does (`tawasul.infra.partitioner`). With kafka-python's per-record
producer and fetcher this process spent about a fifth of its time in Kafka I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import multiprocessing.synchronize
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from stream_processors.batch_engine import BatchEngine, Outputs
from stream_processors.clock import DEFAULT_LATENESS
from stream_processors.kpi_config import config_from_env
from stream_processors.snapshots import SnapshotPacer
from tawasul.domain.policies import load_policies
from tawasul.infra.kafka_security import aiokafka_options
from tawasul.infra.partitioner import KeyHashes
from tawasul.infra.settings import Settings
from tawasul.infra.topics import EVENTS, KPIS, SLA_OUTCOMES, SLA_TICKS, TICKET_STATE, TopicsNotReadyError

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
METADATA_TIMEOUT_S = 30.0


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
    jobs: int = 1
    """SLA engines, each in a process of its own over a group of partitions, feeding one KPI
    process (`batch_jobs`); 1: one process does everything."""


Offsets = dict[TopicPartition, OffsetAndMetadata]
Flushed = Callable[[Outputs, Offsets, bool], Awaitable[None]]
"""Told (outputs, input offsets, at the end of the input) once a flush's outputs are acknowledged."""


def run_batch(job: BatchJob, stop: multiprocessing.synchronize.Event) -> None:
    """Process the run's input until `stop` is set (the caller waits with `input_drained`)."""
    if job.jobs > 1:
        from stream_processors.batch_jobs import run_jobs

        asyncio.run(run_jobs(job, stop))
    else:
        asyncio.run(run_engine(job, stop))


def snapshot_pacer(job: BatchJob) -> SnapshotPacer:
    return SnapshotPacer(min_interval_s=job.snapshot_interval_s, slow_interval_s=job.snapshot_interval_s)


async def run_engine(
    job: BatchJob,
    stop: multiprocessing.synchronize.Event,
    *,
    group: int | None = None,
    flushed: Flushed | None = None,
) -> None:
    """The engine over the run's input: every partition with the KPI processor (the input
    offsets committed after each flush), or (`group` j of `job.jobs`) the partitions p with
    p % jobs == j, SLA only, each flush told to `flushed` (which commits)."""
    settings = job.settings
    engine = BatchEngine(
        load_policies(settings.policies_path),
        config_from_env(),
        snapshot_pacer(job),
        lateness=job.lateness,
        with_kpis=job.with_kpis and group is None,
        forward_kpis=job.with_kpis and group is not None,
    )
    events, ticks = settings.topic(EVENTS.name), settings.topic(SLA_TICKS.name)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka,
        group_id=job.group_id if group is None else None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        client_id="tawasul-replay-engine",
        **aiokafka_options(),
    )
    producer = engine_producer(settings, "tawasul-replay-engine")
    outputs = Producing(
        producer,
        {
            "outcomes": settings.topic(SLA_OUTCOMES.name),
            "states": settings.topic(TICKET_STATE.name),
            "snapshots": settings.topic(KPIS.name),
        },
    )
    async with contextlib.AsyncExitStack() as running:
        await consumer.start()
        running.push_async_callback(consumer.stop)
        await producer.start()
        running.push_async_callback(producer.stop)
        try:
            chosen = None if group is None else (lambda partition: partition % job.jobs == group)
            await _consume(consumer, outputs, engine, (events, ticks), stop, chosen=chosen, flushed=flushed)
        finally:
            counts = engine.counts
            log.info(
                "batch engine stopped",
                extra={
                    "events": counts.events,
                    "outcomes": counts.outcomes,
                    "duplicates": counts.duplicates,
                    "unreadable": counts.unreadable,
                },
            )


def engine_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    """The producer of an engine's outputs (acknowledged by every in-sync replica)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka,
        acks="all",
        linger_ms=20,
        max_batch_size=1024 * 1024,
        client_id=client_id,
        **aiokafka_options(),
    )


async def _consume(
    consumer: AIOKafkaConsumer,
    outputs: Producing,
    engine: BatchEngine,
    inputs: tuple[str, str],
    stop: multiprocessing.synchronize.Event,
    *,
    chosen: Callable[[int], bool] | None = None,
    flushed: Flushed | None = None,
) -> None:
    """The loop of the module docstring, until `stop` is set or the parent process is gone
    (`chosen`: the partitions to read; `flushed`: see `run_engine`)."""
    events = inputs[0]
    partitions = await input_partitions(outputs.producer, inputs)
    consumer.assign([tp for tp in partitions if chosen is None or chosen(tp.partition)])
    pending_snapshots = flushed is not None  # an SLA engine of a group tells its end once at least
    parent = multiprocessing.parent_process()
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    fed, last_flush = 0, time.monotonic()
    while not stop.is_set() and (parent is None or parent.is_alive()):
        polled = await consumer.getmany(timeout_ms=POLL_MS, max_records=BATCH_MAX)
        for tp, records in sorted(polled.items(), key=lambda item: item[0].topic != events):
            if tp.topic == events:  # events first: a marker may wait for them
                for record in records:
                    engine.on_event(tp.partition, record.offset, record.value)
            else:
                for record in records:
                    engine.on_tick(tp.partition, record.value)
            offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
            fed += len(records)
        idle = not polled
        if not (
            fed >= BATCH_MAX
            or (idle and (fed or pending_snapshots))
            or (fed and time.monotonic() - last_flush >= FLUSH_EVERY_S)
        ):
            continue
        # Outputs of everything fed so far, then the input offsets: at least once. At the end
        # of the input every pending snapshot goes out before the commit, so that once the
        # input is drained (`runner.input_drained`) every output is in Kafka.
        at_end = idle or await _caught_up(consumer)
        out = engine.flush(force_snapshots=at_end)
        await outputs.send(out)
        if flushed is not None:
            await flushed(out, offsets, at_end)
        elif offsets:
            await consumer.commit(offsets)
        pending_snapshots = not at_end
        offsets, fed, last_flush = {}, 0, time.monotonic()


async def input_partitions(producer: AIOKafkaProducer, topics: tuple[str, ...]) -> list[TopicPartition]:
    """Every partition of `topics`, once the metadata knows them all (the producer's
    `partitions_for` fetches it; the consumer's own view is filled only by fetching)."""
    give_up = time.monotonic() + METADATA_TIMEOUT_S
    while True:
        found = {}
        for topic in topics:
            try:
                found[topic] = await producer.partitions_for(topic)
            except KafkaError:
                found[topic] = set()
        if all(found.values()):
            return [TopicPartition(topic, p) for topic, parts in found.items() for p in sorted(parts)]
        if time.monotonic() > give_up:
            missing = ", ".join(topic for topic, parts in found.items() if not parts)
            raise TopicsNotReadyError(f"topics not in the metadata after {METADATA_TIMEOUT_S:.0f} s: {missing}")
        await asyncio.sleep(0.2)


async def _caught_up(consumer: AIOKafkaConsumer) -> bool:
    """True when every assigned partition was read up to its end as of the last fetch."""
    for tp in consumer.assignment():
        end = consumer.highwater(tp)
        if end is None or await consumer.position(tp) < end:
            return False
    return True


class Producing:
    """The engine's outputs as record batches, one per topic and partition at a time; `send`
    returns once the broker acknowledged every record (a failed delivery raises)."""

    def __init__(self, producer: AIOKafkaProducer, topics: dict[str, str]) -> None:
        self.producer = producer
        self._topics = topics
        self._partition_counts: dict[str, int] = {}
        self._hashes = KeyHashes()

    async def send(self, out: Outputs) -> None:
        deliveries: list[Any] = []
        for name, messages in (("outcomes", out.outcomes), ("states", out.states), ("snapshots", out.snapshots)):
            if messages:
                deliveries += await self._send_topic(self._topics[name], messages)
        if deliveries:
            await asyncio.gather(*deliveries)

    async def _send_topic(self, topic: str, messages: list[tuple[bytes, bytes]]) -> list[Any]:
        count = self._partition_counts.get(topic)
        if count is None:
            count = self._partition_counts[topic] = len(await self.producer.partitions_for(topic))
        producer, deliveries = self.producer, []
        batches: dict[int, Any] = {}
        for key, value in messages:
            partition = self._hashes.partition(key, count)
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start another
                deliveries.append(await self._send_batch(batch, topic, partition))
                batch = batches[partition] = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise BatchRunnerError(f"a record of {len(value)} bytes does not fit in a batch")
        for partition, batch in batches.items():
            deliveries.append(await self._send_batch(batch, topic, partition))
        return deliveries

    async def _send_batch(self, batch: Any, topic: str, partition: int) -> Any:
        batch.close()
        return await self.producer.send_batch(batch, topic, partition=partition)


GC_THRESHOLDS = (100_000, 50, 100)
"""The engine keeps every ticket's state in memory: hundreds of thousands of long-lived objects,
which Python's default thresholds (700, 10, 10) make the collector scan again and again (about
a tenth of the engine's CPU in a half-year replay). The state holds no reference cycles, so
the engine collects far less often."""


def prepare_process(level: str) -> None:
    """Logging and collector thresholds of an engine's process."""
    from tawasul.infra.logs import configure_logging

    configure_logging(level)
    gc.set_threshold(*GC_THRESHOLDS)


def _main(job: BatchJob, stop: multiprocessing.synchronize.Event, level: str) -> None:
    prepare_process(level)
    run_batch(job, stop)


class BatchProcess:
    """The engine in a child process (so that it has a CPU of its own, apart from the sink)."""

    def __init__(self, job: BatchJob, log_level: str | None = None) -> None:
        """`log_level`: the engine's logging level; by default that of this process's root logger."""
        context = multiprocessing.get_context("spawn")
        log_level = log_level or logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
        self._stop = context.Event()
        self._process = context.Process(
            target=_main,
            args=(job, self._stop, log_level),
            name="tawasul-replay-engine",
            daemon=job.jobs == 1,  # a daemon has no children; the KPI process stops when its parent is gone
        )

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

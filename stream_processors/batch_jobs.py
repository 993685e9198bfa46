"""`tawasul replay --jobs N`: the SLA engine in N processes by partition group, one KPI process.

The events are keyed by subject, so every ticket lives in one partition: SLA engine j (a child
process) reads the events and ticks partitions p with p % N == j, produces its outcomes and
ticket states as the single engine does, and after each flush, once the broker acknowledged
them, hands this process (the KPI process) what the KPI processor needs: the KPI input events
of the batch (JSON), its ticket states, its input offsets, and whether it is at the end of its
input. This process folds them into the one KPI aggregator (`KpiBatch`), produces the
snapshots, and only then commits the input offsets in the run's consumer group: so, as with one
process, the group has read everything only once every output is in Kafka, the last snapshots
included (they go out when every engine is at the end of its input).

The KPI book keeps only what the subjects' records imply, whatever order the engines' batches
come in, so the outputs are those of `--jobs 1`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.synchronize
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from schemas import InvalidEvent, decode_event
from schemas.ticket_state import TicketStateMessage
from stream_processors.batch_engine import Outputs, kpi_snapshots
from stream_processors.batch_runner import (
    FLUSH_EVERY_S,
    BatchJob,
    BatchRunnerError,
    Offsets,
    Producing,
    engine_producer,
    input_partitions,
    prepare_process,
    run_engine,
    snapshot_pacer,
)
from stream_processors.kpi_batch import KpiBatch
from stream_processors.kpi_config import config_from_env
from tawasul.infra.kafka_security import aiokafka_options
from tawasul.infra.settings import Settings
from tawasul.infra.topics import EVENTS, KPIS, SLA_TICKS

log = logging.getLogger(__name__)

WAIT_S = 0.2


@dataclass(frozen=True, slots=True)
class Forwarded:
    """What an SLA engine hands the KPI process after a flush."""

    kpi_events: list[bytes]
    kpi_states: list[TicketStateMessage]
    offsets: dict[tuple[str, int], int]
    at_end: bool


def _sla_main(
    job: BatchJob,
    group: int,
    conn: multiprocessing.connection.Connection,
    stop: multiprocessing.synchronize.Event,
    level: str,
) -> None:
    prepare_process(level)

    async def flushed(out: Outputs, offsets: Offsets, at_end: bool) -> None:
        moved = {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
        conn.send(Forwarded(out.kpi_events, out.kpi_states, moved, at_end))

    asyncio.run(run_engine(job, stop, group=group, flushed=flushed))


class SlaJobs:
    """The SLA engines' processes and the ends of their pipes."""

    def __init__(self, job: BatchJob, level: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.stop = context.Event()
        self.conns: list[multiprocessing.connection.Connection] = []
        self.processes = []
        for group in range(job.jobs):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=_sla_main,
                args=(job, group, send, self.stop, level),
                name=f"tawasul-replay-sla-{group}",
                daemon=True,
            )
            process.start()
            send.close()
            self.conns.append(receive)
            self.processes.append(process)

    def raise_if_dead(self) -> None:
        for process in self.processes:
            if not process.is_alive():
                raise BatchRunnerError(f"{process.name} stopped (exit code {process.exitcode})")

    def close(self, timeout_s: float = 30.0) -> None:
        self.stop.set()
        for process in self.processes:
            process.join(timeout_s)
            if process.is_alive():
                process.kill()
                process.join(5)


async def run_jobs(job: BatchJob, stop: multiprocessing.synchronize.Event) -> None:
    """The KPI process: start the SLA engines, fold what they hand over, produce the snapshots,
    commit their input offsets; until `stop` is set or the parent process is gone."""
    settings = job.settings
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
    consumer, producer = _clients(settings, job.group_id)
    outputs = Producing(producer, {"snapshots": settings.topic(KPIS.name)})
    async with contextlib.AsyncExitStack() as running:
        await producer.start()
        running.push_async_callback(producer.stop)
        await consumer.start()
        running.push_async_callback(consumer.stop)
        partitions = await input_partitions(producer, (settings.topic(EVENTS.name), settings.topic(SLA_TICKS.name)))
        consumer.assign(partitions)  # to commit the engines' offsets; never fetched
        consumer.pause(*partitions)
        jobs = SlaJobs(job, level)
        running.callback(jobs.close)
        await _fold(job, jobs, consumer, outputs, stop)


def _clients(settings: Settings, group_id: str) -> tuple[AIOKafkaConsumer, AIOKafkaProducer]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka,
        group_id=group_id,
        enable_auto_commit=False,
        client_id="tawasul-replay-kpis",
        **aiokafka_options(),
    )
    return consumer, engine_producer(settings, "tawasul-replay-kpis")


async def _fold(
    job: BatchJob,
    jobs: SlaJobs,
    consumer: AIOKafkaConsumer,
    outputs: Producing,
    stop: multiprocessing.synchronize.Event,
) -> None:
    kpi = KpiBatch(config_from_env()) if job.with_kpis else None
    pacer = snapshot_pacer(job)
    at_end = [False] * job.jobs
    parent = multiprocessing.parent_process()
    unreadable = 0
    offsets: Offsets = {}
    received, last_flush = False, time.monotonic()
    while not stop.is_set() and (parent is None or parent.is_alive()):
        jobs.raise_if_dead()
        ready = await asyncio.to_thread(multiprocessing.connection.wait, jobs.conns, WAIT_S)
        for conn in ready:
            index = jobs.conns.index(conn)  # type: ignore[arg-type]  # wait() returns the Connections given
            forwarded: Forwarded = jobs.conns[index].recv()
            at_end[index], received = forwarded.at_end, True
            for (topic, partition), offset in forwarded.offsets.items():
                offsets[TopicPartition(topic, partition)] = OffsetAndMetadata(offset, "")
            if kpi is None:
                continue
            for value in forwarded.kpi_events:
                try:
                    kpi.on_event(decode_event(value))
                except InvalidEvent:  # the engine decoded it: cannot happen
                    unreadable += 1
            for view in forwarded.kpi_states:
                kpi.on_state(view)
        # At most every FLUSH_EVERY_S (each engine flushes as often: one KPI flush per engine
        # flush would publish the pending snapshots twice as often); all of them at the end of
        # the input (every engine at its end, nothing more waiting).
        if not received or time.monotonic() - last_flush < FLUSH_EVERY_S:
            continue
        at_the_end = all(at_end) and not multiprocessing.connection.wait(jobs.conns, 0)
        if kpi is not None:
            await outputs.send(Outputs(snapshots=kpi_snapshots(kpi, pacer, force=at_the_end)))
        if offsets:
            await consumer.commit(offsets)
        offsets, received, last_flush = {}, False, time.monotonic()
    if unreadable:
        log.warning("batch: KPI input events unreadable", extra={"events": unreadable})

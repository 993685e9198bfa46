"""The database sink loop: Kafka batches -> `DbWriter` -> commit offsets, effectively once.

Offsets are committed only after the database transaction that stored the batch committed
(and Kafka confirmed the dead letters of what could not be stored, `sinks.dead_letters`),
and every write is an idempotent upsert: a batch delivered again after a crash or a
rebalance changes nothing. While the database is unreachable the sink pauses its partitions
(nothing more is read, nothing is committed), retries with capped exponential backoff and
catches up when the database is back.

Around this loop: `sinks.input_checks` (what each topic accepts), `sinks.refusals` (what is
not stored: counted, logged, dead-lettered), `sinks.sink_retry` (backoff, the schema at start)
and `sinks.sink_lag` (the lag gauge, also while the database is away).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from sinks.assigned_consumer import AssignedConsumer, open_sink_consumer
from sinks.db.engine import describe_url, is_unavailable, make_engine
from sinks.db.writer import DbWriter, FlushResult, Record
from sinks.dead_letters import DeadLetterOutbox
from sinks.input_checks import decode_clean_input, decoder_for
from sinks.refusals import UNDECODABLE, Refusals, store_around_bad_rows
from sinks.sink_lag import LAG_REFRESH_S, LagGauge
from sinks.sink_retry import DEFAULT_BACKOFF, Backoff, StopSignal, error_name, sleep_unless_stopped, wait_for_schema
from tawasul.infra.metrics import Metrics
from tawasul.infra.publisher import KafkaPublisher, PublishError
from tawasul.infra.settings import Settings
from tawasul.infra.topics import (
    DEAD_LETTER,
    EVENTS,
    KPIS,
    POLICIES,
    SLA_OUTCOMES,
    TICKET_STATE,
    TopicSpec,
    ensure_topics,
)

__all__ = ["Backoff", "SinkSummary", "SINK_TOPICS", "LAG_REFRESH_S", "decode_clean_input", "run_db_sink", "tune_gc"]

log = logging.getLogger("tawasul.sink")

SINK_TOPICS: tuple[TopicSpec, ...] = (EVENTS, SLA_OUTCOMES, TICKET_STATE, KPIS, POLICIES)
Progress = Callable[[Mapping[str, int]], None]
"""Called after each commit with the records handled so far per topic (full topic names)."""
RecordHook = Callable[[Record], object]
"""Called with each decoded record (an `EventRecord`, an outcome or KPI `Event`, a `TicketState`)
as it is read, before it is stored: e.g. to feed live Prometheus gauges."""

GC_THRESHOLDS = (100_000, 50, 100)
"""Garbage-collector thresholds for a process that runs a sink: a batch allocates tens of
thousands of short-lived rows, which the default (700, 10, 10) scans again and again (about a
tenth of the sink's CPU, `bench/bench_sink.py`). Set by `tawasul sink` (`tune_gc`)."""


def tune_gc() -> None:
    """Set `GC_THRESHOLDS` for this process (call from a command's main, never from a library)."""
    gc.set_threshold(*GC_THRESHOLDS)


@dataclass(frozen=True)
class SinkSummary:
    """What one `run_db_sink` did, returned when it stops."""

    records: Mapping[str, int] = field(default_factory=dict)
    rows: Mapping[str, int] = field(default_factory=dict)
    skipped: int = 0


class DbSink:
    """One consumer, one writer, one loop (see `run_db_sink`)."""

    def __init__(
        self,
        settings: Settings,
        consumer: KafkaConsumer | AssignedConsumer,
        writer: DbWriter,
        metrics: Metrics,
        *,
        stop: StopSignal,
        topics: Sequence[TopicSpec],
        batch_max: int,
        batch_wait_s: float,
        on_progress: Progress | None,
        backoff: Backoff,
        on_record: RecordHook | None = None,
        dead_letters: DeadLetterOutbox | None = None,
    ) -> None:
        self.consumer, self.writer, self.metrics, self.stop = consumer, writer, metrics, stop
        self.dead_letters = dead_letters
        self.refusals = Refusals(metrics, dead_letters)
        self.batch_max, self.batch_wait_s = batch_max, batch_wait_s
        self.on_progress, self.on_record, self.backoff = on_progress, on_record, backoff
        self.decoders = {settings.topic(spec.name): decoder_for(spec) for spec in topics}
        self.lag = LagGauge(consumer, metrics, {settings.topic(spec.name): spec.name for spec in topics})
        self.offsets: dict[TopicPartition, int] = {}
        self.batch_counts: dict[str, int] = {}
        self.handled: dict[str, int] = dict.fromkeys(self.decoders, 0)
        self.rows: dict[str, int] = {}
        self.database_down = False

    # reading

    def collect(self) -> int:
        """Poll until `batch_max` records or `batch_wait_s` have passed; returns records read."""
        deadline = time.monotonic() + self.batch_wait_s
        count = 0
        while count < self.batch_max and not self.stop.is_set():
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                break
            polled = self.consumer.poll(timeout_ms=min(left_ms, 200), max_records=self.batch_max - count)
            for tp, records in polled.items():
                decode = self.decoders[tp.topic]
                for message in records:
                    self._add(decode, tp, message)
                self.lag.unstored_from.setdefault(tp, records[0].offset)
                self.offsets[tp] = records[-1].offset + 1
                self.batch_counts[tp.topic] = self.batch_counts.get(tp.topic, 0) + len(records)
                count += len(records)
        return count

    def _add(self, decode: Callable[[bytes], Record], tp: TopicPartition, message: Any) -> None:
        if message.value is None:
            return  # a tombstone on a compacted topic: nothing to store
        try:
            record = decode(message.value)
            self.writer.add(record)
        except UNDECODABLE as exc:  # one message never stops us
            self.refusals.undecodable(tp.topic, tp.partition, message, exc)
            return
        if self.on_record is not None:
            self.on_record(record)

    # storing

    def store(self) -> bool:
        """Store the buffered batch, retrying while the database is down; then commit offsets.

        Returns False when asked to stop before the batch could be stored (nothing committed).
        """
        delay = self.backoff.initial
        while True:
            result: FlushResult | None = None
            try:
                result = self.writer.flush()
            except (IntegrityError, DataError):
                result = store_around_bad_rows(self.writer, self.refusals)
            except SQLAlchemyError as exc:
                self._database_failed(exc, delay)
                if not self._wait(delay):
                    return False
                self._keep_membership()
                delay = self.backoff.next(delay)
            if result is not None:
                self._stored(result)
                return True

    def _database_failed(self, exc: SQLAlchemyError, retry_in: float) -> None:
        unavailable = is_unavailable(exc)
        self.metrics.db_errors.labels(kind="unavailable" if unavailable else "error").inc()
        if unavailable:
            self.metrics.db_up.set(0)
        if not self.database_down:
            self.consumer.pause(*self.consumer.assignment())
        self.database_down = True
        log.warning(
            "database write failed; consumption paused, retrying",
            extra={
                "event": "sink_db_unavailable" if unavailable else "sink_db_error",
                "error": error_name(exc),
                "retry_in_s": retry_in,
                "pending_records": len(self.writer),
            },
        )

    def _keep_membership(self) -> None:
        """Poll while paused so the group keeps us; rewind anything a rebalance handed over."""
        self.consumer.pause(*self.consumer.assignment())
        for tp, records in self.consumer.poll(timeout_ms=0).items():
            self.consumer.seek(tp, records[0].offset)

    def _stored(self, result: FlushResult) -> None:
        self.metrics.db_up.set(1)
        if self.database_down:
            self.database_down = False
            self.consumer.resume(*self.consumer.paused())
            log.info("database reachable again; consumption resumed", extra={"event": "sink_db_recovered"})
        if result.records:
            self.metrics.sink_batch_seconds.observe(result.seconds)
        for table, count in result.rows.items():
            self.metrics.sink_rows.labels(table=table).inc(count)
            self.rows[table] = self.rows.get(table, 0) + count
        for conflict in result.conflicts:
            self.refusals.conflicting_duplicate(conflict)
        if self._confirm_dead_letters():
            self._commit()

    def _confirm_dead_letters(self) -> bool:
        """Wait until Kafka confirmed the batch's dead letters, retrying with backoff; False
        when asked to stop first (the batch's offsets are then not committed)."""
        delay = self.backoff.initial
        while self.dead_letters is not None and len(self.dead_letters):
            try:
                self.dead_letters.confirm()
            except PublishError as exc:
                log.warning(
                    "dead letters not confirmed by Kafka; offsets held, retrying",
                    extra={
                        "event": "sink_dead_letters_unconfirmed",
                        "error": str(exc)[:300],
                        "letters": len(self.dead_letters),
                        "retry_in_s": delay,
                    },
                )
                if not self._wait(delay):
                    return False
                delay = self.backoff.next(delay)
        return True

    def _commit(self) -> None:
        owned = self.consumer.assignment()
        offsets = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in self.offsets.items() if tp in owned}
        try:
            if offsets:
                self.consumer.commit(offsets)
        except KafkaError as exc:  # CommitFailedError after a rebalance, or the broker went away
            log.warning(
                "offset commit failed (a rebalance?); the records will be read again, harmlessly",
                extra={"event": "sink_commit_failed", "error": type(exc).__name__},
            )
        for topic, count in self.batch_counts.items():
            self.handled[topic] = self.handled.get(topic, 0) + count
        self.offsets.clear()
        self.lag.unstored_from.clear()
        self.batch_counts.clear()
        self.lag.after_commit()
        if self.on_progress is not None:
            self.on_progress(dict(self.handled))

    def _wait(self, seconds: float) -> bool:
        """`sleep_unless_stopped` that keeps refreshing the lag gauge meanwhile; False as soon as asked to stop."""
        deadline = time.monotonic() + seconds
        while True:
            self.lag.refresh_when_due()
            left = deadline - time.monotonic()
            if left <= 0:
                return not self.stop.is_set()
            if not sleep_unless_stopped(self.stop, min(left, max(self.lag.due - time.monotonic(), 0.05))):
                return False

    def run(self) -> None:
        while not self.stop.is_set():
            read = self.collect()
            self.lag.refresh_when_due()
            if read == 0 and not len(self.writer) and not self.offsets:
                continue
            if not self.store():
                return
        if len(self.writer) or self.offsets:
            self._final_flush()

    def _final_flush(self) -> None:
        """On stop: one attempt to store what was read (no retries); uncommitted otherwise."""
        try:
            result = self.writer.flush()
        except SQLAlchemyError as exc:
            log.warning(
                "stopping with an unstored batch; it will be read again on restart",
                extra={"event": "sink_stop_unstored", "error": error_name(exc)},
            )
            return
        self._stored(result)


def run_db_sink(
    settings: Settings,
    *,
    stop: StopSignal,
    metrics: Metrics,
    group_id: str = "tawasul-sink",
    topics: Sequence[TopicSpec] = SINK_TOPICS,
    batch_max: int = 5000,
    batch_wait_s: float = 0.5,
    on_progress: Progress | None = None,
    on_record: RecordHook | None = None,
    on_start: Callable[[Engine], object] | None = None,
    backoff: Backoff = DEFAULT_BACKOFF,
    assign: bool = False,
) -> SinkSummary:
    """Consume the pipeline's topics into the database until `stop` is set.

    With `assign` the consumer takes every partition itself instead of joining the group's
    rebalances (offsets are still committed to `group_id`): for a single sink of a replay,
    which needs no group membership, heartbeats or rebalance pauses. It then reads through
    aiokafka (`AssignedConsumer`), which decodes records in compiled code.

    Migrates the schema first (raises `migrate.DatabaseTooNew` when the database is newer
    than this code), creates missing topics, then loops: read up to `batch_max` records or
    for `batch_wait_s`, store them in one transaction, commit their offsets. `on_progress` and
    `on_record` are called in the sink's thread; `on_start(engine)` once the schema is current.
    """
    if not wait_for_schema(settings.database_url, stop, metrics, backoff):
        return SinkSummary()
    ensure_topics(settings.kafka, settings.topic_prefix, (*topics, DEAD_LETTER))
    engine = make_engine(settings.database_url)
    if on_start is not None:
        on_start(engine)
    names = [settings.topic(spec.name) for spec in topics]
    dead_letters = DeadLetterOutbox(KafkaPublisher(settings, client_id=f"{group_id}-deadletter", metrics=metrics))
    consumer: KafkaConsumer | AssignedConsumer | None = None
    try:
        consumer = open_sink_consumer(settings.kafka, names, group_id=group_id, batch_max=batch_max, assign=assign)
        sink = DbSink(
            settings,
            consumer,
            DbWriter(engine),
            metrics,
            stop=stop,
            topics=topics,
            batch_max=batch_max,
            batch_wait_s=batch_wait_s,
            on_progress=on_progress,
            backoff=backoff,
            on_record=on_record,
            dead_letters=dead_letters,
        )
        log.info(
            "database sink started",
            extra={
                "event": "sink_started",
                "group": group_id,
                "topics": sorted(sink.decoders),
                "database": describe_url(settings.database_url),
            },
        )
        sink.run()
    finally:
        if consumer is not None:
            consumer.close(autocommit=False)
        engine.dispose()
        try:
            dead_letters.close()
        except PublishError as exc:  # their messages were not committed: read again on restart
            log.warning(
                "dead letters unconfirmed at stop",
                extra={"event": "sink_dead_letters_unconfirmed", "error": str(exc)[:300]},
            )
    skipped = sink.refusals.skipped
    log.info("database sink stopped", extra={"event": "sink_stopped", "skipped": skipped})
    return SinkSummary(records=dict(sink.handled), rows=dict(sink.rows), skipped=skipped)

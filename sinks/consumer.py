"""The database sink loop: Kafka batches -> `DbWriter` -> commit offsets, effectively once.

Offsets are committed only after the database transaction that stored the batch committed
(and Kafka confirmed the dead letters of what could not be stored, `sinks.dead_letters`),
and every write is an idempotent upsert: a batch delivered again after a crash or a
rebalance changes nothing. While the database is unreachable the sink pauses its partitions
(nothing more is read, nothing is committed), retries with capped exponential backoff and
catches up when the database is back.

Its lag gauge (`tawasul_consumer_lag_messages`: per topic, the messages it has not stored yet)
is set after each stored batch and refreshed every `LAG_REFRESH_S` seconds besides, from the
broker's end offsets, also while it waits for its database: an outage shows as growing lag.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from schemas import (
    CHANNELS,
    KINDS,
    MAX_EVENT_BYTES,
    PRIORITIES,
    FieldError,
    InvalidEvent,
    dataschema_uri,
    parse_event,
)
from schemas.errors import WHOLE_EVENT
from sinks.assigned_consumer import AssignedConsumer
from sinks.db import migrate
from sinks.db.decoding import decode_input, decode_pipeline_event, decode_ticket_state
from sinks.db.engine import describe_url, is_unavailable, make_engine
from sinks.db.policy_books import decode_policy_book
from sinks.db.records import BadRecord, EventRecord
from sinks.db.writer import Conflict, DbWriter, FlushResult, Record
from sinks.dead_letters import DeadLetterOutbox, message_origin, record_bytes, record_origin
from tawasul.infra.kafka_security import kafka_python_options
from tawasul.infra.metrics import Metrics
from tawasul.infra.privacy import might_hold_personal_data, personal_data_fields, redact_text
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
    assignable_partitions,
    ensure_topics,
)

log = logging.getLogger("tawasul.sink")

SINK_TOPICS: tuple[TopicSpec, ...] = (EVENTS, SLA_OUTCOMES, TICKET_STATE, KPIS, POLICIES)
Progress = Callable[[Mapping[str, int]], None]
"""Called after each commit with the records handled so far per topic (full topic names)."""
RecordHook = Callable[[Record], object]
"""Called with each decoded record (an `EventRecord`, an outcome or KPI `Event`, a `TicketState`)
as it is read, before it is stored: e.g. to feed live Prometheus gauges."""
StopSignal = threading.Event | asyncio.Event
LAG_REFRESH_S = 2.0
"""Seconds between refreshes of the lag gauge from the broker's end offsets (idle, busy or retrying)."""


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff between database retries, in seconds."""

    initial: float = 0.5
    maximum: float = 10.0
    factor: float = 2.0

    def next(self, delay: float) -> float:
        return min(delay * self.factor, self.maximum)


@dataclass(frozen=True)
class SinkSummary:
    """What one `run_db_sink` did, returned when it stops."""

    records: Mapping[str, int] = field(default_factory=dict)
    rows: Mapping[str, int] = field(default_factory=dict)
    skipped: int = 0


_UNCHECKED_BY_FAST_PATH = ("ticket.",)
"""Input types whose `data` the sink's fast decoder does not check (it copies none of it)."""
_CHANNELS, _KINDS, _PRIORITIES = frozenset(CHANNELS), frozenset(KINDS), frozenset(PRIORITIES)


def _one_of(value: object, allowed: frozenset[str]) -> bool:
    return isinstance(value, str) and value in allowed


def _name(value: object, optional: bool = False) -> bool:
    return (optional and value is None) or (isinstance(value, str) and not value.isspace() and value != "")


def _ticket_data_fits(kind: str, data: Mapping[str, Any]) -> bool:
    """True when a ticket event's `data` (version 1) has the fields the contract requires, of
    their types, without the cost of the full validation; False leaves it to `parse_event`."""
    get = data.get
    if kind == "ticket.opened":
        location = get("location")
        return (
            _one_of(get("channel"), _CHANNELS)
            and _one_of(get("kind"), _KINDS)
            and _one_of(get("priority"), _PRIORITIES)
            and _name(get("category"))
            and _name(get("department"), True)
            and _name(get("customer_ref"), True)
            and (
                location is None
                or (
                    isinstance(location, dict)
                    and _name(location.get("mosque_id"), True)
                    and _name(location.get("area"), True)
                )
            )
        )
    if kind == "ticket.assigned":
        return _name(get("team"), True) and _name(get("agent"), True)
    if kind == "ticket.paused":
        return _name(get("reason"))
    if kind == "ticket.priority_changed":
        return _one_of(get("priority"), _PRIORITIES)
    if kind == "ticket.resolved":
        return get("resolution") is None or isinstance(get("resolution"), str)
    return True


def decode_clean_input(raw: bytes) -> EventRecord:
    """A valid input event within intake's size limit that holds no personal data
    (`decode_input` and then the checks of intake): an event written straight to the topic,
    past intake, that breaks the contract, is larger than `MAX_EVENT_BYTES` or holds a phone
    number, e-mail address or Emirates ID is refused with `InvalidEvent` naming the problem,
    never stored."""
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent((FieldError(WHOLE_EVENT, f"too large: {len(raw)} bytes (limit {MAX_EVENT_BYTES})"),))
    record = decode_input(raw)
    if record.type.startswith(_UNCHECKED_BY_FAST_PATH) and not (
        _ticket_data_fits(record.type, record.data)
        and ('"dataschema"' not in record.payload or dataschema_uri(record.type) in record.payload)
    ):
        parse_event(json.loads(record.payload))  # raises InvalidEvent naming what is wrong
    if might_hold_personal_data(raw):
        found = personal_data_fields(json.loads(record.payload))
        if found:
            raise InvalidEvent(
                FieldError(path, f"holds {kind} (personal data is redacted at intake; this event did not pass it)")
                for path, kind in found
            )
    return record


def _decoder(spec: TopicSpec) -> Callable[[bytes], Record]:
    if spec.name == TICKET_STATE.name:
        return decode_ticket_state
    if spec.name == EVENTS.name:
        return decode_clean_input
    if spec.name == POLICIES.name:
        return decode_policy_book
    return decode_pipeline_event


def _error_name(exc: BaseException) -> str:
    """The driver's error class name (safe to log: no SQL, no values)."""
    original = getattr(exc, "orig", None)
    return type(original if original is not None else exc).__name__


def _sleep(stop: StopSignal, seconds: float) -> bool:
    """Sleep up to `seconds`; False as soon as `stop` is set."""
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(left, 0.1))
    return False


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
        self.batch_max, self.batch_wait_s = batch_max, batch_wait_s
        self.on_progress, self.on_record, self.backoff = on_progress, on_record, backoff
        self.decoders = {settings.topic(spec.name): _decoder(spec) for spec in topics}
        self.base_names = {settings.topic(spec.name): spec.name for spec in topics}
        self.offsets: dict[TopicPartition, int] = {}
        self.unstored_from: dict[TopicPartition, int] = {}
        """The first offset read but not yet stored, per partition of the buffered batch."""
        self.lag_due = 0.0
        self.batch_counts: dict[str, int] = {}
        self.handled: dict[str, int] = dict.fromkeys(self.decoders, 0)
        self.rows: dict[str, int] = {}
        self.skipped = 0
        self.conflicts = 0
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
                self.unstored_from.setdefault(tp, records[0].offset)
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
        except (InvalidEvent, ValueError, ArithmeticError, KeyError, TypeError) as exc:  # one message never stops us
            self.skipped += 1
            self.metrics.events_rejected.labels(source_kind="sink", reason="undecodable").inc()
            reason = redact_text(str(exc)) if isinstance(exc, InvalidEvent | BadRecord) else type(exc).__name__
            log.warning(
                "skipped a message the sink cannot decode; dead-lettered",
                extra={
                    "event": "sink_undecodable",
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "offset": message.offset,
                    "reason": reason,
                },
            )
            if self.dead_letters is not None:
                self.dead_letters.add(message.value, reason, message_origin(tp.topic, tp.partition, message.offset))
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
                result = self._store_one_by_one()
            except SQLAlchemyError as exc:
                self._database_failed(exc, delay)
                if not self._wait(delay):
                    return False
                self._keep_membership()
                delay = self.backoff.next(delay)
            if result is not None:
                self._stored(result)
                return True

    def _store_one_by_one(self) -> FlushResult | None:
        """After a batch failed on a bad row: store it in halves, down to the records that fail alone.

        Those are skipped and counted; everything else is stored. Returns None when the
        database became unreachable meanwhile (what is not stored yet stays buffered).
        """
        groups = [self.writer.take()]
        records, rows, conflicts = 0, dict[str, int](), list[Conflict]()
        while groups:
            group = groups.pop()
            for record in group:
                self.writer.add(record)
            try:
                part = self.writer.flush()
            except (IntegrityError, DataError) as exc:
                self.writer.take()
                if len(group) > 1:
                    middle = len(group) // 2
                    groups += [group[middle:], group[:middle]]
                    continue
                self.skipped += 1
                self.metrics.db_errors.labels(kind="rejected_row").inc()
                log.error(
                    "the database rejected a record; skipped and dead-lettered",
                    extra={"event": "sink_row_rejected", "record": type(group[0]).__name__, "error": _error_name(exc)},
                )
                if self.dead_letters is not None:
                    self.dead_letters.add(
                        record_bytes(group[0]), f"the database refused it: {_error_name(exc)}", record_origin(group[0])
                    )
                continue
            except SQLAlchemyError:
                for rest in reversed(groups):
                    for record in rest:
                        self.writer.add(record)
                return None
            records += part.records
            conflicts += part.conflicts
            for table, count in part.rows.items():
                rows[table] = rows.get(table, 0) + count
        return FlushResult(records=records, rows=rows, conflicts=tuple(conflicts))

    def _conflicting_duplicate(self, conflict: Conflict) -> None:
        """An event id stored before with other content: counted, logged and dead-lettered."""
        self.conflicts += 1
        self.metrics.conflicting_duplicates.labels(stage="sink").inc()
        log.warning(
            "an event id was already stored with other content; dead-lettered",
            extra={
                "event": "sink_conflicting_duplicate",
                "id": redact_text(conflict.record.id)[:200],
                "stored_sha256": conflict.stored_digest,
                "sha256": conflict.digest,
            },
        )
        if self.dead_letters is not None:
            self.dead_letters.add(record_bytes(conflict.record), conflict.reason, record_origin(conflict.record))

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
                "error": _error_name(exc),
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
            self._conflicting_duplicate(conflict)
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
        self.unstored_from.clear()
        self.batch_counts.clear()
        self._report_lag(self._highwaters())
        if self.on_progress is not None:
            self.on_progress(dict(self.handled))

    def _highwaters(self) -> dict[TopicPartition, int | None]:
        """The end offsets the consumer's last fetches saw (no request; stale while paused)."""
        return {tp: self.consumer.highwater(tp) for tp in self.consumer.assignment()}

    def _report_lag(self, ends: Mapping[TopicPartition, int | None]) -> None:
        """Set the lag gauge per topic: end offset minus the first offset not stored yet (the
        buffered batch's first offset while a batch waits for the database, else the position)."""
        lag: dict[str, int] = {}
        for tp, high in ends.items():
            if high is None:
                continue
            start = self.unstored_from.get(tp)
            if start is None:
                start = self.consumer.position(tp, timeout_ms=1000) or 0
            name = self.base_names.get(tp.topic, tp.topic)
            lag[name] = lag.get(name, 0) + max(high - start, 0)
        for name, value in lag.items():
            self.metrics.consumer_lag.labels(stage="sink", topic=name).set(value)
        self.lag_due = time.monotonic() + LAG_REFRESH_S

    def _refresh_lag_when_due(self) -> None:
        """Every `LAG_REFRESH_S`: the lag from the broker's end offsets (one request for every
        partition), so the gauge moves while nothing is stored (idle, or the database away)."""
        if time.monotonic() < self.lag_due:
            return
        self.lag_due = time.monotonic() + LAG_REFRESH_S
        owned = list(self.consumer.assignment())
        if not owned:
            return
        try:
            ends = self.consumer.end_offsets(owned, timeout_ms=1000)
        except KafkaError as exc:  # the broker is away too: the next refresh tries again
            log.debug(
                "end offsets unavailable; lag not refreshed",
                extra={"event": "sink_lag_unavailable", "error": type(exc).__name__},
            )
            return
        self._report_lag(ends)

    def _wait(self, seconds: float) -> bool:
        """`_sleep` that keeps refreshing the lag gauge meanwhile; False as soon as asked to stop."""
        deadline = time.monotonic() + seconds
        while True:
            self._refresh_lag_when_due()
            left = deadline - time.monotonic()
            if left <= 0:
                return not self.stop.is_set()
            if not _sleep(self.stop, min(left, max(self.lag_due - time.monotonic(), 0.05))):
                return False

    def run(self) -> None:
        while not self.stop.is_set():
            read = self.collect()
            self._refresh_lag_when_due()
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
                extra={"event": "sink_stop_unstored", "error": _error_name(exc)},
            )
            return
        self._stored(result)


def _wait_for_schema(url: str, stop: StopSignal, metrics: Metrics, backoff: Backoff) -> bool:
    """Migrate the database to this code's schema, waiting while it is unreachable."""
    delay = backoff.initial
    while not stop.is_set():
        try:
            state = migrate.upgrade(url)
        except SQLAlchemyError as exc:
            if not is_unavailable(exc):
                raise
            metrics.db_up.set(0)
            metrics.db_errors.labels(kind="unavailable").inc()
            log.warning(
                "database unreachable at start; retrying",
                extra={"event": "sink_db_unavailable", "database": describe_url(url), "retry_in_s": delay},
            )
            if not _sleep(stop, delay):
                return False
            delay = backoff.next(delay)
            continue
        metrics.db_up.set(1)
        log.info(
            "database schema ready",
            extra={"event": "sink_schema_ready", "database": describe_url(url), "revision": state.current},
        )
        return True
    return False


def _every_partition(settings: Settings, topics: list[str]) -> list[TopicPartition]:
    """Every partition of `topics`, once the metadata knows them all."""
    probe = KafkaConsumer(bootstrap_servers=settings.kafka, client_id="tawasul-sink-metadata", **kafka_python_options())
    try:
        return assignable_partitions(probe, topics)
    finally:
        probe.close()


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
    backoff: Backoff = Backoff(),
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
    if not _wait_for_schema(settings.database_url, stop, metrics, backoff):
        return SinkSummary()
    ensure_topics(settings.kafka, settings.topic_prefix, (*topics, DEAD_LETTER))
    engine = make_engine(settings.database_url)
    if on_start is not None:
        on_start(engine)
    names = [settings.topic(spec.name) for spec in topics]
    dead_letters = DeadLetterOutbox(KafkaPublisher(settings, client_id=f"{group_id}-deadletter", metrics=metrics))
    consumer: KafkaConsumer | AssignedConsumer | None = None
    try:
        if assign:
            consumer = AssignedConsumer(
                settings.kafka, _every_partition(settings, names), group_id=group_id, client_id=f"{group_id}-db"
            )
        else:
            consumer = KafkaConsumer(
                *names,
                bootstrap_servers=settings.kafka,
                group_id=group_id,
                client_id=f"{group_id}-db",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
                max_poll_records=batch_max,
                **kafka_python_options(),
            )
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
    log.info("database sink stopped", extra={"event": "sink_stopped", "skipped": sink.skipped})
    return SinkSummary(records=dict(sink.handled), rows=dict(sink.rows), skipped=sink.skipped)

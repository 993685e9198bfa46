"""The KPI processor: satisfaction, contact-centre, walk-in and backlog figures as `kpi.snapshot`s.

Three agents and a publisher task (`register_kpis` adds them to the app of `build_app`):

* `tawasul-kpi-events` reads `tawasul.events` and forwards the KPI event types (calls, visits,
  surveys, `ticket.opened`) unchanged to the internal one-partition topic `tawasul.kpis.input`,
  in batches (a JSON array of the events as they came, up to 200 or 20 ms); `tawasul-kpi-states`
  forwards `tawasul.tickets.state` there too. A header (`tawasul-kind`: `event` | `ticket-state`)
  tells the batches apart. Batching keeps the second hop cheap: one Kafka message per batch.
* `tawasul-kpi` (concurrency 1) reads `tawasul.kpis.input`, folds each item into the record of
  its subject in the table `kpi-subjects` (key = subject, changelog-backed) and into the
  in-memory `KpiBook`; both are rebuilt from the table after every recovery.
* the publisher wakes every 20 ms and publishes, for the scopes that changed, the figures whose
  value or count changed to the compacted `tawasul.kpis` topic: at most once per second per
  key, and live at most every 5 s for the slow-moving ones (see `plans`); pending ones go out
  on shutdown, and at the end of a replay (`settle`), which wait for Kafka's confirmation. When
  Kafka refuses a batch, every figure is published again.

Records are idempotent facts (a re-delivered event changes nothing), so the at-least-once
delivery of faust never counts an event twice, and a restart rebuilds exactly the same figures.
The clock is the wall clock live, and the latest event time seen in replay. Why one partition:
docs/kpis.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from faust.types import TP, EventT

from schemas import InvalidEvent, parse_event
from stream_processors.clock import WallClock
from stream_processors.context import ProcessorContext
from stream_processors.poison import PoisonOutbox
from stream_processors.snapshots import (
    MIN_INTERVAL_S,
    SLOW_INTERVAL_S,
    SnapshotPacer,
    plans,
    snapshot_event,
    snapshot_messages,
)
from tawasul.domain.kpi_state import (
    KPI_EVENT_TYPES,
    KpiBook,
    KpiConfig,
    KpiStateError,
    Row,
    SubjectRecord,
    apply,
    apply_ticket_state,
    rebuild,
)
from tawasul.infra.kafka_security import aiokafka_options
from tawasul.infra.settings import Settings
from tawasul.infra.topics import KPI_INPUT, KPIS, TICKET_STATE, ensure_topics

log = logging.getLogger(__name__)

TABLE_NAME = "kpi-subjects"
KIND_HEADER = "tawasul-kind"
EVENT, STATE = b"event", b"ticket-state"
TICK_S = 0.02
BATCH_BYTES = 512 * 1024
"""Largest batch of snapshots sent at once (below the broker's 1 MB message limit)."""
PUBLISH_RETRY_S = 1.0
"""Pause of the publisher after a failed publication (which it repeats in full)."""
BATCH_MAX = 200
BATCH_WITHIN_S = 0.02
ENV_THRESHOLDS = "TAWASUL_KPI_THRESHOLDS"
CHANGELOG_CONFIG = {"segment.ms": str(10 * 60 * 1000), "min.cleanable.dirty.ratio": "0.2"}


class KpiConfigError(ValueError):
    """A KPI setting from the environment could not be read."""


def config_from_env(environ: Mapping[str, str] | None = None) -> KpiConfig:
    """`KpiConfig` with per-queue thresholds from `TAWASUL_KPI_THRESHOLDS`, e.g. `general=20,zakat=30`."""
    text = (os.environ if environ is None else environ).get(ENV_THRESHOLDS, "").strip()
    thresholds: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        queue, _, seconds = item.partition("=")
        if not queue.strip() or not seconds.strip().isdigit():
            raise KpiConfigError(f"{ENV_THRESHOLDS}: expected queue=seconds[,queue=seconds...], e.g. general=20")
        thresholds[queue.strip()] = int(seconds)
    return KpiConfig(thresholds=thresholds)


def _kind(headers: Any) -> bytes:
    items: Iterable[tuple[str, bytes]] = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, value in items:
        if name == KIND_HEADER:
            return bytes(value)
    return EVENT


def encode_record(record: SubjectRecord) -> bytes:
    return json.dumps(record.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()


def decode_record(value: bytes | None) -> SubjectRecord | None:
    if value is None:
        return None
    try:
        return SubjectRecord.from_dict(json.loads(value))
    except (ValueError, TypeError, KpiStateError):
        log.warning("kpi: unreadable table value ignored")
        return None


def pack(values: Iterable[bytes]) -> bytes:
    """Several JSON objects (events or ticket states, as received) as one JSON array."""
    return b"[" + b",".join(values) + b"]"


class KpiSettleError(RuntimeError):
    """A replay's KPI figures could not be published in full."""


class KpiProcessor:
    """The KPI agents, their table, the book of figures and the snapshot publisher."""

    def __init__(
        self,
        app: faust.App,
        ctx: ProcessorContext,
        config: KpiConfig,
        *,
        min_interval_s: float = MIN_INTERVAL_S,
        slow_interval_s: float = SLOW_INTERVAL_S,
        tick_s: float = TICK_S,
    ) -> None:
        self.app, self.ctx, self.config = app, ctx, config
        self.replay = ctx.mode == "replay"
        self.tick_s = tick_s
        self.wall = WallClock()
        self.book = KpiBook(config, 0 if self.replay else self.wall.now_us())
        self.records: dict[str, SubjectRecord] = {}
        """The table's records, decoded (rebuilt from the table after every recovery)."""
        self._owned_once = False
        self.poison = PoisonOutbox(app, ctx, "kpi")
        self._poisoned: list[tuple[Any, Exception]] = []
        """Items of the batch being processed whose processing raised (sent as dead letters)."""
        settings = ctx.settings
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.input_name = settings.topic(KPI_INPUT.name)
        self.input = app.topic(self.input_name, partitions=KPI_INPUT.partitions, **raw)
        self.states = app.topic(settings.topic(TICKET_STATE.name), partitions=TICKET_STATE.partitions, **raw)
        self.publisher = SnapshotPublisher(
            settings,
            settings.topic(KPIS.name),
            SnapshotPacer(min_interval_s=min_interval_s, slow_interval_s=slow_interval_s),
        )
        self.table = app.Table(
            TABLE_NAME,
            key_type=bytes,
            value_type=bytes,
            partitions=KPI_INPUT.partitions,
            extra_topic_configs=CHANGELOG_CONFIG,
            help="KPI facts per call, visit, ticket and survey subject (key = subject)",
        )
        self.table.on_recover(self._on_recover)
        app.agent(ctx.events, name="tawasul-kpi-events", concurrency=1)(self._forward_events)
        app.agent(self.states, name="tawasul-kpi-states", concurrency=1)(self._forward_states)
        app.agent(self.input, name="tawasul-kpi", concurrency=1)(self._aggregate)
        app.task(self._publisher)
        app.on_before_shutdown.connect(self._on_shutdown)

    # -- forwarders -------------------------------------------------------------------------

    async def _forward_events(self, stream: faust.StreamT) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            wanted = []
            for event in events:
                value = event.message.value
                try:
                    kind = json.loads(value).get("type")
                except (ValueError, TypeError, AttributeError):
                    continue  # the SLA agent reports unreadable input; it changes no figure
                if kind in KPI_EVENT_TYPES:
                    wanted.append(bytes(value))
            if wanted:
                await self.input.send(key=b"events", value=pack(wanted), headers=[(KIND_HEADER, EVENT)])

    async def _forward_states(self, stream: faust.StreamT) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            states = [bytes(e.message.value) for e in events if e.message.value is not None]
            if states:
                await self.input.send(key=b"states", value=pack(states), headers=[(KIND_HEADER, STATE)])

    # -- the aggregator ---------------------------------------------------------------------

    async def _aggregate(self, stream: faust.StreamT) -> None:
        async for event in stream.events():
            self._poisoned = []
            self._on_batch(event)
            message = event.message
            for item, exc in self._poisoned:  # a poison item never stops the partition
                original = json.dumps(item, ensure_ascii=False, default=str).encode("utf-8", "backslashreplace")
                await self.poison.send(original, exc, f"{message.topic}:{message.partition}:{message.offset}")

    def _on_batch(self, event: EventT) -> None:
        message = event.message
        try:
            items = json.loads(message.value) if message.value is not None else []
        except ValueError:
            items = None
        if not isinstance(items, list):
            log.warning("kpi: unreadable input batch skipped")
            return
        states = _kind(message.headers) == STATE
        for item in items:
            self._on_item(item, states)
        self.ctx.metrics.processing_delay.labels(stage="kpi").observe(max(0.0, time.time() - message.timestamp))
        for subject in self.book.expired():
            self.records.pop(subject, None)
            gone = subject.encode()
            if gone in self.table:
                del self.table[gone]
            self.book.update(subject, None)

    def _on_item(self, item: Any, is_state: bool) -> None:
        try:
            if is_state:
                if not isinstance(item, Mapping):
                    raise KpiStateError("ticket state: not an object")
                old = self.records.get(str(item.get("ticket_id")))
                new: SubjectRecord | None = apply_ticket_state(old, item)
            else:
                ev = parse_event(item)
                old = self.records.get(ev.subject)
                if not self.replay:
                    self.book.advance(self.wall.now_us(), self._lookup)
                new = apply(old, ev)
        except (InvalidEvent, KpiStateError) as exc:
            log.warning("kpi: unreadable input skipped", extra={"reason": str(exc)[:200]})
            return
        except Exception as exc:  # noqa: BLE001 - a poison item goes to the dead letters (`_aggregate`)
            self._poisoned.append((item, exc))
            return
        if new is None or new is old:
            return
        try:
            if self.replay:
                self.book.advance(new.seen_us, self._lookup)
            encoded = encode_record(new)
            self.book.update(new.subject, new)
        except Exception as exc:  # noqa: BLE001  # any failure of one item is a poison item, not a stop
            self._poisoned.append((item, exc))
            return
        self.records[new.subject] = new
        self.table[new.subject.encode()] = encoded

    def _lookup(self, subject: str) -> SubjectRecord | None:
        return self.records.get(subject)

    async def _on_recover(self) -> None:
        """After every rebalance: rebuild the book from the table (empty when not owned)."""
        records: list[SubjectRecord] = []
        for index, value in enumerate(self.table.values()):
            record = decode_record(value)
            if record is not None:
                records.append(record)
            if index % 2000 == 1999:
                await asyncio.sleep(0)
        self.records = {r.subject: r for r in records}
        self.book = rebuild(self.config, records, None if self.replay else self.wall.now_us())
        self.book.now_dirty = True
        self.publisher.pacer.reset(self.book.scopes())
        log.info("kpi: figures rebuilt", extra={"subjects": len(records)})

    # -- the publisher ----------------------------------------------------------------------

    def owned(self) -> bool:
        """True while this worker holds the (recovered) aggregator partition."""
        app = self.app
        if app.rebalancing or not app.tables.actives_ready:
            return False
        return TP(self.input_name, 0) in app.assignor.assigned_actives()

    async def _publisher(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            if not self.owned():
                continue
            self._owned_once = True
            try:
                await self.publish_due()
            except Exception:  # noqa: BLE001 - keep publishing: everything goes out again a second later
                log.exception("kpi: publishing snapshots failed")
                await asyncio.sleep(PUBLISH_RETRY_S)

    async def _on_shutdown(self, sender: object = None, **_: Any) -> None:
        try:
            if self._owned_once:
                await self.publish_due(force=True)
        finally:
            await self.publisher.stop()

    async def publish_due(self, *, force: bool = False) -> int:
        """Publish the changed figures that are due (all of them with `force`); returns how many."""
        if not self.replay:
            self.book.advance(self.wall.now_us(), self._lookup)
        return await self.publisher.publish_due(self.book, force=force)

    async def settle(self, timeout_s: float) -> int:
        """Replay, once the input is drained: publish every pending figure now and return when
        Kafka holds them (and whatever the publisher task was sending). A replay that ended on a
        quiet moment alone could store stale figures if this worker did not hold the aggregator
        partition then; it fails here instead."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout_s
        while not self.owned():
            if loop.time() > give_up:
                raise KpiSettleError(f"the KPI aggregator's partition was not held and recovered within {timeout_s} s")
            await asyncio.sleep(self.tick_s)
        self._owned_once = True
        return await asyncio.wait_for(self.publish_due(force=True), max(1.0, give_up - loop.time()))


class SnapshotPublisher:
    """Sends the figures its `SnapshotPacer` lets through, in producer batches.

    Snapshots go through a producer of their own (aiokafka batches: one future per batch
    instead of one per message); they are derived data, republished after a restart, so they
    need no tie to the input offsets.
    """

    def __init__(self, settings: Settings, topic: str, pacer: SnapshotPacer) -> None:
        self.settings, self.topic, self.pacer = settings, topic, pacer
        self._producer: AIOKafkaProducer | None = None
        self._sending = asyncio.Lock()
        """One publication at a time: a forced one (shutdown, a replay's end) waits for the one in flight."""
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._refused: BaseException | None = None
        """Why Kafka refused a batch since the last publication (then every figure goes out again)."""

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()  # sends what is buffered first

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.settings.kafka,
                linger_ms=0,
                max_batch_size=BATCH_BYTES,
                client_id="tawasul-kpi-snapshots",
                acks="all",
                **aiokafka_options(),
            )
            await producer.start()
            self._producer = producer
        return self._producer

    async def publish_due(self, book: KpiBook, *, force: bool = False) -> int:
        """Send the rows the pacer lets through; with `force`, every pending row, and return only
        once Kafka confirmed everything sent so far (raising why it refused any of it).

        The pacer takes rows as published when they are handed to the producer. So when Kafka
        refuses a batch, every figure is published again by the next call: a figure that does
        not change again would otherwise stay unsent. Delivery is confirmed in the background
        between forced calls, so waiting for acknowledgements never delays the next changes."""
        async with self._sending:
            if self._refused is not None:
                self._refused = None
                self._retake_all(book)
            changed = self.pacer.changed_rows(book, force=force)
            if changed:
                try:
                    await self._send(changed, book.as_of_us)
                except BaseException:
                    self._retake_all(book)
                    raise
            if force:
                await self._confirmed()
            return len(changed)

    def _retake_all(self, book: KpiBook) -> None:
        self.pacer.reset(book.scopes())
        book.now_dirty = True

    async def _confirmed(self) -> None:
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)
        if self._refused is not None:
            raise self._refused  # kept: the next call publishes everything again

    def _delivered(self, delivery: asyncio.Future[Any]) -> None:
        self._in_flight.discard(delivery)
        problem = asyncio.CancelledError() if delivery.cancelled() else delivery.exception()
        if problem is not None and self._refused is None:
            self._refused = problem
            log.warning(
                "kpi: Kafka refused a snapshot batch; every figure will be published again",
                extra={"error": repr(problem)[:200]},
            )

    async def _send(self, rows: list[Row], as_of_us: int) -> None:
        producer = await self._ensure_producer()
        batch = producer.create_batch()
        for key, value in snapshot_messages(rows, as_of_us):
            if batch.append(key=key, value=value, timestamp=None) is None:
                self._track(await producer.send_batch(batch, self.topic, partition=0))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        self._track(await producer.send_batch(batch, self.topic, partition=0))

    def _track(self, delivery: asyncio.Future[Any]) -> None:
        self._in_flight.add(delivery)
        delivery.add_done_callback(self._delivered)


def register_kpis(app: faust.App, ctx: ProcessorContext) -> KpiProcessor:
    """Add the KPI processor to the app (a registrar for `build_app(extra_registrars=...)`).

    Creates the internal topic `tawasul.kpis.input` (with the run's prefix) when missing.
    """
    ensure_topics(ctx.settings.kafka, ctx.settings.topic_prefix, specs=(KPI_INPUT,))
    # In replay every key keeps the 1 s pace: the figures of a replay-mode worker are current within
    # a second of its input's end (`tawasul replay` also forces the pending ones out, `settle`).
    slow = MIN_INTERVAL_S if ctx.mode == "replay" else SLOW_INTERVAL_S
    return KpiProcessor(app, ctx, config_from_env(), slow_interval_s=slow)


__all__ = [
    "KPI_INPUT",
    "KpiConfigError",
    "KpiProcessor",
    "KpiSettleError",
    "SnapshotPacer",
    "SnapshotPublisher",
    "config_from_env",
    "decode_record",
    "encode_record",
    "plans",
    "register_kpis",
    "snapshot_event",
]

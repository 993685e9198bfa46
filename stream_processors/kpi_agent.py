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
import time
from typing import Any

import faust
from faust.types import TP, EventT

from stream_processors.clock import WallClock
from stream_processors.context import ProcessorContext
from stream_processors.kpi_config import ENV_THRESHOLDS, KpiConfigError, config_from_env
from stream_processors.kpi_input import (
    EVENT,
    KIND_HEADER,
    STATE,
    Poisoned,
    TableStore,
    batch_kind,
    decode_record,
    encode_record,
    fold_batch,
    pack,
)
from stream_processors.poison import PoisonOutbox
from stream_processors.snapshot_publisher import BATCH_BYTES, SnapshotPublisher
from stream_processors.snapshots import (
    MIN_INTERVAL_S,
    SLOW_INTERVAL_S,
    SnapshotPacer,
    plans,
    snapshot_event,
)
from tawasul.domain.kpi_book import KpiBook, rebuild
from tawasul.domain.kpi_fold import KpiFold
from tawasul.domain.kpi_records import KPI_EVENT_TYPES, SubjectRecord
from tawasul.domain.kpi_tallies import KpiConfig
from tawasul.infra.topics import KPI_INPUT, KPIS, TICKET_STATE, ensure_topics

log = logging.getLogger(__name__)

TABLE_NAME = "kpi-subjects"
TICK_S = 0.02
PUBLISH_RETRY_S = 1.0
"""Pause of the publisher after a failed publication (which it repeats in full)."""
BATCH_MAX = 200
BATCH_WITHIN_S = 0.02
CHANGELOG_CONFIG = {"segment.ms": str(10 * 60 * 1000), "min.cleanable.dirty.ratio": "0.2"}


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
        self._owned_once = False
        self.poison = PoisonOutbox(app, ctx, "kpi")
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
        self.fold = self._new_fold(KpiBook(config, 0 if self.replay else self.wall.now_us()), ())
        """The KPI fold over the table (`kpi_input.TableStore`); rebuilt after every recovery."""
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

    @property
    def book(self) -> KpiBook:
        return self.fold.book

    def _new_fold(self, book: KpiBook, records: list[SubjectRecord] | tuple[()]) -> KpiFold:
        clock = None if self.replay else self.wall.now_us
        return KpiFold(book, TableStore(self.table, records), clock)

    async def _aggregate(self, stream: faust.StreamT) -> None:
        async for event in stream.events():
            poisoned = self._on_batch(event)
            message = event.message
            for item, exc in poisoned:  # a poison item never stops the partition
                original = json.dumps(item, ensure_ascii=False, default=str).encode("utf-8", "backslashreplace")
                await self.poison.send(original, exc, f"{message.topic}:{message.partition}:{message.offset}")

    def _on_batch(self, event: EventT) -> Poisoned:
        """One input message through the fold (`kpi_input.fold_batch`), then the expired records out."""
        message = event.message
        poisoned = fold_batch(self.fold, message.value, batch_kind(message.headers))
        if poisoned is None:
            return []
        self.ctx.metrics.processing_delay.labels(stage="kpi").observe(max(0.0, time.time() - message.timestamp))
        self.fold.expire()
        return poisoned

    async def _on_recover(self) -> None:
        """After every rebalance: rebuild the book from the table (empty when not owned)."""
        records: list[SubjectRecord] = []
        for index, value in enumerate(self.table.values()):
            record = decode_record(value)
            if record is not None:
                records.append(record)
            if index % 2000 == 1999:
                await asyncio.sleep(0)
        self.fold = self._new_fold(rebuild(self.config, records, None if self.replay else self.wall.now_us()), records)
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
            self.book.advance(self.wall.now_us(), self.fold.store.get)
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
    "BATCH_BYTES",
    "ENV_THRESHOLDS",
    "EVENT",
    "KIND_HEADER",
    "KPI_INPUT",
    "STATE",
    "KpiConfigError",
    "KpiProcessor",
    "KpiSettleError",
    "SnapshotPacer",
    "SnapshotPublisher",
    "config_from_env",
    "decode_record",
    "encode_record",
    "pack",
    "plans",
    "register_kpis",
    "snapshot_event",
]

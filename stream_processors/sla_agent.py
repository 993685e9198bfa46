"""The SLA engine as a faust agent, with the deadline timers that make breaches fire on time.

One agent (concurrency 1) reads `tawasul.events` and the internal `tawasul.sla.ticks` topic
(co-partitioned, 6 partitions each) and keeps each ticket's state in the table `sla`
(key = ticket id, value = `sla_step` JSON, changelog-backed). Faust only lets a table change
inside an agent's stream iteration (`Collection._send_changelog` raises "Cannot modify table
outside of agent/stream"), so timers never touch the table:

* live: a task wakes at the earliest deadline (at most every 100 ms) and, for each partition
  this worker owns whose deadline index has something due, sends one tick to the same partition
  of `tawasul.sla.ticks`; the agent, on that tick, takes the due tickets of the partition from
  the index and calls `due(state, wall clock)` for each (one tick serves many tickets);
* replay: after each message the agent fires, inline, every ticket of that partition whose
  next instant is at or before the partition's watermark.

Each change publishes the decided outcomes (`tawasul.sla.outcomes`) and the ticket's state
(`tawasul.tickets.state`) before the table write, so a state whose outcome was recorded as
fired was always handed to the producer first; outcome ids are deterministic for dedupe.
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust
from faust.types import EventT

from schemas import InvalidEvent, decode_event, new_event
from tawasul.domain.errors import DomainError
from tawasul.domain.sla_state import MET, SlaOutcome
from tawasul.settings import Settings
from tawasul.topics import SLA_OUTCOMES, TICKET_STATE

from stream_processors.clock import EndOfInput, WallClock, Watermarks, read_tick
from stream_processors.context import SLA_SOURCE, ProcessorContext
from stream_processors.deadlines import DeadlineIndex
from stream_processors.sla_step import (
    Step, Stored, StoredStateError, advance, decode, encode, is_ticket_event, live_event, next_at_of,
    replay_event,
)
from stream_processors.ticket_state import encode_state, ticket_state

log = logging.getLogger(__name__)

TABLE_NAME = "sla"
TICK = b'{"kind":"tick"}'
READY_MESSAGE = "sla timers running"
"""Logged (JSON, field `partitions`) each time the worker's recovered partitions change."""
TIMER_MAX_SLEEP_S = 0.1
TICK_BATCH = 2000
"""At most this many tickets are brought up to date by one tick (the timer sends another at once)."""
TICK_POLL_US = 20_000
TICK_RESEND_US = 2_000_000
"""A tick not seen back by the agent within 2 s (lost in a rebalance) is sent again."""
TIMER_MIN_SLEEP_S = 0.005
CHANGELOG_CONFIG = {"segment.ms": str(60 * 1000), "min.cleanable.dirty.ratio": "0.2"}
"""Roll and compact the table changelog often, so that recovery reads about one record per ticket."""


class SlaProcessor:
    """The SLA agent, its table, deadline index and (live) timer task."""

    def __init__(self, app: faust.App, ctx: ProcessorContext) -> None:
        self.app, self.ctx = app, ctx
        self.replay = ctx.mode == "replay"
        self.index = DeadlineIndex()
        self.wall = WallClock()
        self.watermarks = Watermarks(ctx.lateness)
        self.end_of_input = EndOfInput()
        self._ticks_in_flight: dict[int, int] = {}
        self.events_name = ctx.events.get_topic_name()
        self.table = app.Table(
            TABLE_NAME, key_type=bytes, value_type=bytes, partitions=ctx.events.partitions,
            on_changelog_event=self._on_changelog_event, extra_topic_configs=CHANGELOG_CONFIG,
            help="SLA state per ticket (key = ticket id)",
        )
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.outcomes = app.topic(ctx.settings.topic(SLA_OUTCOMES.name), **raw)
        self.states = app.topic(ctx.settings.topic(TICKET_STATE.name), **raw)
        source = app.topic(self.events_name, ctx.ticks.get_topic_name(),
                           partitions=ctx.events.partitions, **raw)
        app.agent(source, name="tawasul-sla", concurrency=1)(self._agent)
        if not self.replay:
            app.task(self._timer)

    # -- the agent -------------------------------------------------------------------------

    async def _agent(self, stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            if message.topic != self.events_name:
                await self._on_tick(event)
                continue
            await self._on_input(event)
            if self.replay:     # every event read counts, a skipped invalid one too
                ended = self.end_of_input.read(message.partition, message.offset)
                if ended is not None:
                    await self._fire_due(message.partition, self.watermarks.advance(message.partition, ended))

    async def _on_input(self, event: EventT) -> None:
        message = event.message
        partition = message.partition
        try:
            ev = decode_event(message.value)
        except InvalidEvent as exc:
            log.warning("sla: invalid input event skipped", extra={"reason": str(exc), "partition": partition})
            return
        self.ctx.metrics.processing_delay.labels(stage="sla").observe(max(0.0, time.time() - message.timestamp))
        watermark = self.watermarks.observe(partition, ev.time) if self.replay else None
        if is_ticket_event(ev.type):
            key = ev.subject.encode()
            stored = self._load(key)
            if self.replay:
                step = replay_event(stored, ev, watermark, self.ctx.book)
            else:
                step = live_event(stored, ev, self.wall.now_us(), self.ctx.book)
            await self._commit(partition, key, stored, step, self._now(partition))
        if watermark is not None:
            await self._fire_due(partition, watermark)

    async def _on_tick(self, event: EventT) -> None:
        message = event.message
        partition = message.partition
        try:
            kind, at, events_end = read_tick(message.value)
        except (ValueError, TypeError, KeyError, DomainError):
            log.warning("sla: unreadable tick skipped", extra={"partition": partition})
            return
        if at is not None:
            if events_end is not None and not self.end_of_input.knows(partition):
                await self._learn_position(partition)
            ready = self.end_of_input.arrived(partition, at, events_end)
            if ready is not None:
                await self._fire_due(partition, self.watermarks.advance(partition, ready))
        elif kind == "tick" and not self.replay:
            self._ticks_in_flight.pop(partition, None)
            await self._fire_due(partition, self.wall.now_us(), limit=TICK_BATCH)

    async def _learn_position(self, partition: int) -> None:
        """After a restart no event of the partition may come again: start from the group's
        committed offset (every event before it was processed before the restart)."""
        committed = await asyncio.to_thread(committed_offset, self.ctx.settings, self.app.conf.id,
                                            self.events_name, partition)
        self.end_of_input.read_up_to(partition, committed)

    async def _fire_due(self, partition: int, now_us: int, limit: int | None = None) -> None:
        for key in self.index.pop_due(partition, now_us, limit):
            await self._run(partition, key, now_us)

    async def _run(self, partition: int, key: bytes, now_us: int | None) -> None:
        if now_us is None or key not in self.table:
            return
        stored = self._load(key)
        await self._commit(partition, key, stored, advance(stored, now_us, self.ctx.book, replay=self.replay),
                           now_us)

    def _now(self, partition: int) -> int | None:
        return self.watermarks.get(partition) if self.replay else self.wall.now_us()

    def _load(self, key: bytes) -> Stored:
        ticket_id = key.decode()
        try:
            return decode(self.table.get(key), ticket_id)
        except StoredStateError:
            log.exception("sla: unreadable table value replaced by an empty state")
            return decode(None, ticket_id)

    async def _commit(self, partition: int, key: bytes, before: Stored, step: Step, now_us: int | None) -> None:
        metrics = self.ctx.metrics
        if step.duplicate:
            metrics.duplicates.labels(stage="sla").inc()
        for outcome in step.outcomes:
            await self._publish(key, outcome)
        if step.changed:
            view = ticket_state(step.stored, now_us if now_us is not None else 0, self.ctx.book)
            if view is not None:
                await self.states.send(key=key, value=encode_state(view))
            self.table[key] = encode(step.stored)
            ignored = len(step.stored.sla.ignored) - len(before.sla.ignored)
            if ignored > 0:
                metrics.ignored_after_close.inc(ignored)
        self.index.set(partition, key, step.stored.next_at)

    async def _publish(self, key: bytes, outcome: SlaOutcome) -> None:
        cloud_event = new_event(outcome.type, outcome.ticket_id, outcome.at, outcome.to_data(), SLA_SOURCE,
                                id=outcome.id)
        await self.outcomes.send(key=key, value=cloud_event.to_json())
        metrics = self.ctx.metrics
        metrics.sla_outcomes_emitted.labels(outcome=outcome.type.removeprefix("sla."), channel=outcome.channel,
                                    kind=outcome.kind, target=outcome.target).inc()
        if not self.replay and outcome.type != MET:
            delay = time.time() - outcome.at.timestamp()
            metrics.deadline_delay.observe(max(0.0, delay))

    # -- index rebuild and live timers ------------------------------------------------------

    async def _on_changelog_event(self, event: EventT) -> None:
        """Recovery and standby: every changelog record passes here, in offset order."""
        key = event.key
        if isinstance(key, bytes):
            try:
                self.index.set(event.message.partition, key, next_at_of(event.value))
            except (ValueError, TypeError, KeyError, IndexError):
                log.warning("sla: unreadable changelog record", extra={"partition": event.message.partition})

    def owned_partitions(self) -> set[int]:
        """Input partitions this worker owns and has recovered (empty while rebalancing)."""
        app = self.app
        if app.rebalancing or not app.tables.actives_ready:
            return set()
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == self.events_name}

    async def _timer(self) -> None:
        announced: set[int] = set()
        while True:
            await asyncio.sleep(self._sleep_s())
            owned = self.owned_partitions()
            if owned != announced:
                announced = owned
                self._ticks_in_flight.clear()
                if owned:
                    log.info(READY_MESSAGE, extra={"partitions": sorted(owned), "scheduled": len(self.index)})
            now = self.wall.now_us()
            for partition in owned:
                earliest = self.index.earliest(partition)
                sent = self._ticks_in_flight.get(partition)
                if earliest is None or earliest > now or (sent is not None and now - sent < TICK_RESEND_US):
                    continue
                self._ticks_in_flight[partition] = now
                await self.ctx.ticks.send(value=TICK, partition=partition)

    def _sleep_s(self) -> float:
        """Until the earliest deadline of a partition without a tick in flight; 5 ms to 100 ms."""
        now = self.wall.now_us()
        earliest = [now + TICK_POLL_US if p in self._ticks_in_flight else self.index.earliest(p)
                    for p in self.owned_partitions()]
        wakes = [at for at in earliest if at is not None]
        if not wakes:
            return TIMER_MAX_SLEEP_S
        return min(TIMER_MAX_SLEEP_S, max(TIMER_MIN_SLEEP_S, (min(wakes) - now) / 1_000_000))


def committed_offset(settings: Settings, group_id: str, topic: str, partition: int) -> int:
    """The group's committed offset of one partition (0 when none)."""
    from kafka import KafkaAdminClient, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka, client_id="tawasul-sla-position")
    try:
        tp = TopicPartition(topic, partition)
        found = admin.list_group_offsets({group_id: [tp]}).get(group_id, {}).get(tp)
        return max(found.offset, 0) if found is not None else 0
    finally:
        admin.close()


def register_sla(app: faust.App, ctx: ProcessorContext) -> SlaProcessor:
    """Add the SLA engine to the app (a registrar)."""
    return SlaProcessor(app, ctx)

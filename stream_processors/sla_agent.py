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
(`tawasul.tickets.state`) before the table write. Live, a change that decides outcomes is held
(`held_writes`): its table write and the acknowledgement of its input message wait until the
broker has acknowledged its messages, while the agent goes on (it reads held values first). So
no crash leaves a table, local or changelog, saying "fired" about an outcome the broker never
got, and the committed offset never passes a message whose outcomes could be lost; outcome ids
are deterministic, so an outcome sent again after a crash is dropped by the sinks.

The live table lives in RocksDB on the worker's disk (`table_store`): a restarted worker
reads only the changelog written since its last local write, then rebuilds the deadline index
of each newly assigned partition from the local database before its streams resume. An event
seen again after a crash (its offset was not committed) rewrites the stored state and resends
the ticket state, so a local write whose changelog record was lost in the crash reaches the
changelog after all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import faust
from faust.types import TP, EventT

from schemas import InvalidEvent, decode_event
from stream_processors.clock import EndOfInput, LiveClock, WallClock, read_tick, tick_run
from stream_processors.context import ProcessorContext
from stream_processors.group_offsets import committed_offset, committed_offsets
from stream_processors.held_writes import HeldWrites
from stream_processors.poison import PoisonOutbox
from stream_processors.retention import closed_retention_us
from stream_processors.sla_engine import SlaEngine
from stream_processors.sla_step import is_ticket_event, next_at_of
from stream_processors.sla_table import TableEffects, TableIO
from stream_processors.table_store import local_items, table_options
from tawasul.domain.calendars import to_us
from tawasul.domain.errors import DomainError
from tawasul.infra.topics import SLA_OUTCOMES, TICKET_STATE

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
HELD_POLL_US = 10_000
"""Held writes whose deliveries are done are stored by a tick within about 10 ms."""
CHANGELOG_CONFIG = {"segment.ms": str(60 * 1000), "min.cleanable.dirty.ratio": "0.2"}
"""Roll and compact the table changelog often, so that recovery reads about one record per ticket."""
INDEX_MESSAGE = "sla deadline index rebuilt"
"""Logged (JSON: `partitions`, `tickets` in the local database, `changelog_records` read into it
by this recovery, `seconds`) after a rebuild."""
REBUILD_YIELD_EVERY = 20_000
IGNORED_MARKER_MESSAGE = "sla: replay end-of-input marker ignored"
"""Logged (`partition`, `reason`: `live`, or `other_run` in a replay) for a watermark message on
the ticks topic that a live worker, or a replay of another run, must not obey."""


class SlaProcessor:
    """The SLA agent, its table, deadline index and (live) timer task."""

    def __init__(self, app: faust.App, ctx: ProcessorContext, *, durable: bool) -> None:
        self.app, self.ctx = app, ctx
        self.replay = ctx.mode == "replay"
        self.durable = durable
        self._indexed: set[int] = set()
        self._changelog_read = 0
        self.held: HeldWrites[EventT] = HeldWrites()
        self._message: EventT | None = None
        self.wall = WallClock()
        self.live = LiveClock(ctx.lateness)
        self.retention_us = None if self.replay else closed_retention_us()
        self._positioned: set[int] = set()
        self.end_of_input = EndOfInput()
        self.poison = PoisonOutbox(app, ctx, "sla")
        self._ticks_in_flight: dict[int, int] = {}
        self.events_name = ctx.events.get_topic_name()
        self.table = app.Table(
            TABLE_NAME,
            key_type=bytes,
            value_type=bytes,
            partitions=ctx.events.partitions,
            on_changelog_event=self._on_changelog_event,
            on_recover=self._on_recovered,
            extra_topic_configs=CHANGELOG_CONFIG,
            help="SLA state per ticket (key = ticket id)",
            **table_options(TABLE_NAME, durable),
        )
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.outcomes = app.topic(ctx.settings.topic(SLA_OUTCOMES.name), **raw)
        self.states = app.topic(ctx.settings.topic(TICKET_STATE.name), **raw)
        source = app.topic(self.events_name, ctx.ticks.get_topic_name(), partitions=ctx.events.partitions, **raw)
        app.agent(source, name="tawasul-sla", concurrency=1)(self._agent)
        self.effects: TableEffects[EventT] = TableEffects(
            TableIO(
                self.table,
                self.held,
                self.outcomes,
                self.states,
                self.poison,
                ctx.metrics,
                ctx.book,
                TABLE_NAME,
                lateness_us=ctx.lateness // timedelta(microseconds=1),
                replay=self.replay,
                message=self._current,
            )
        )
        self.core = SlaEngine(
            ctx.book,
            self.effects,
            self.effects,
            lateness=ctx.lateness,
            retention_us=self.retention_us,
            rewrite_duplicates=True,
            probe_queued=True,
        )
        self.index, self.watermarks = self.core.index, self.core.watermarks
        if not self.replay:
            app.task(self._timer)

    def _current(self) -> EventT:
        assert self._message is not None, "held writes are made while a message is processed"
        return self._message

    # -- the agent -------------------------------------------------------------------------

    async def _agent(self, stream: faust.StreamT) -> None:
        manual = stream.noack()  # each message is acknowledged once its changes are stored
        async for event in manual.events():
            message = event.message
            if self.held.pending(message.partition):
                await self._release(message.partition, manual)
            self._message = event
            try:
                if message.topic != self.events_name:
                    await self._on_tick(event)
                else:
                    await self._on_input(event)
            except Exception as exc:  # a poison message never stops the partition
                await self.poison.send(message.value, exc, f"{message.topic}:{message.partition}:{message.offset}")
            if self.replay and message.topic == self.events_name:  # every event read counts, a skipped one too
                ended = self.end_of_input.read(message.partition, message.offset)
                if ended is not None:
                    await self._fire_due(message.partition, self.watermarks.advance(message.partition, ended))
            holding = self.effects.take_holding()
            if holding is not None:
                self.held.add(message.partition, holding)
            else:
                await manual.ack(event)

    async def _release(self, partition: int, stream: faust.StreamT) -> None:
        """Store the held changes of the partition whose messages were delivered, in order, and
        acknowledge their input messages; send again what failed."""
        for held in self.held.release(partition):
            failed = held.failed()
            if failed:
                log.warning("sla: outcome delivery failed, sending again", extra={"messages": len(failed)})
                held.retrying([await self.outcomes.send(key=key, value=value) for key, value in failed])
                return
            for key, value in held.writes:
                self.table[key] = value
            await stream.ack(held.token)

    async def _on_input(self, event: EventT) -> None:
        message = event.message
        partition = message.partition
        try:
            ev = decode_event(message.value)
        except InvalidEvent as exc:
            log.warning("sla: invalid input event skipped", extra={"reason": str(exc), "partition": partition})
            if not self.replay:
                self.live.read(partition, message.offset, None, 0, 0)
            return
        self.ctx.metrics.processing_delay.labels(stage="sla").observe(max(0.0, time.time() - message.timestamp))
        watermark = self.watermarks.observe(partition, ev.time) if self.replay else None
        if not self.replay:
            self.live.read(
                partition, message.offset, to_us(ev.time), int(message.timestamp * 1_000_000), self.wall.now_us()
            )
        if self.replay:
            now, queue = watermark, True
        else:
            end, wall = self._end_offset(partition), self.wall.now_us()
            now, queue = self.live.now_us(partition, end, wall), not self.live.caught_up(partition, end, wall)
        if is_ticket_event(ev.type):
            try:
                self.core.on_ticket_event(partition, ev, now, queue=queue)
            finally:
                await self.effects.carry_out()
        if now is not None:  # live: up to the partition's clock, the rest by the timer's ticks
            await self._fire_due(partition, now, limit=None if self.replay else TICK_BATCH)

    async def _on_tick(self, event: EventT) -> None:
        message = event.message
        partition = message.partition
        try:
            kind, at, events_end = read_tick(message.value)
        except (ValueError, TypeError, KeyError, DomainError):
            log.warning("sla: unreadable tick skipped", extra={"partition": partition})
            return
        if at is not None:
            run = tick_run(message.value)
            if not self.replay or run != self.ctx.settings.topic_prefix:
                reason = "live" if not self.replay else "other_run"
                self.ctx.metrics.sla_ticks_ignored.labels(reason=reason).inc()
                log.warning(IGNORED_MARKER_MESSAGE, extra={"partition": partition, "reason": reason})
                return
            if events_end is not None and not self.end_of_input.knows(partition):
                await self._learn_position(partition)
            ready = self.end_of_input.arrived(partition, at, events_end)
            if ready is not None:
                await self._fire_due(partition, self.watermarks.advance(partition, ready))
        elif kind == "tick" and not self.replay:
            self._ticks_in_flight.pop(partition, None)
            now = self._now(partition)
            if now is not None:
                await self._fire_due(partition, now, limit=TICK_BATCH)

    async def _learn_position(self, partition: int) -> None:
        """After a restart no event of the partition may come again: start from the group's
        committed offset (every event before it was processed before the restart)."""
        committed = await asyncio.to_thread(
            committed_offset, self.ctx.settings, self.app.conf.id, self.events_name, partition
        )
        self.end_of_input.read_up_to(partition, committed)

    async def _learn_positions(self, active: set[int]) -> None:
        """Live: the partitions newly assigned start from the group's committed offsets (every
        event before them was processed before); the others are forgotten."""
        for partition in self._positioned - active:
            self.live.forget(partition)
        new = sorted(active - self._positioned)
        if new:
            try:
                found = await asyncio.to_thread(
                    committed_offsets, self.ctx.settings, self.app.conf.id, self.events_name, new
                )
            except Exception:  # the broker unreachable: the partitions catch up from their events
                log.exception("sla: committed offsets unknown; the partitions keep the event-time clock")
                found = {}
            for partition, offset in found.items():
                self.live.start_at(partition, offset)
        self._positioned = active

    async def _fire_due(self, partition: int, now_us: int, limit: int | None = None) -> None:
        try:
            self.core.fire_due(partition, now_us, limit)
        finally:
            await self.effects.carry_out()

    def _now(self, partition: int) -> int | None:
        """The partition's SLA clock: its watermark in replay; live, `LiveClock` (the wall clock
        once the partition is caught up)."""
        if self.replay:
            return self.watermarks.get(partition)
        return self.live.now_us(partition, self._end_offset(partition), self.wall.now_us())

    def _end_offset(self, partition: int) -> int | None:
        """The events partition's high-water mark as of the consumer's last fetch (None: unknown)."""
        try:
            end = self.app.consumer.highwater(TP(self.events_name, partition))
        except (AssertionError, KeyError, AttributeError, RuntimeError):
            return None
        return end if isinstance(end, int) else None

    # -- index rebuild and live timers ------------------------------------------------------

    async def _on_changelog_event(self, event: EventT) -> None:
        """Recovery and standby: every changelog record passes here, in offset order."""
        key = event.key
        self._changelog_read += 1
        if isinstance(key, bytes):
            self._index_value(event.message.partition, key, event.value)

    async def _on_recovered(self) -> None:
        """After each rebalance's recovery, before the streams resume: index the partitions
        newly assigned from the local database and forget the partitions given away (memory
        store: the changelog events, standbys' too, keep the index)."""
        started = time.monotonic()
        active = self._assigned()
        for partition, key in self.held.discard():
            if partition in active:  # its held messages come again: schedule from the table
                self._index_value(partition, key, self.table.get(key))
        if self.durable:
            for partition in set(self.index.partitions()) - active:
                self.index.drop(partition)
        if not self.replay:
            await self._learn_positions(active)
        rebuilt: list[int] = []
        tickets = 0
        for partition in sorted(active - self._indexed):
            items = local_items(self.table, partition)
            if items is None:
                continue
            self.index.drop(partition)
            rebuilt.append(partition)
            for key, value in items:
                self._index_value(partition, key, value)
                tickets += 1
                if tickets % REBUILD_YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        self._indexed = active
        if rebuilt:
            log.info(
                INDEX_MESSAGE,
                extra={
                    "partitions": rebuilt,
                    "tickets": tickets,
                    "changelog_records": self._changelog_read,
                    "seconds": round(time.monotonic() - started, 3),
                },
            )
        self._changelog_read = 0

    def _index_value(self, partition: int, key: bytes, value: bytes | None) -> None:
        try:
            self.index.set(partition, key, next_at_of(value, self.retention_us))
        except (ValueError, TypeError, KeyError, IndexError):
            log.warning("sla: unreadable table value not scheduled", extra={"partition": partition})

    def _assigned(self) -> set[int]:
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == self.events_name}

    def owned_partitions(self) -> set[int]:
        """Input partitions this worker owns, has recovered and indexed (empty while rebalancing)."""
        app = self.app
        if app.rebalancing or not app.tables.actives_ready:
            return set()
        return self._assigned() & self._indexed

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
                clock = self._now(partition)
                due = (earliest is not None and clock is not None and earliest <= clock) or self.held.ready(partition)
                sent = self._ticks_in_flight.get(partition)
                if not due or (sent is not None and now - sent < TICK_RESEND_US):
                    continue
                self._ticks_in_flight[partition] = now
                await self.ctx.ticks.send(value=TICK, partition=partition)

    def _sleep_s(self) -> float:
        """Until the earliest deadline of a partition without a tick in flight (by the partition's
        clock; a catching-up partition's deadlines are fired by its events); 5 ms to 100 ms."""
        now = self.wall.now_us()
        wakes: list[int] = []
        for p in self.owned_partitions():
            if p in self._ticks_in_flight:
                wakes.append(now + TICK_POLL_US)
            elif self.held.pending(p):
                wakes.append(now + HELD_POLL_US)
            elif (earliest := self.index.earliest(p)) is not None and self.live.caught_up(p, self._end_offset(p), now):
                wakes.append(earliest)
        if not wakes:
            return TIMER_MAX_SLEEP_S
        return min(TIMER_MAX_SLEEP_S, max(TIMER_MIN_SLEEP_S, (min(wakes) - now) / 1_000_000))


def register_sla(app: faust.App, ctx: ProcessorContext, *, durable: bool = False) -> SlaProcessor:
    """Add the SLA engine to the app; `durable` keeps its table in RocksDB under the app's datadir."""
    return SlaProcessor(app, ctx, durable=durable)

"""The SLA engine core, written once: what happens to a ticket on an event and when its deadlines
fall due, over a small store and output interface (pure Python: no faust, Kafka or database).

Two thin adapters drive it:

* the faust agent (`sla_agent`): the store is the faust table read through the held writes,
  the outputs are Kafka sends, and table writes of changes that decided outcomes wait for
  their delivery (`held_writes`); live or replay clock;
* the batch engine (`batch_engine`): the store is a dict in memory, the outputs are lists
  taken at each flush; replay clock (per-partition watermarks).

The core keeps the per-partition deadline index and watermarks; each change goes out as, in
order: its outcomes (`SlaOutput.outcome`), then, when the ticket's state is to be stored, its
ticket state (`SlaOutput.state`) and the store write (`SlaStore.put`); then its next instant in
the index.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from schemas import Event
from stream_processors.clock import DEFAULT_LATENESS, Watermarks
from stream_processors.deadlines import DeadlineIndex
from stream_processors.sla_step import (
    Step,
    Stored,
    advance,
    decode,
    expires_at,
    is_ticket_event,
    live_event,
    next_due,
    replay_event,
)
from tawasul.domain import sla
from tawasul.domain.policies import PolicyBook
from tawasul.domain.sla_state import SlaOutcome


class SlaStore(Protocol):
    """Each ticket's SLA state (key = ticket id as UTF-8)."""

    def get(self, key: bytes) -> Stored | None:
        """The ticket's state; None when the store has none."""

    def put(self, key: bytes, stored: Stored) -> None:
        """Keep the ticket's new state."""

    def delete(self, key: bytes) -> None:
        """Forget the ticket (its closed-ticket retention is over)."""

    def held(self, key: bytes) -> bool:
        """True while a write of the ticket waits for the delivery of its outcomes."""


class SlaOutput(Protocol):
    """Where the engine's results go."""

    def outcome(self, partition: int, key: bytes, outcome: SlaOutcome) -> None:
        """An SLA outcome decided (`tawasul.sla.outcomes`)."""

    def state(self, partition: int, key: bytes, stored: Stored, now_us: int | None) -> None:
        """The ticket's new state, as of the partition's clock (`tawasul.tickets.state`, and so
        the KPI processor)."""

    def expired(self, partition: int, key: bytes) -> None:
        """A closed ticket leaves the store (a tombstone in `tawasul.tickets.state`)."""

    def poisoned(self, partition: int, key: bytes, stored: Stored, exc: Exception) -> None:
        """The ticket's state could not be brought up to date (it stays as it was)."""

    def counted(self, duplicates: int, ignored_after_close: int) -> None:
        """Events seen again, and events ignored because their ticket was closed."""


class SlaEngine:
    """The SLA engine of one worker or one replay: its steps, deadline index and watermarks.

    `rewrite_duplicates`: an event seen again rewrites the stored state and sends the ticket
    state again (the faust table: a local write whose changelog record was lost in a crash
    reaches the changelog after all). `probe_queued`: an event queued until the clock passes
    it is checked at once (a poison event raises when it arrives, not when it is released).
    `parsed`: see `sla_step.replay_event` (a store in memory only).
    """

    def __init__(
        self,
        book: PolicyBook,
        store: SlaStore,
        output: SlaOutput,
        *,
        lateness: timedelta = DEFAULT_LATENESS,
        retention_us: int | None = None,
        rewrite_duplicates: bool = False,
        probe_queued: bool = False,
        parsed: dict[str, Event] | None = None,
    ) -> None:
        self.book = book
        self.store = store
        self.output = output
        self.index = DeadlineIndex()
        self.watermarks = Watermarks(lateness)
        self.lateness_us = self.watermarks.lateness_us
        self.retention_us = retention_us
        self.rewrite_duplicates = rewrite_duplicates
        self.probe_queued = probe_queued
        self.parsed = parsed

    # -- the replay clock -------------------------------------------------------------------

    def on_replay_event(self, partition: int, event: Event) -> None:
        """Replay: move the partition's watermark to the event, apply it, fire what is due."""
        watermark = self.watermarks.observe(partition, event.time)
        self.on_ticket_event(partition, event, watermark, queue=True)
        self.fire_due(partition, watermark)

    def on_watermark(self, partition: int, at_us: int) -> int:
        """Replay: an end-of-input marker moves the partition's watermark; fire what is due."""
        watermark = self.watermarks.advance(partition, at_us)
        self.fire_due(partition, watermark)
        return watermark

    # -- steps --------------------------------------------------------------------------------

    def load(self, key: bytes) -> Stored:
        stored = self.store.get(key)
        return decode(None, key.decode()) if stored is None else stored

    def on_ticket_event(self, partition: int, event: Event, now_us: int | None, *, queue: bool) -> None:
        """Apply one event (other than ticket events are ignored) at the partition's clock
        `now_us`: queued until the clock passes it (`queue`, or the ticket has queued events),
        else at once."""
        if not is_ticket_event(event.type):
            return
        key = event.subject.encode()
        stored = self.load(key)
        if queue or stored.pending:  # event time: applied in order once the clock passes them
            if self.probe_queued:
                probe(stored, event, self.book)
            step = replay_event(stored, event, now_us, self.book, self.parsed)
        else:
            step = live_event(stored, event, now_us, self.book)
        self.commit(partition, [(key, stored, step)], now_us)

    def fire_due(self, partition: int, now_us: int, limit: int | None = None) -> None:
        """Bring every ticket of the partition due at `now_us` up to date (at most `limit`);
        a closed ticket past its retention leaves the store."""
        changes: list[tuple[bytes, Stored, Step]] = []
        store, output = self.store, self.output
        for key in self.index.pop_due(partition, now_us, limit):
            stored = store.get(key)
            if stored is None:
                continue
            expiry = expires_at(stored, self.retention_us)
            if expiry is not None and expiry <= now_us and not store.held(key):
                output.expired(partition, key)
                store.delete(key)
                continue
            try:  # releases queued events too (a live partition queues them while catching up)
                step = advance(stored, now_us, self.book, replay=True, parsed=self.parsed)
            except Exception as exc:  # one poisoned ticket never stops the others
                output.poisoned(partition, key, stored, exc)
                continue
            changes.append((key, stored, step))
        if changes:
            self.commit(partition, changes, now_us)

    def commit(self, partition: int, changes: list[tuple[bytes, Stored, Step]], now_us: int | None) -> None:
        """Send the outcomes of each change, then its ticket state and store write (when it
        changed, or rewrites a duplicate), and schedule its next instant."""
        store, output, index = self.store, self.output, self.index
        duplicates = ignored = 0
        for key, before, step in changes:
            if step.duplicate:
                duplicates += 1
            for outcome in step.outcomes:
                output.outcome(partition, key, outcome)
            if step.changed or (self.rewrite_duplicates and step.duplicate and before.version > 0):
                output.state(partition, key, step.stored, now_us)
                store.put(key, step.stored)
                ignored += max(0, step.stored.sla.ignored_after_close - before.sla.ignored_after_close)
            index.set(partition, key, next_due(step.stored, self.retention_us))
        if duplicates or ignored:
            output.counted(duplicates, ignored)


def probe(stored: Stored, event: Event, book: PolicyBook) -> None:
    """Raise what applying `event` and firing the ticket's next outcome would raise (an instant
    the calendars cannot represent), without keeping the result: an event queued until the
    clock passes it is checked when it arrives."""
    state, _ = sla.apply(stored.sla, event, book)
    if state.next_fire is not None:
        sla.due_us(state, state.next_fire, book)


class DictStore:
    """`SlaStore` in memory (a replay; the broker-free tests of the agent's logic)."""

    __slots__ = ("tickets",)

    def __init__(self) -> None:
        self.tickets: dict[bytes, Stored] = {}

    def get(self, key: bytes) -> Stored | None:
        return self.tickets.get(key)

    def put(self, key: bytes, stored: Stored) -> None:
        self.tickets[key] = stored

    def delete(self, key: bytes) -> None:
        self.tickets.pop(key, None)

    def held(self, key: bytes) -> bool:
        return False

"""The stream processors' replay logic over batches of records, without faust (no Kafka I/O here).

`tawasul replay` runs the SLA engine and the KPI processor through this engine by default:
the same per-ticket steps (`sla_step.replay_event` / `advance`, per-partition event-time
watermarks, the deadline index) and the same KPI records and book (`tawasul.domain.kpi_state`)
as the faust agents, fed from Kafka in large batches (`batch_runner`). What it saves is the
per-message cost of faust: no changelog, no table serialisation, no internal topics, and one
ticket state per changed ticket per batch instead of one per event.

Equivalence with the faust agents in replay mode:

* per ticket, events are released in event-time order once their partition's watermark passes
  them, and deadlines fire as the watermark passes them: the outcome events (and their ids)
  are the same whatever the batch boundaries;
* a ticket's state is computed once per batch at its partition's watermark: no deadline of the
  ticket lies between its last change and that watermark (it would have fired), so it equals
  the state the agent publishes after the ticket's last change;
* the KPI book only keeps what the subjects' records imply, so moving its clock once per batch
  gives the figures of the agent, which moves it per record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from schemas import Event, InvalidEvent, decode_event
from stream_processors.clock import DEFAULT_LATENESS, EndOfInput, Watermarks, read_tick
from stream_processors.deadlines import DeadlineIndex
from stream_processors.kpi_batch import KpiBatch
from stream_processors.outcome_event import encode_outcome
from stream_processors.sla_step import Step, Stored, advance, decode, is_ticket_event, replay_event
from stream_processors.snapshots import SnapshotPacer, snapshot_messages
from stream_processors.ticket_state import encode_state, ticket_state
from tawasul.domain.errors import DomainError
from tawasul.domain.kpi_state import KpiConfig
from tawasul.domain.policies import PolicyBook
from tawasul.domain.sla_state import SlaOutcome

log = logging.getLogger(__name__)

Message = tuple[bytes, bytes]
"""A record to produce: (key, value)."""


@dataclass
class Outputs:
    """What one batch produced, per output topic (base names in `tawasul.infra.topics`)."""

    outcomes: list[Message] = field(default_factory=list)
    states: list[Message] = field(default_factory=list)
    snapshots: list[Message] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.outcomes) + len(self.states) + len(self.snapshots)


@dataclass
class EngineCounts:
    events: int = 0
    unreadable: int = 0
    duplicates: int = 0
    outcomes: int = 0


class SlaBatch:
    """The SLA engine of one replay: every ticket's `Stored` value in memory, per-partition
    watermarks and deadline index (as `sla_agent.SlaProcessor` in replay mode)."""

    def __init__(self, book: PolicyBook, lateness: timedelta = DEFAULT_LATENESS) -> None:
        self.book = book
        self.table: dict[str, Stored] = {}
        self.index = DeadlineIndex()
        self.watermarks = Watermarks(lateness)
        self.outcomes: list[SlaOutcome] = []
        self.duplicates = 0
        self._parsed: dict[str, Event] = {}
        """Events waiting for the watermark, parsed (see `sla_step.replay_event`)."""
        self._changed: dict[str, int] = {}

    def on_event(self, partition: int, event: Event) -> None:
        watermark = self.watermarks.observe(partition, event.time)
        if is_ticket_event(event.type):
            key = event.subject
            stored = self.table.get(key) or decode(None, key)
            self._commit(partition, key, replay_event(stored, event, watermark, self.book, self._parsed))
        self.fire_due(partition, watermark)

    def on_watermark(self, partition: int, at_us: int) -> None:
        self.fire_due(partition, self.watermarks.advance(partition, at_us))

    def fire_due(self, partition: int, now_us: int) -> None:
        for raw_key in self.index.pop_due(partition, now_us, None):
            key = raw_key.decode()
            stored = self.table.get(key)
            if stored is not None:
                self._commit(partition, key, advance(stored, now_us, self.book, replay=True, parsed=self._parsed))

    def _commit(self, partition: int, key: str, step: Step) -> None:
        if step.duplicate:
            self.duplicates += 1
        self.outcomes.extend(step.outcomes)
        if step.changed:
            self.table[key] = step.stored
            self._changed[key] = partition
        self.index.set(partition, key.encode(), step.stored.next_at)

    def take_states(self) -> list[dict[str, Any]]:
        """The current state of every ticket changed since the last call (at its partition's watermark)."""
        views = []
        for key, partition in self._changed.items():
            view = ticket_state(self.table[key], self.watermarks.get(partition) or 0, self.book)
            if view is not None:
                views.append(view)
        self._changed = {}
        return views

    def take_outcomes(self) -> list[SlaOutcome]:
        outcomes, self.outcomes = self.outcomes, []
        return outcomes


class BatchEngine:
    """Replay-mode stream processors over batches: feed records, then `flush()` the outputs."""

    def __init__(
        self,
        book: PolicyBook,
        kpi_config: KpiConfig,
        snapshots: SnapshotPacer,
        *,
        lateness: timedelta = DEFAULT_LATENESS,
        with_kpis: bool = True,
    ) -> None:
        self.sla = SlaBatch(book, lateness)
        self.kpi = KpiBatch(kpi_config) if with_kpis else None
        self.snapshots = snapshots
        self.end_of_input = EndOfInput()
        self.counts = EngineCounts()

    def on_event(self, partition: int, offset: int, value: bytes | None) -> None:
        """One record of the events topic."""
        self._on_event(partition, value)
        ended = self.end_of_input.read(partition, offset)
        if ended is not None:
            self.sla.on_watermark(partition, ended)

    def _on_event(self, partition: int, value: bytes | None) -> None:
        if value is None:
            return
        try:
            event = decode_event(value)
        except InvalidEvent as exc:
            self.counts.unreadable += 1
            log.warning("batch: invalid input event skipped", extra={"reason": str(exc)[:200], "partition": partition})
            return
        self.counts.events += 1
        self.sla.on_event(partition, event)
        if self.kpi is not None:
            self.kpi.on_event(event)

    def on_tick(self, partition: int, value: bytes | None) -> None:
        """One record of the ticks topic: an end-of-input marker moves the partition's clock
        once the partition's events are read up to the offset it names."""
        try:
            _kind, at, events_end = read_tick(value or b"")
        except (ValueError, TypeError, KeyError, DomainError):
            log.warning("batch: unreadable tick skipped", extra={"partition": partition})
            return
        if at is not None:
            ready = self.end_of_input.arrived(partition, at, events_end)
            if ready is not None:
                self.sla.on_watermark(partition, ready)

    def flush(self, *, force_snapshots: bool = False) -> Outputs:
        """The outputs of everything fed since the last flush (snapshots at their pace, or all
        pending ones with `force_snapshots`)."""
        out = Outputs()
        for outcome in self.sla.take_outcomes():
            out.outcomes.append((outcome.ticket_id.encode(), encode_outcome(outcome, self.sla.book.sha256)))
        self.counts.outcomes += len(out.outcomes)
        self.counts.duplicates = self.sla.duplicates
        for view in self.sla.take_states():
            out.states.append((str(view["ticket_id"]).encode(), encode_state(view)))
            if self.kpi is not None:
                self.kpi.on_state(view)
        if self.kpi is not None:
            self.kpi.settle()
            book = self.kpi.book
            out.snapshots = snapshot_messages(self.snapshots.changed_rows(book, force=force_snapshots), book.as_of_us)
        return out

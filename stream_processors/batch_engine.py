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

from schemas import Event, InvalidEvent, decode_event
from schemas.ticket_state import TicketStateMessage
from stream_processors.clock import DEFAULT_LATENESS, EndOfInput, read_tick
from stream_processors.kpi_batch import KpiBatch
from stream_processors.outcome_event import encode_outcome
from stream_processors.sla_engine import DictStore, SlaEngine
from stream_processors.sla_step import Stored
from stream_processors.snapshots import SnapshotPacer, snapshot_messages
from stream_processors.ticket_state import build_ticket_state, encode_state
from tawasul.domain.errors import DomainError
from tawasul.domain.kpi_records import KPI_EVENT_TYPES
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
    kpi_events: list[bytes] = field(default_factory=list)
    """`forward_kpis`: the KPI processor's input events of the batch (JSON), for a KPI process."""
    kpi_states: list[TicketStateMessage] = field(default_factory=list)
    """`forward_kpis`: the ticket states of the batch, for a KPI process."""

    def __len__(self) -> int:
        return len(self.outcomes) + len(self.states) + len(self.snapshots)


@dataclass
class EngineCounts:
    events: int = 0
    unreadable: int = 0
    duplicates: int = 0
    outcomes: int = 0


class SlaBatch:
    """The SLA engine of one replay (`sla_engine.SlaEngine` over a dict in memory): every
    ticket's `Stored` value, per-partition watermarks and deadline index (as
    `sla_agent.SlaProcessor` in replay mode). It is its own `SlaOutput`: outcomes and the
    changed tickets wait for `take_outcomes` / `take_states`."""

    def __init__(self, book: PolicyBook, lateness: timedelta = DEFAULT_LATENESS) -> None:
        self.book = book
        self.store = DictStore()
        self.outcomes: list[SlaOutcome] = []
        self.duplicates = 0
        self._changed: dict[bytes, int] = {}
        self.engine = SlaEngine(book, self.store, self, lateness=lateness, parsed={})
        self.watermarks = self.engine.watermarks
        self.index = self.engine.index

    def on_event(self, partition: int, event: Event) -> None:
        self.engine.on_replay_event(partition, event)

    def on_watermark(self, partition: int, at_us: int) -> None:
        self.engine.on_watermark(partition, at_us)

    def fire_due(self, partition: int, now_us: int) -> None:
        self.engine.fire_due(partition, now_us)

    # -- SlaOutput ----------------------------------------------------------------------------

    def outcome(self, partition: int, key: bytes, outcome: SlaOutcome) -> None:
        self.outcomes.append(outcome)

    def state(self, partition: int, key: bytes, stored: Stored, now_us: int | None) -> None:
        self._changed[key] = partition  # its state goes out once per batch, at the watermark

    def expired(self, partition: int, key: bytes) -> None:
        raise AssertionError("a replay keeps closed tickets")  # no retention in a replay

    def poisoned(self, partition: int, key: bytes, stored: Stored, exc: Exception) -> None:
        raise exc  # a replay stops on a ticket it cannot bring up to date

    def counted(self, duplicates: int, ignored_after_close: int) -> None:
        self.duplicates += duplicates

    # -- taken at each flush ------------------------------------------------------------------

    def take_states(self) -> list[TicketStateMessage]:
        """The current state of every ticket changed since the last call (at its partition's watermark)."""
        views = []
        tickets = self.store.tickets
        for key, partition in self._changed.items():
            view = build_ticket_state(tickets[key], self.watermarks.get(partition) or 0, self.book)
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
        forward_kpis: bool = False,
    ) -> None:
        """`forward_kpis` (without `with_kpis`): the KPI processor's input goes out with each
        flush (`Outputs.kpi_events`, `Outputs.kpi_states`), for a KPI process fed by several
        engines (`batch_jobs`)."""
        self.sla = SlaBatch(book, lateness)
        self.kpi = KpiBatch(kpi_config) if with_kpis else None
        self.forward: Outputs | None = Outputs() if forward_kpis and not with_kpis else None
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
        elif self.forward is not None and event.type in KPI_EVENT_TYPES:
            self.forward.kpi_events.append(value)

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
        if self.forward is not None:
            out.kpi_events, self.forward.kpi_events = self.forward.kpi_events, []
        for outcome in self.sla.take_outcomes():
            out.outcomes.append((outcome.ticket_id.encode(), encode_outcome(outcome, self.sla.book.sha256)))
        self.counts.outcomes += len(out.outcomes)
        self.counts.duplicates = self.sla.duplicates
        for view in self.sla.take_states():
            out.states.append((view.ticket_id.encode(), encode_state(view)))
            if self.kpi is not None:
                self.kpi.on_state(view)
            elif self.forward is not None:
                out.kpi_states.append(view)
        if self.kpi is not None:
            out.snapshots = kpi_snapshots(self.kpi, self.snapshots, force=force_snapshots)
        return out


def kpi_snapshots(kpi: KpiBatch, pacer: SnapshotPacer, *, force: bool) -> list[Message]:
    """Settle the KPI aggregator; the snapshots due (at their pace, or all pending with `force`)."""
    kpi.settle()
    book = kpi.book
    return snapshot_messages(pacer.changed_rows(book, force=force), book.as_of_us)

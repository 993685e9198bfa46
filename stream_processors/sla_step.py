"""One step of a ticket's SLA state in the stream: after an event, a timer tick or a watermark.

Pure functions on the stored table value (no faust here), shared by live and replay:

* live: an event is applied at once, after firing what fell due strictly before its time (up to
  the partition's clock, `clock.LiveClock`); ticks fire what is due at that clock;
* replay: events wait in `pending` until the partition's watermark passes their time, and are
  then applied in event-time order, each after firing what fell due strictly before it. So each
  ticket lives through its own history in event-time order, as a live worker would, whatever
  order the events arrived in within the allowed lateness.

The stored value is `TicketSla.to_dict()` as UTF-8 JSON, plus `"pending": [[time_us, rank,
id, event_json], ...]` while replay events wait for the watermark.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from schemas import Event, decode_event
from tawasul.domain import sla
from tawasul.domain.calendars import to_us
from tawasul.domain.policies import PolicyBook
from tawasul.domain.sla_fold import fold
from tawasul.domain.sla_state import SlaOutcome, TicketSla
from tawasul.domain.sla_timeline import CLOSED, RANKS

Pending = tuple[int, int, str, str]
"""A replay event waiting for the watermark: (time_us, type rank, id, event JSON)."""


class StoredStateError(ValueError):
    """A table value could not be read back."""


@dataclass(frozen=True, slots=True)
class Stored:
    """The table value of one ticket."""

    sla: TicketSla
    pending: tuple[Pending, ...] = ()

    @property
    def next_at(self) -> int | None:
        """When the ticket next needs the engine: its next deadline or its first pending event."""
        fire = self.sla.next_fire
        first = self.pending[0][0] if self.pending else None
        if fire is None:
            return first
        return fire if first is None else min(fire, first)

    @property
    def version(self) -> int:
        """Distinct events applied (stored, folded or ignored after closing); never decreases."""
        return self.sla.events

    def knows(self, event_id: str, time_us: int) -> bool:
        if self.sla.seen(event_id, time_us):
            return True
        for item in self.pending:
            if item[2] == event_id:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Step:
    """The result of a step: the new value, the outcomes decided, and whether anything changed."""

    stored: Stored
    outcomes: tuple[SlaOutcome, ...]
    changed: bool
    duplicate: bool = False


def is_ticket_event(event_type: str) -> bool:
    return event_type in RANKS


def encode(stored: Stored) -> bytes:
    body: dict[str, Any] = stored.sla.to_dict()
    if stored.pending:
        body["pending"] = [list(p) for p in stored.pending]
    return json.dumps(body, separators=(",", ":")).encode()


def decode(raw: bytes | str | None, ticket_id: str) -> Stored:
    """A stored value back; None (no value yet) gives an empty state for `ticket_id`."""
    if raw is None:
        return Stored(TicketSla(ticket_id=ticket_id))
    try:
        body = json.loads(raw)
        pending = tuple((int(t), int(r), str(i), str(e)) for t, r, i, e in body.pop("pending", ()))
        return Stored(TicketSla.from_dict(body), pending)
    except (ValueError, TypeError) as exc:
        raise StoredStateError(f"bad SLA table value: {exc}") from exc


def next_at_of(raw: bytes | str | None, retention_us: int | None = None) -> int | None:
    """`next_due` of an encoded value, cheaply (index rebuild on recovery)."""
    if raw is None:
        return None
    body = json.loads(raw)
    fire = body.get("next_fire")
    pending = body.get("pending")
    first = int(pending[0][0]) if pending else None
    marks = body.get("marks") or ()
    if retention_us is not None and not pending and marks and int(marks[-1][1]) == CLOSED:
        first = int(marks[-1][0]) + retention_us
    return _earliest(None if fire is None else int(fire), first)


def expires_at(stored: Stored, retention_us: int | None) -> int | None:
    """When a closed ticket leaves the table (`TAWASUL_CLOSED_RETENTION`): its closing time plus
    the retention; None while it is not closed, has queued events, or without a retention."""
    if retention_us is None or stored.pending or not stored.sla.closed:
        return None
    return stored.sla.marks[-1].at + retention_us


def next_due(stored: Stored, retention_us: int | None) -> int | None:
    """When the ticket next needs the engine: `Stored.next_at`, or its expiry."""
    return _earliest(stored.next_at, expires_at(stored, retention_us))


def _earliest(first: int | None, second: int | None) -> int | None:
    if first is None:
        return second
    return first if second is None else min(first, second)


def folded(stored: Stored, lateness_us: int) -> Stored:
    """`stored` with its SLA state folded (`sla_fold.fold`): what the table keeps."""
    state = fold(stored.sla, lateness_us)
    return stored if state is stored.sla else Stored(state, stored.pending)


def live_event(stored: Stored, event: Event, now_us: int | None, book: PolicyBook) -> Step:
    """Live: fire what was due before the event (by the partition's clock `now_us`), apply it,
    fire what is due now; `now_us` None (no clock yet) only applies it."""
    if stored.knows(event.id, to_us(event.time)):
        return Step(stored, (), False, duplicate=True)
    if now_us is None:
        state, decided = sla.apply(stored.sla, event, book)
        new = Stored(state, stored.pending)
        return Step(new, tuple(decided), new != stored)
    before = min(now_us, to_us(event.time) - 1)
    state, first = sla.due_us(stored.sla, before, book)
    state, second = sla.apply(state, event, book)
    state, third = sla.due_us(state, now_us, book)
    new = Stored(state, stored.pending)
    return Step(new, (*first, *second, *third), new != stored)


def replay_event(
    stored: Stored, event: Event, watermark_us: int | None, book: PolicyBook, parsed: dict[str, Event] | None = None
) -> Step:
    """Replay: queue the event, then release everything up to the watermark.

    `parsed`, when given, keeps the queued events by id until they are released, so that a
    caller holding its states in memory (the batch engine) does not parse them again; their
    stored JSON is then left empty, so such a state must not be written to a table.
    """
    if stored.knows(event.id, to_us(event.time)):
        return Step(stored, (), False, duplicate=True)
    if parsed is None:
        body = event.to_json().decode()
    else:  # held in memory only: the JSON would never be read
        parsed[event.id], body = event, ""
    item: Pending = (to_us(event.time), RANKS[event.type], event.id, body)
    queued = Stored(stored.sla, tuple(sorted((*stored.pending, item))))
    step = advance(queued, watermark_us, book, replay=True, parsed=parsed)
    return Step(step.stored, step.outcomes, True)


def advance(
    stored: Stored, now_us: int | None, book: PolicyBook, *, replay: bool, parsed: dict[str, Event] | None = None
) -> Step:
    """Bring the ticket to `now_us` (wall clock or watermark): release pending events, fire dues
    (`parsed`: see `replay_event`)."""
    if now_us is None:
        return Step(stored, (), False)
    state = stored.sla
    outcomes: list[SlaOutcome] = []
    pending = stored.pending
    if replay:
        released = 0
        for at, _rank, event_id, body in pending:
            if at > now_us:
                break
            state, fired = sla.due_us(state, at - 1, book)
            outcomes.extend(fired)
            event = parsed.pop(event_id, None) if parsed is not None else None
            state, decided = sla.apply(state, event or decode_event(body.encode()), book)
            outcomes.extend(decided)
            released += 1
        pending = pending[released:]
    state, fired = sla.due_us(state, now_us, book)
    outcomes.extend(fired)
    new = Stored(state, pending)
    return Step(new, tuple(outcomes), new != stored)

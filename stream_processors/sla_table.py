"""The faust agent's store and output for the SLA engine core (`sla_engine`): the table `sla`
read through the held writes, and Kafka sends.

Faust sends are coroutines and the core is not: the core's writes and outputs are recorded
here, in order, and `carry_out` performs them after each step of the core, as the agent did
before it had a core: an outcome is handed to the producer, the ticket state sent, then the
table written, or (live) the write held until the broker acknowledged the change's outcomes
(`held_writes`), as is every later write of a key that is held.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal

from stream_processors.held_writes import Held, HeldWrites, Token
from stream_processors.outcome_event import encode_outcome
from stream_processors.poison import PoisonOutbox
from stream_processors.sla_step import Stored, StoredStateError, decode, encode, folded
from stream_processors.ticket_state import build_ticket_state, encode_state
from tawasul.domain.policies import PolicyBook
from tawasul.domain.sla_state import BREACHED, WARNING, SlaOutcome
from tawasul.infra.metrics import Metrics

log = logging.getLogger("stream_processors.sla_agent")

OpKind = Literal["outcome", "state", "put", "tombstone", "delete", "poison"]


@dataclass(frozen=True, slots=True)
class Op:
    """One write or send decided by the core, to be carried out."""

    kind: OpKind
    key: bytes
    value: bytes | None = None
    outcome: SlaOutcome | None = None
    error: Exception | None = None
    partition: int = 0


@dataclass
class TableIO(Generic[Token]):
    """The agent's table, held writes and output topics (faust objects, typed loosely here)."""

    table: Any
    held: HeldWrites[Token]
    outcomes: Any
    states: Any
    poison: PoisonOutbox
    metrics: Metrics
    book: PolicyBook
    table_name: str
    lateness_us: int
    replay: bool
    message: Callable[[], Token]
    """The input message being processed (the token of its held writes)."""


class TableEffects(Generic[Token]):
    """`SlaStore` and `SlaOutput` of the faust agent: reads are immediate, writes and sends are
    recorded, then carried out by `carry_out`."""

    def __init__(self, io: TableIO[Token]) -> None:
        self.io = io
        self.ops: list[Op] = []
        self.holding: Held[Token] | None = None
        """The held changes of the message being processed (made on its first held change)."""

    # -- SlaStore -----------------------------------------------------------------------------

    def get(self, key: bytes) -> Stored | None:
        io = self.io
        held = io.held.value(key)
        if held is None and key not in io.table:
            return None
        try:
            return decode(held if held is not None else io.table.get(key), key.decode())
        except StoredStateError:
            log.exception("sla: unreadable table value replaced by an empty state")
            return decode(None, key.decode())

    def put(self, key: bytes, stored: Stored) -> None:
        self.ops.append(Op("put", key, encode(folded(stored, self.io.lateness_us))))  # bounded: `sla_fold`

    def delete(self, key: bytes) -> None:
        self.ops.append(Op("delete", key))

    def held(self, key: bytes) -> bool:
        return self.io.held.holds(key)

    # -- SlaOutput ----------------------------------------------------------------------------

    def outcome(self, partition: int, key: bytes, outcome: SlaOutcome) -> None:
        self.ops.append(Op("outcome", key, outcome=outcome))

    def state(self, partition: int, key: bytes, stored: Stored, now_us: int | None) -> None:
        try:
            view = build_ticket_state(stored, now_us if now_us is not None else 0, self.io.book)
        except Exception:  # an instant the calendars cannot represent: the state is still stored
            log.exception("sla: ticket state not computable", extra={"partition": partition})
            return
        if view is not None:
            self.ops.append(Op("state", key, encode_state(view)))

    def expired(self, partition: int, key: bytes) -> None:
        self.ops.append(Op("tombstone", key))

    def poisoned(self, partition: int, key: bytes, stored: Stored, exc: Exception) -> None:
        self.ops.append(Op("poison", key, encode(stored), error=exc, partition=partition))

    def counted(self, duplicates: int, ignored_after_close: int) -> None:
        metrics = self.io.metrics
        if duplicates:
            metrics.duplicates.labels(stage="sla").inc(duplicates)
        if ignored_after_close:
            metrics.ignored_after_close.inc(ignored_after_close)

    # -- carried out --------------------------------------------------------------------------

    async def carry_out(self) -> None:
        """Perform the recorded writes and sends, in order."""
        ops, self.ops = self.ops, []
        io = self.io
        sent: list[tuple[Awaitable[object], tuple[bytes, bytes]]] = []
        for op in ops:
            key = op.key
            if op.kind == "outcome" and op.outcome is not None:
                sent.append(await self._publish(key, op.outcome))
            elif op.kind == "state":
                await io.states.send(key=key, value=op.value)
            elif op.kind == "put" and op.value is not None:
                # keys are distinct within one message (one ticket per event, `pop_due` per tick)
                if not io.replay and (sent or io.held.holds(key)):
                    holding = self.holding = self.holding or Held(io.message())
                    holding.writes.append((key, op.value))
                    for delivery, message in sent:
                        holding.deliveries.append(asyncio.ensure_future(delivery))
                        holding.messages.append(message)
                else:
                    io.table[key] = op.value
                sent = []
            elif op.kind == "tombstone":  # the sink and the KPI processor skip tombstones
                await io.states.send(key=key, value=None)
            elif op.kind == "delete":
                del io.table[key]
                io.metrics.closed_tickets_expired.inc()
            elif op.kind == "poison" and op.error is not None:
                await io.poison.send(op.value, op.error, f"table {io.table_name}:{op.partition}")

    async def _publish(self, key: bytes, outcome: SlaOutcome) -> tuple[Awaitable[object], tuple[bytes, bytes]]:
        """Hand one outcome to the producer; returns its delivery (the broker's acknowledgement)
        and the message, to send again should the delivery fail."""
        io = self.io
        value = encode_outcome(outcome, io.book.sha256)
        delivery = await io.outcomes.send(key=key, value=value)
        io.metrics.sla_outcomes_emitted.labels(
            outcome=outcome.type.removeprefix("sla."), channel=outcome.channel, kind=outcome.kind, target=outcome.target
        ).inc()
        if not io.replay and outcome.type in (WARNING, BREACHED):
            io.metrics.deadline_delay.observe(max(0.0, time.time() - outcome.at.timestamp()))
        return delivery, (key, value)

    def take_holding(self) -> Held[Token] | None:
        """The held changes of the message just processed (None: nothing held)."""
        holding, self.holding = self.holding, None
        return holding

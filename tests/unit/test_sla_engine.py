"""The faust agent's SLA logic without a broker: the engine core (`sla_engine`) over the agent's
own store and output (`sla_table.TableEffects`, a dict as its table), driven as the agent
drives it; and the batch engine, which drives the same core over a dict store, gives the same
outcomes and ticket states."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

from producers.simulator import Params, iter_events, parse_when
from schemas import Event, decode_event
from stream_processors.batch_engine import BatchEngine
from stream_processors.clock import watermark_message
from stream_processors.held_writes import HeldWrites
from stream_processors.sla_engine import DictStore, SlaEngine
from stream_processors.sla_step import decode, encode
from stream_processors.sla_table import TableEffects, TableIO
from stream_processors.snapshots import SnapshotPacer
from tawasul.domain.calendars import to_us
from tawasul.domain.kpi_state import KpiConfig
from tawasul.domain.policies import PolicyBook, load_policies
from tawasul.infra.metrics import Metrics
from tawasul.infra.settings import default_policies_path
from tests.unit.test_sla_step import LATENESS, T0, book, ev

__all__ = ["book"]  # the policy book fixture of the stream-step tests

PARTITIONS = 3


class Topic:
    """An output topic in memory: what was sent, with a delivery future per message."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delivered: bool = True) -> None:
        self.loop, self.delivered = loop, delivered
        self.sent: list[tuple[bytes, bytes | None]] = []
        self.deliveries: list[asyncio.Future[object]] = []

    async def send(self, *, key: bytes, value: bytes | None) -> asyncio.Future[object]:
        self.sent.append((key, value))
        delivery: asyncio.Future[object] = self.loop.create_future()
        if self.delivered:
            delivery.set_result("ok")
        self.deliveries.append(delivery)
        return delivery


class Poison:
    def __init__(self) -> None:
        self.letters: list[tuple[bytes | None, str, str]] = []

    async def send(self, original: bytes | None, exc: BaseException, origin: str) -> None:
        self.letters.append((original, type(exc).__name__, origin))


class Agent:
    """The agent's use of the core, minus faust: its table is a dict, its topics lists."""

    def __init__(self, book: PolicyBook, *, replay: bool, retention_us: int | None = None, delivered: bool = True):
        self.loop = asyncio.new_event_loop()
        self.table: dict[bytes, bytes] = {}
        self.held: HeldWrites[str] = HeldWrites()
        self.outcomes, self.states = Topic(self.loop, delivered), Topic(self.loop)
        self.poison, self.metrics = Poison(), Metrics()
        self.message_token = "m0"
        io = TableIO(
            self.table, self.held, self.outcomes, self.states, self.poison, self.metrics, book, "sla",
            lateness_us=LATENESS // timedelta(microseconds=1), replay=replay, message=lambda: self.message_token,
        )  # fmt: skip
        self.effects: TableEffects[str] = TableEffects(io)
        self.core = SlaEngine(
            book, self.effects, self.effects, lateness=LATENESS, retention_us=retention_us,
            rewrite_duplicates=True, probe_queued=True,
        )  # fmt: skip

    def run(self, call: Any) -> None:
        """One step of the core, then its writes and sends carried out (as `_on_input`, `_fire_due`)."""
        try:
            call()
        finally:
            self.loop.run_until_complete(self.effects.carry_out())

    def replay_event(self, partition: int, event: Event) -> None:
        watermark = self.core.watermarks.observe(partition, event.time)
        self.run(lambda: self.core.on_ticket_event(partition, event, watermark, queue=True))
        self.run(lambda: self.core.fire_due(partition, watermark))

    def message(self, partition: int, token: str, *calls: Any) -> None:
        """One input message, as `_agent`: first the partition's delivered held writes reach
        the table (`_release`), then the message's steps; its held writes are kept."""
        for held in self.held.release(partition):
            for key, value in held.writes:
                self.table[key] = value
        self.message_token = token
        for call in calls:
            self.run(call)
        holding = self.effects.take_holding()
        if holding is not None:
            self.held.add(partition, holding)

    def live_event(self, partition: int, event: Event, now: datetime) -> None:
        core, now_us = self.core, to_us(now)
        self.message(
            partition,
            event.id,
            lambda: core.on_ticket_event(partition, event, now_us, queue=False),
            lambda: core.fire_due(partition, now_us, 2000),
        )

    def tick(self, partition: int, now: datetime, token: str = "tick") -> None:
        self.message(partition, token, lambda: self.core.fire_due(partition, to_us(now), 2000))

    def outcome_types(self) -> list[str]:
        return [json.loads(value or b"{}")["type"] for _, value in self.outcomes.sent]


def test_the_agents_replay_path_gives_the_batch_engines_outcomes_and_states() -> None:
    """Two simulated days, by partition, through the agent's store (encoded, folded table
    values) and through the batch engine (a dict of states in memory): same outcome ids,
    same final ticket states."""
    book = load_policies(default_policies_path())
    start = parse_when("2025-03-04")
    params = Params(start, start + timedelta(days=2), seed=3, scale=0.1)
    events = [decode_event(json.dumps(raw).encode()) for raw in iter_events(params)]
    end = max(event.time for event in events)
    agent = Agent(book, replay=True)
    batch = BatchEngine(book, KpiConfig(), SnapshotPacer(), lateness=LATENESS, with_kpis=False)
    offsets = [0] * PARTITIONS
    for event in events:
        partition = sum(event.subject.encode()) % PARTITIONS
        agent.replay_event(partition, event)
        batch.on_event(partition, offsets[partition], event.to_json())
        offsets[partition] += 1
    for partition in range(PARTITIONS):
        agent.run(lambda p=partition: agent.core.on_watermark(p, to_us(end)))
        batch.on_tick(partition, watermark_message(end, offsets[partition]))
    out = batch.flush()
    agent_ids = sorted(json.loads(value or b"{}")["id"] for _, value in agent.outcomes.sent)
    batch_ids = sorted(json.loads(value)["id"] for _, value in out.outcomes)
    assert len(batch_ids) > 50 and agent_ids == batch_ids
    latest = {key: json.loads(value or b"{}") for key, value in agent.states.sent}
    assert latest == {key: json.loads(value) for key, value in out.states}
    assert not agent.held.pending(0) and agent.poison.letters == []
    assert all(decode(value, key.decode()).pending == () for key, value in agent.table.items())


def test_live_a_change_that_decides_outcomes_is_held_until_they_are_delivered(book: PolicyBook) -> None:
    agent = Agent(book, replay=False, delivered=False)
    agent.live_event(0, ev("ticket.opened", 0), T0)
    assert agent.table.keys() == {b"T-1"} and not agent.held.pending(0)  # no outcome: written at once
    opened = agent.table[b"T-1"]
    agent.tick(0, T0 + timedelta(minutes=5), "tick-1")  # the first-response warning (50 % of 10 min)
    assert agent.outcome_types() == ["sla.warning"] and agent.held.pending(0) == 1
    assert agent.table[b"T-1"] == opened, "the table does not say fired before the delivery"
    held = agent.effects.get(b"T-1")
    assert held is not None and held.sla.fired != 0, "the held value is read first"
    agent.tick(0, T0 + timedelta(minutes=11), "tick-2")  # the breach: held behind the warning
    assert agent.outcome_types() == ["sla.warning", "sla.breached"] and agent.held.pending(0) == 2
    assert agent.table[b"T-1"] == opened
    for delivery in agent.outcomes.deliveries:
        delivery.set_result("ok")
    assert [h.token for h in agent.held.release(0)] == ["tick-1", "tick-2"]
    agent.tick(0, T0 + timedelta(minutes=12))  # nothing due, nothing sent again
    assert agent.outcome_types() == ["sla.warning", "sla.breached"]


def test_live_a_duplicate_rewrites_the_state_and_a_closed_ticket_expires(book: PolicyBook) -> None:
    retention = timedelta(days=1) // timedelta(microseconds=1)
    agent = Agent(book, replay=False, retention_us=retention)
    for kind, minutes in (("ticket.opened", 0), ("ticket.acknowledged", 2), ("ticket.resolved", 20)):
        agent.live_event(0, ev(kind, minutes), T0 + timedelta(minutes=minutes))
    agent.live_event(0, ev("ticket.closed", 30), T0 + timedelta(minutes=30))
    states = len(agent.states.sent)
    agent.live_event(0, ev("ticket.closed", 30), T0 + timedelta(minutes=31))  # seen again
    assert len(agent.states.sent) == states + 1 and agent.states.sent[-1][1] is not None
    assert agent.metrics.duplicates.labels(stage="sla")._value.get() == 1
    assert sorted(agent.outcome_types()) == ["sla.met", "sla.met"]
    agent.tick(0, T0 + timedelta(minutes=30, days=1) - timedelta(microseconds=1))
    assert b"T-1" in agent.table
    agent.tick(0, T0 + timedelta(minutes=30, days=1))
    assert b"T-1" not in agent.table and agent.states.sent[-1] == (b"T-1", None)
    assert agent.metrics.closed_tickets_expired._value.get() == 1


def test_a_catching_up_partition_queues_its_events_and_fires_as_live(book: PolicyBook) -> None:
    """Events read behind the clock wait in the ticket's queue (the agent's `queue`) and are
    released in event-time order: the same outcomes as live, at once."""
    events = [ev("ticket.opened", 0), ev("ticket.acknowledged", 12), ev("ticket.resolved", 50)]
    live = Agent(book, replay=False)
    for event in events:
        live.live_event(0, event, event.time)
    live.tick(0, T0 + timedelta(hours=2))
    queued = Agent(book, replay=False)
    for event in reversed(events):  # behind the clock, any order
        queued.message(0, event.id, lambda e=event: queued.core.on_ticket_event(0, e, to_us(T0) - 1, queue=True))
    assert queued.outcomes.sent == [] and queued.core.store.get(b"T-1") is not None
    queued.tick(0, T0 + timedelta(hours=2))
    assert sorted(queued.outcomes.sent) == sorted(live.outcomes.sent)
    assert sorted(live.outcome_types()) == ["sla.breached", "sla.met", "sla.warning", "sla.warning"]


def test_a_ticket_that_cannot_be_brought_up_to_date_goes_to_the_dead_letters(book: PolicyBook) -> None:
    """A stored state that cannot be advanced (here a queued event that does not parse) goes to
    the dead letters with its origin and stays as it was; the partition's other tickets fire."""
    agent = Agent(book, replay=False)
    agent.live_event(0, ev("ticket.opened", 0, "T-1"), T0)
    agent.live_event(0, ev("ticket.opened", 0, "T-2"), T0)
    body = json.loads(agent.table[b"T-1"])
    body["pending"] = [[to_us(T0) + 1, 0, "bad", "{not json"]]
    agent.table[b"T-1"] = broken = json.dumps(body).encode()
    agent.core.index.set(0, b"T-1", to_us(T0) + 1)
    agent.tick(0, T0 + timedelta(minutes=5))
    assert agent.poison.letters == [(encode(decode(broken, "T-1")), "InvalidEvent", "table sla:0")]
    assert agent.table[b"T-1"] == broken
    assert [key for key, _ in agent.outcomes.sent] == [b"T-2"] and agent.outcome_types() == ["sla.warning"]


def test_the_dict_store_is_the_batch_engines_store(book: PolicyBook) -> None:
    store = DictStore()
    engine = BatchEngine(book, KpiConfig(), SnapshotPacer(), with_kpis=False)
    engine.on_event(0, 0, ev("ticket.opened", 0).to_json())
    assert isinstance(engine.sla.store, DictStore) and set(engine.sla.store.tickets) == {b"T-1"}
    assert store.get(b"T-1") is None and not store.held(b"T-1")

"""The batch replay engine without a broker: end-of-input markers wait for their events, and
batch boundaries do not change the outcomes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from producers.simulator import Params, iter_events, parse_when
from schemas import decode_event
from stream_processors.batch_engine import BatchEngine, Outputs
from stream_processors.clock import EndOfInput, read_tick, watermark_message
from stream_processors.snapshots import SnapshotPacer
from tawasul.domain.calendars import to_us
from tawasul.domain.kpi_state import KpiConfig
from tawasul.domain.policies import load_policies
from tawasul.infra.settings import default_policies_path

PARTITIONS = 3


def engine() -> BatchEngine:
    return BatchEngine(
        load_policies(default_policies_path()), KpiConfig(), SnapshotPacer(min_interval_s=0.0, slow_interval_s=0.0)
    )


def recorded() -> tuple[list[list[bytes]], datetime]:
    start = parse_when("2025-03-04")
    lines = [
        json.dumps(raw).encode() for raw in iter_events(Params(start, start + timedelta(days=2), seed=3, scale=0.1))
    ]
    partitions: list[list[bytes]] = [[] for _ in range(PARTITIONS)]
    for line in lines:
        event = decode_event(line)
        partitions[sum(event.subject.encode()) % PARTITIONS].append(line)
    return partitions, max(decode_event(line).time for line in lines)


def outcome_ids(outputs: list[Outputs]) -> list[str]:
    return sorted(json.loads(value)["id"] for out in outputs for _, value in out.outcomes)


def run(partitions: list[list[bytes]], end: datetime, *, marker_first: bool, batch: int) -> list[Outputs]:
    subject = engine()
    outputs: list[Outputs] = []
    if marker_first:  # the markers overtake every event
        for p, events in enumerate(partitions):
            subject.on_tick(p, watermark_message(end, len(events)))
    cursor = 0
    longest = max(len(events) for events in partitions)
    while cursor < longest:
        for p, events in enumerate(partitions):
            for offset in range(cursor, min(cursor + batch, len(events))):
                subject.on_event(p, offset, events[offset])
        cursor += batch
        outputs.append(subject.flush())
    if not marker_first:
        for p, events in enumerate(partitions):
            subject.on_tick(p, watermark_message(end, len(events)))
    outputs.append(subject.flush(force_snapshots=True))
    return outputs


def test_markers_that_overtake_the_events_and_batch_sizes_change_no_outcome() -> None:
    partitions, end = recorded()
    in_order = outcome_ids(run(partitions, end, marker_first=False, batch=10_000))
    assert len(in_order) > 50 and len(set(in_order)) == len(in_order)
    assert outcome_ids(run(partitions, end, marker_first=True, batch=10_000)) == in_order
    assert outcome_ids(run(partitions, end, marker_first=True, batch=7)) == in_order


def test_the_last_state_of_each_ticket_and_the_final_figures_do_not_depend_on_batches() -> None:
    partitions, end = recorded()

    def finals(outputs: list[Outputs]) -> tuple[dict[bytes, bytes], dict[str, object]]:
        states = {key: value for out in outputs for key, value in out.states}
        figures = {key.decode(): json.loads(value)["data"]["value"] for out in outputs for key, value in out.snapshots}
        return states, figures

    big_states, big_figures = finals(run(partitions, end, marker_first=False, batch=10_000))
    small_states, small_figures = finals(run(partitions, end, marker_first=False, batch=25))
    assert big_states == small_states and len(big_states) > 20
    common = big_figures.keys() & small_figures.keys()
    assert len(common) > 200 and {k: big_figures[k] for k in common} == {k: small_figures[k] for k in common}
    # the instantaneous figures go out even when no event changed them (zeros at the end)
    for figures in (big_figures, small_figures):
        assert {"tickets.open|now|", "calls.waiting|now|", "calls.agents_on_call|now|"} <= figures.keys()


def test_end_of_input_holds_a_marker_until_its_events_are_read() -> None:
    eoi = EndOfInput()
    assert eoi.arrived(0, 500, events_end=3) is None  # nothing read yet
    assert eoi.read(0, 0) is None and eoi.read(0, 1) is None
    assert eoi.read(0, 2) == 500  # offset 2 read: the end is 3
    assert eoi.arrived(1, 700, events_end=None) == 700  # an old-style marker: at once
    eoi.read_up_to(2, 10)  # known position after a restart
    assert eoi.knows(2) and eoi.arrived(2, 900, events_end=10) == 900
    assert read_tick(watermark_message(datetime.fromisoformat("2025-03-04T10:00:00+04:00"), 7))[2] == 7


def test_an_invalid_last_event_does_not_hold_the_end_of_input_marker() -> None:
    partitions, end = recorded()
    events = partitions[0]
    subject = engine()
    subject.on_tick(0, watermark_message(end, len(events) + 1))  # one more record: an invalid one
    for offset, line in enumerate(events):
        subject.on_event(0, offset, line)
    assert subject.sla is not None
    held = subject.sla.watermarks.get(0)
    assert held is not None and held < to_us(end)  # still waiting for the last record
    subject.on_event(0, len(events), b'{"not": "an event"}')
    assert subject.counts.unreadable == 1
    assert subject.sla.watermarks.get(0) == to_us(end)  # read: the marker took effect


def test_sla_engines_by_partition_group_feed_one_kpi_aggregator_to_the_same_figures() -> None:
    """`--jobs 2` without a broker: two SLA engines over partitions {0, 2} and {1} forward the
    KPI input events and ticket states of each flush to one `KpiBatch` (as `batch_jobs` does);
    same outcomes, ticket states and final figures as one engine with its KPI aggregator."""
    from schemas import decode_event as decode
    from stream_processors.batch_engine import KpiBatch, kpi_snapshots

    partitions, end = recorded()
    single = run(partitions, end, marker_first=False, batch=40)
    book = load_policies(default_policies_path())
    groups = [BatchEngine(book, KpiConfig(), SnapshotPacer(), with_kpis=False, forward_kpis=True) for _ in range(2)]
    kpi, pacer = KpiBatch(KpiConfig()), SnapshotPacer(min_interval_s=0.0, slow_interval_s=0.0)
    parallel: list[Outputs] = []
    cursor, longest = 0, max(len(events) for events in partitions)
    while cursor <= longest:
        for p, events in enumerate(partitions):
            group = groups[p % 2]
            for offset in range(cursor, min(cursor + 40, len(events))):
                group.on_event(p, offset, events[offset])
        if cursor + 40 > longest:
            for p, events in enumerate(partitions):
                groups[p % 2].on_tick(p, watermark_message(end, len(events)))
        for group in groups:
            out = group.flush()
            assert out.snapshots == [] and len(out.kpi_states) == len(out.states)
            for value in out.kpi_events:
                kpi.on_event(decode(value))
            for view in out.kpi_states:
                kpi.on_state(view)
            parallel.append(out)
        parallel.append(Outputs(snapshots=kpi_snapshots(kpi, pacer, force=cursor + 40 > longest)))
        cursor += 40

    def finals(outputs: list[Outputs]) -> tuple[list[str], dict[bytes, bytes], dict[str, object]]:
        states = {key: value for out in outputs for key, value in out.states}
        figures = {
            key.decode(): (json.loads(value)["data"]["value"], json.loads(value)["data"].get("count"))
            for out in outputs
            for key, value in out.snapshots
        }
        zero = {k for k, v in figures.items() if k.startswith("tickets.open|now|") and v in ((0, 0), (0.0, 0))}
        return outcome_ids(outputs), states, {k: v for k, v in figures.items() if k not in zero}

    one, two = finals(single), finals(parallel)
    assert len(one[0]) > 50 and len(one[2]) > 200 and sum(len(out.kpi_events) for out in parallel) > 200
    assert two == one

"""Queueing check: an M/M/c call centre simulated, measured by the KPI state, compared with Erlang C.

The simulation: Poisson arrivals, exponential handle times, c agents serving in order of
arrival (FCFS: each caller takes the agent who is free first), no abandonment, a seeded RNG.
Its `call.offered` / `call.answered` events go through `kpi_state.apply` and a `KpiBook`
exactly as the stream processor feeds them (the ends only free the simulated agents: service
level and ASA do not depend on them), and the measured figures must agree with
`tawasul.domain.erlang`: service level within +-0.02 (absolute), ASA within +-10 % (relative).

Why these tolerances hold: with c = 2 agents at A = 1 erlang (50 % occupancy), a sample of
60,000 calls has a standard error of about 0.005 on the service level and about 3 % on the
ASA (waits are strongly autocorrelated; estimated from 40 independent seeds of the same
simulation), so the bounds are more than 3 standard errors wide.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from schemas import Event, new_event
from tawasul.domain.erlang import (
    ErlangError,
    agents_for,
    average_speed_of_answer,
    erlang_b,
    erlang_c,
    service_level,
)
from tawasul.domain.kpi_state import KpiBook, KpiConfig, SubjectRecord, apply
from tawasul.domain.windows import DUBAI, to_us

AGENTS = 2
LOAD = 1.0
AHT = 180.0
THRESHOLD = 20
CALLS = 60_000
START = datetime(2025, 1, 1, tzinfo=DUBAI)


def test_erlang_formulas_by_hand() -> None:
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(2, 1.0) == pytest.approx(0.2)
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = utilisation
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert average_speed_of_answer(1, 0.5, 100.0) == pytest.approx(100.0)  # rho/(1-rho) * AHT
    assert service_level(2, 1.0, 20, 180.0) == pytest.approx(1 - math.exp(-20 / 180) / 3)
    assert service_level(2, 1.0, 0, 180.0) == pytest.approx(2 / 3)
    # a classic textbook case: 100 calls per half hour of 180 s = 10 erlangs
    assert erlang_c(11, 10.0) == pytest.approx(0.6821, abs=1e-4)
    assert agents_for(10.0, 0.8, 20, 180.0) == 14
    assert service_level(14, 10.0, 20, 180.0) >= 0.8 > service_level(13, 10.0, 20, 180.0)
    with pytest.raises(ErlangError, match="unstable"):
        erlang_c(3, 3.0)
    with pytest.raises(ErlangError):
        erlang_b(0, 1.0)


def simulate(seed: int, calls: int, agents: int, load: float, aht: float) -> Iterator[tuple[int, float, float, float]]:
    """(call number, offered, answered, ended) in seconds after the start, in order of arrival."""
    rng = random.Random(seed)
    free_at = [0.0] * agents
    now = 0.0
    for number in range(calls):
        now += rng.expovariate(load / aht)
        start = max(now, heapq.heappop(free_at))
        end = start + rng.expovariate(1.0 / aht)
        heapq.heappush(free_at, end)
        yield number, now, start, end


def call_events(seed: int) -> list[Event]:
    events: list[Event] = []
    for number, offered, answered, _ in simulate(seed, CALLS, AGENTS, LOAD, AHT):
        subject = f"C-{number:06d}"
        for kind, at, data in (
            ("call.offered", offered, {"queue": "mmc"}),
            ("call.answered", answered, {"queue": "mmc", "agent": "a"}),
        ):
            events.append(
                new_event(kind, subject, START + timedelta(seconds=at), data, "/sim/mmc", id=f"{subject}:{kind}")
            )
    events.sort(key=lambda e: e.time)
    return events


def test_measured_service_level_and_asa_agree_with_erlang_c() -> None:
    events = call_events(seed=2025)
    config = KpiConfig(default_threshold_seconds=THRESHOLD)
    book = KpiBook(config)
    records: dict[str, SubjectRecord] = {}
    for event in events:
        book.advance(to_us(event.time), records.get)
        record = apply(records.get(event.subject), event)
        assert record is not None
        records[event.subject] = record
        book.update(event.subject, record)
    assert events[-1].time < datetime(2025, 7, 1, tzinfo=DUBAI)  # everything lies in the half-year
    figures = {r.figure: r for r in book.window_rows((("queue", "mmc"),)) if r.window == "half_year"}
    assert figures["calls.offered"].value == CALLS and figures["calls.abandoned"].value == 0
    measured_sl = figures["calls.service_level"].value
    measured_asa = figures["calls.average_speed_of_answer_seconds"].value
    assert measured_sl is not None and measured_asa is not None
    expected_sl = service_level(AGENTS, LOAD, THRESHOLD, AHT)
    expected_asa = average_speed_of_answer(AGENTS, LOAD, AHT)
    assert expected_sl == pytest.approx(0.7017, abs=1e-4) and expected_asa == pytest.approx(60.0)
    assert abs(measured_sl - expected_sl) <= 0.02, (measured_sl, expected_sl)
    assert abs(measured_asa / expected_asa - 1) <= 0.10, (measured_asa, expected_asa)
    assert figures["calls.answered"].value == CALLS
    # no one is left waiting once the last call has been answered
    now = {r.figure: r.value for r in book.now_rows() if r.scope == ()}
    assert now["calls.waiting"] == 0

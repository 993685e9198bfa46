"""MetricsFeed: pipeline messages -> the Prometheus metrics of `tawasul.infra.metrics`."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from prometheus_client import generate_latest

from schemas import CHANNELS, KINDS, Event, new_event
from sinks.db.records import TicketState
from sinks.metrics_feed import (
    ALL,
    KPI_FIGURES,
    LabelLimits,
    MetricsFeed,
    MetricsFeedError,
    sla_state_of,
)
from tawasul.domain.kpi_state import (
    CALL_FIGURES,
    NOW_FIGURES,
    SURVEY_FIGURES,
    VISIT_FIGURES,
    Row,
    Tally,
    families,
    scope,
    tally_rows,
)
from tawasul.domain.windows import NOW
from tawasul.infra.metrics import Metrics

AS_OF = "2025-03-04T10:15:00+04:00"


def ticket_state(
    ticket_id: str,
    version: int,
    *,
    status: str = "open",
    channel: str = "crm",
    kind: str = "request",
    priority: str = "normal",
    policy: str | None = "crm-standard",
    resolution: str = "running",
    warned: bool = False,
    breached: bool = False,
) -> dict[str, Any]:
    targets = (
        {}
        if policy is None
        else {
            "first_response": {
                "deadline": "2025-03-04T14:00:00+04:00",
                "state": "met",
                "warned": False,
                "breached": False,
            },
            "resolution": {
                "deadline": "2025-03-05T14:00:00+04:00",
                "state": resolution,
                "warned": warned,
                "breached": breached,
            },
        }
    )
    return {
        "ticket_id": ticket_id,
        "channel": channel,
        "kind": kind,
        "category": "mosque.cleaning",
        "priority": priority,
        "department": None,
        "status": status,
        "policy": policy,
        "opened_at": "2025-03-04T09:00:00+04:00",
        "resolved_at": None,
        "closed_at": None,
        "updated_at": "2025-03-04T10:00:00+04:00",
        "version": version,
        "targets": targets,
    }


def outcome(
    kind_of_event: str,
    ticket_id: str,
    *,
    target: str = "resolution",
    channel: str = "complaints_platform",
    kind: str = "facility_report",
    event_id: str | None = None,
) -> Event:
    return new_event(
        f"sla.{kind_of_event}",
        ticket_id,
        "2025-03-04T13:00:00+04:00",
        {
            "ticket_id": ticket_id,
            "target": target,
            "policy": "mosque-urgent",
            "deadline": "2025-03-04T13:00:00+04:00",
            "channel": channel,
            "kind": kind,
            "category": "mosque.air_conditioning",
            "priority": "urgent",
        },
        "/stream-processors/sla",
        id=event_id or f"{ticket_id}:{target}:sla.{kind_of_event}:0",
    )


def kpi(figure: str, window: str, scope: dict[str, str], value: float | None, count: int | None = None) -> Event:
    return new_event(
        "kpi.snapshot",
        f"{figure}/{window}",
        AS_OF,
        {"figure": figure, "window": window, "scope": scope, "value": value, "count": count, "as_of": AS_OF},
        "/stream-processors/kpi",
    )


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def open_count(
    metrics: Metrics, sla_state: str, *, channel: str = "crm", kind: str = "request", priority: str = "normal"
) -> float | None:
    return sample(metrics, "tawasul_tickets_open", channel=channel, kind=kind, priority=priority, sla_state=sla_state)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def feed(metrics: Metrics) -> MetricsFeed:
    return MetricsFeed(metrics)


def test_ticket_moves_between_sla_state_series_and_leaves_on_close(feed: MetricsFeed, metrics: Metrics) -> None:
    feed.observe_ticket_state(ticket_state("T-1", 1))
    feed.observe_ticket_state(ticket_state("T-2", 1))
    assert open_count(metrics, "on_track") == 2
    feed.observe_ticket_state(ticket_state("T-1", 2, warned=True))
    assert (open_count(metrics, "on_track"), open_count(metrics, "at_risk")) == (1, 1)
    feed.observe_ticket_state(ticket_state("T-1", 3, resolution="breached", warned=True, breached=True))
    assert (open_count(metrics, "at_risk"), open_count(metrics, "breached")) == (0, 1)
    feed.observe_ticket_state(ticket_state("T-1", 4, status="closed", resolution="breached", breached=True))
    assert (open_count(metrics, "on_track"), open_count(metrics, "breached")) == (1, 0)
    assert feed.open_tickets() == {("crm", "request", "normal", "on_track"): 1}


def test_older_versions_are_ignored_and_same_version_is_idempotent(feed: MetricsFeed, metrics: Metrics) -> None:
    feed.observe_ticket_state(ticket_state("T-1", 5, resolution="breached", breached=True))
    feed.observe_ticket_state(ticket_state("T-1", 3))
    feed.observe_ticket_state(ticket_state("T-1", 5, resolution="breached", breached=True))
    assert open_count(metrics, "breached") == 1
    assert open_count(metrics, "on_track") is None
    feed.observe_ticket_state(ticket_state("T-1", 6, status="closed"))
    feed.observe_ticket_state(ticket_state("T-1", 4))  # a stale replay after close changes nothing
    assert open_count(metrics, "breached") == 0
    assert feed.open_tickets() == {}


def test_between_two_events_the_sla_state_only_moves_forward(feed: MetricsFeed, metrics: Metrics) -> None:
    """A warning and a breach fired by the clock keep the ticket's version; a state of that
    version delivered again late (a redelivery after a restart) takes neither back."""
    feed.observe_ticket_state(ticket_state("T-1", 2))
    feed.observe_ticket_state(ticket_state("T-1", 2, warned=True))
    assert (open_count(metrics, "on_track"), open_count(metrics, "at_risk")) == (0, 1)
    feed.observe_ticket_state(ticket_state("T-1", 2, resolution="breached", warned=True, breached=True))
    assert (open_count(metrics, "at_risk"), open_count(metrics, "breached")) == (0, 1)
    feed.observe_ticket_state(ticket_state("T-1", 2))  # late
    feed.observe_ticket_state(ticket_state("T-1", 2, warned=True))  # late
    assert (open_count(metrics, "on_track"), open_count(metrics, "at_risk"), open_count(metrics, "breached")) == (
        0,
        0,
        1,
    )


def test_resolution_reopening_and_priority_change_move_the_ticket(feed: MetricsFeed, metrics: Metrics) -> None:
    feed.observe_ticket_state(ticket_state("T-9", 1))
    feed.observe_ticket_state(ticket_state("T-9", 2, status="resolved", resolution="met"))
    assert open_count(metrics, "on_track") == 0
    feed.observe_ticket_state(ticket_state("T-9", 3))  # reopened
    assert open_count(metrics, "on_track") == 1
    feed.observe_ticket_state(ticket_state("T-9", 4, priority="urgent"))
    assert open_count(metrics, "on_track") == 0
    assert open_count(metrics, "on_track", priority="urgent") == 1


def test_ticket_without_policy_has_no_sla_and_bad_labels_are_dropped(feed: MetricsFeed, metrics: Metrics) -> None:
    feed.observe_ticket_state(ticket_state("T-3", 1, policy=None, channel="web", kind="inquiry"))
    assert open_count(metrics, "none", channel="web", kind="inquiry") == 1
    feed.observe_ticket_state(ticket_state("T-4", 1, channel="fax"))
    assert feed.dropped == 1
    assert sum(feed.open_tickets().values()) == 1
    with pytest.raises(MetricsFeedError):
        feed.observe_ticket_state({"status": "open"})


def test_open_ticket_cap_drops_new_tickets_and_closing_frees_a_place(metrics: Metrics) -> None:
    feed = MetricsFeed(metrics, LabelLimits(open_tickets=2, closed_tickets=1))
    for number in range(3):
        feed.observe_ticket_state(ticket_state(f"T-{number}", 1))
    assert open_count(metrics, "on_track") == 2
    assert feed.dropped == 1
    feed.observe_ticket_state(ticket_state("T-1", 2, status="closed"))
    assert open_count(metrics, "on_track") == 1
    feed.observe_ticket_state(ticket_state("T-2", 1))
    assert open_count(metrics, "on_track") == 2
    feed.observe_ticket_state(ticket_state("T-1", 1))  # a stale replay of a closed ticket
    assert open_count(metrics, "on_track") == 2


def test_250000_open_tickets_are_all_counted(metrics: Metrics) -> None:
    feed = MetricsFeed(metrics)
    state = ticket_state("", 1)
    for number in range(250_000):
        state["ticket_id"] = f"CRM-2025-{number:07d}"
        state["priority"] = ("normal", "high")[number % 2]
        feed.observe_ticket_state(state)
    assert feed.dropped == 0
    assert open_count(metrics, "on_track") == 125_000
    assert open_count(metrics, "on_track", priority="high") == 125_000
    state.update(ticket_id="CRM-2025-0000001", version=2, status="closed")
    feed.observe_ticket_state(state)
    assert open_count(metrics, "on_track", priority="high") == 124_999


def test_memory_per_open_ticket_is_small(metrics: Metrics) -> None:
    """Measured with tracemalloc: what the feed keeps per open ticket (id string included)."""
    feed = MetricsFeed(metrics)
    state = ticket_state("", 1)
    count = 50_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(count):
            state["ticket_id"] = f"CRM-2025-{number:07d}"
            state["version"] = 1_000 + number
            feed.observe_ticket_state(state)
        per_ticket = (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()
    print(f"bytes per open ticket: {per_ticket:.0f}")
    assert open_count(metrics, "on_track") == count
    assert per_ticket < 200


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (ticket_state("a", 1), "on_track"),
        (ticket_state("a", 1, resolution="paused"), "on_track"),
        (ticket_state("a", 1, warned=True), "at_risk"),
        (ticket_state("a", 1, resolution="paused", warned=True), "at_risk"),
        (ticket_state("a", 1, resolution="breached", breached=True), "breached"),
        (ticket_state("a", 1, resolution="running", breached=True), "breached"),
        (ticket_state("a", 1, policy=None), "none"),
    ],
)
def test_sla_state_of(state: dict[str, Any], expected: str) -> None:
    assert sla_state_of(state) == expected


def test_breach_counters_start_at_zero_for_every_channel_kind_and_target(metrics: Metrics) -> None:
    MetricsFeed(metrics)
    for channel in CHANNELS:
        for kind in KINDS:
            for target in ("first_response", "resolution"):
                assert (
                    sample(
                        metrics,
                        "tawasul_sla_outcomes_total",
                        outcome="breached",
                        channel=channel,
                        kind=kind,
                        target=target,
                    )
                    == 0.0
                )
    quiet = Metrics()
    MetricsFeed(quiet, zero_breaches=False)
    assert (
        sample(
            quiet, "tawasul_sla_outcomes_total", outcome="breached", channel="crm", kind="request", target="resolution"
        )
        is None
    )


def test_outcomes_are_counted_once_per_id(feed: MetricsFeed, metrics: Metrics) -> None:
    breach = outcome("breached", "T-7")
    assert feed.observe_outcome(breach) is True
    assert feed.observe_outcome(breach) is False
    assert feed.observe_outcome(breach.to_dict()) is False
    assert feed.observe_outcome(outcome("warning", "T-7")) is True
    assert feed.observe_outcome(outcome("met", "T-8", target="first_response", channel="call", kind="complaint"))
    labels = {"channel": "complaints_platform", "kind": "facility_report", "target": "resolution"}
    assert sample(metrics, "tawasul_sla_outcomes_total", outcome="breached", **labels) == 1
    assert sample(metrics, "tawasul_sla_outcomes_total", outcome="warning", **labels) == 1
    assert (
        sample(
            metrics,
            "tawasul_sla_outcomes_total",
            outcome="met",
            channel="call",
            kind="complaint",
            target="first_response",
        )
        == 1
    )
    with pytest.raises(MetricsFeedError):
        feed.observe_outcome(kpi("calls.service_level", "15m", {"queue": "general"}, 0.8))


def test_outcome_dedupe_memory_is_bounded(metrics: Metrics) -> None:
    feed = MetricsFeed(metrics, LabelLimits(outcome_ids=2))
    for ticket in ("T-1", "T-2", "T-3"):
        feed.observe_outcome(outcome("breached", ticket))
    assert feed.observe_outcome(outcome("breached", "T-3")) is False
    assert feed.observe_outcome(outcome("breached", "T-1")) is True  # forgotten: the oldest id left the memory


def test_every_mapped_kpi_figure_sets_its_gauge(feed: MetricsFeed, metrics: Metrics) -> None:
    scopes = {"queue": "general", "channel": "call", "centre": "main_building"}
    for figure, where in KPI_FIGURES.items():
        window = "today" if where.windowed else "now"
        assert feed.observe_kpi(kpi(figure, window, {where.scope_key: scopes[where.scope_key]}, 0.875, 40))
        family = getattr(metrics, where.gauge)._name
        labels = {where.scope_key: scopes[where.scope_key]} | ({"window": window} if where.windowed else {})
        assert sample(metrics, family, **labels) == 0.875, figure
        if where.count_gauge:
            assert sample(metrics, getattr(metrics, where.count_gauge)._name, **labels) == 40


def test_kpi_satisfaction_null_value_and_whole_scope(feed: MetricsFeed, metrics: Metrics) -> None:
    satisfaction = next(name for name, where in KPI_FIGURES.items() if where.gauge == "satisfaction_ratio")
    feed.observe_kpi(kpi(satisfaction, "24h", {"channel": "crm"}, 0.93, 310))
    assert sample(metrics, "tawasul_satisfaction_ratio", channel="crm", window="24h") == 0.93
    assert sample(metrics, "tawasul_survey_responses", channel="crm", window="24h") == 310
    feed.observe_kpi(kpi(satisfaction, "24h", {"channel": "crm"}, None, 0))
    assert sample(metrics, "tawasul_satisfaction_ratio", channel="crm", window="24h") is None
    assert sample(metrics, "tawasul_survey_responses", channel="crm", window="24h") == 0
    feed.observe_kpi(kpi(satisfaction, "24h", {}, 0.97, 900))
    assert sample(metrics, "tawasul_satisfaction_ratio", channel=ALL, window="24h") == 0.97


def test_kpi_labels_stay_bounded(metrics: Metrics) -> None:
    feed = MetricsFeed(metrics, LabelLimits(windows=2, queues=1))
    level = next(name for name, where in KPI_FIGURES.items() if where.gauge == "service_level_ratio")
    assert feed.observe_kpi(kpi(level, "15m", {"queue": "general"}, 0.8))
    assert feed.observe_kpi(kpi(level, "1h", {"queue": "general"}, 0.8))
    assert not feed.observe_kpi(kpi(level, "2h", {"queue": "general"}, 0.8))
    assert not feed.observe_kpi(kpi(level, "15m", {"queue": "zakat"}, 0.8))
    assert not feed.observe_kpi(kpi(level, "15m", {"queue": "general", "language": "ar"}, 0.8))
    assert not feed.observe_kpi(kpi(level, "15m", {"agent": "a-1"}, 0.8))
    satisfaction = next(name for name, where in KPI_FIGURES.items() if where.gauge == "satisfaction_ratio")
    assert not feed.observe_kpi(kpi(satisfaction, "15m", {"channel": "telegram"}, 0.9))
    assert not feed.observe_kpi(kpi("calls.unheard_of", "15m", {}, 1.0))
    assert feed.dropped == 3
    assert sample(metrics, "tawasul_call_service_level_ratio", queue="zakat", window="15m") is None


def test_observe_event_dispatches_output_events_and_ignores_the_rest(feed: MetricsFeed, metrics: Metrics) -> None:
    level = next(name for name, where in KPI_FIGURES.items() if where.gauge == "service_level_ratio")
    assert feed.observe_event(outcome("breached", "T-5").to_dict())
    assert feed.observe_event(kpi(level, "15m", {"queue": "zakat"}, 0.5))
    opened = new_event(
        "ticket.opened",
        "T-5",
        AS_OF,
        {"channel": "crm", "kind": "request", "category": "zakat.request", "priority": "normal"},
        "/channels/crm",
    )
    assert feed.observe_event(opened) is False
    assert sample(metrics, "tawasul_call_service_level_ratio", queue="zakat", window="15m") == 0.5
    with pytest.raises(MetricsFeedError):
        feed.observe_event({"type": "sla.breached"})


def test_observe_record_takes_what_the_database_sink_decodes(feed: MetricsFeed, metrics: Metrics) -> None:
    state = TicketState.from_dict(ticket_state("T-11", 2, resolution="breached", breached=True, channel="web"))
    assert feed.observe_record(state) is True
    assert feed.observe_record(ticket_state("T-12", 1, channel="web")) is True
    assert feed.observe_record(outcome("breached", "T-11", channel="web", kind="request")) is True
    assert feed.observe_record(b"not a record") is False
    assert open_count(metrics, "breached", channel="web") == 1
    assert open_count(metrics, "on_track", channel="web") == 1
    assert (
        sample(
            metrics,
            "tawasul_sla_outcomes_total",
            outcome="breached",
            channel="web",
            kind="request",
            target="resolution",
        )
        == 1
    )


def test_exported_figures_are_figures_the_kpi_processor_publishes() -> None:
    published = set(CALL_FIGURES + SURVEY_FIGURES + VISIT_FIGURES + NOW_FIGURES)
    assert set(KPI_FIGURES) <= published


def test_rows_of_the_kpi_processor_land_in_their_gauges(feed: MetricsFeed, metrics: Metrics) -> None:
    tally = Tally(offered=10, answered=8, abandoned=2, within=6, wait_us=80_000_000, responses=50, satisfied=49)
    rows = [
        *tally_rows(tally, "24h", scope(queue="zakat"), families(scope(queue="zakat"))),
        *tally_rows(tally, "24h", scope(channel="call"), families(scope(channel="call"))),
        *tally_rows(tally, "24h", scope(agent="a-17"), families(scope(agent="a-17"))),
        Row("calls.waiting", NOW, scope(queue="zakat"), 3.0, 3),
        Row("visits.waiting", NOW, scope(centre="main_building"), 4.0, 4),
    ]
    for row in rows:
        feed.observe_kpi(kpi(row.figure, row.window, dict(row.scope), row.value, row.count))
    assert sample(metrics, "tawasul_call_service_level_ratio", queue="zakat", window="24h") == 0.6
    assert sample(metrics, "tawasul_call_abandon_ratio", queue="zakat", window="24h") == 0.2
    assert sample(metrics, "tawasul_call_average_speed_of_answer_seconds", queue="zakat", window="24h") == 10.0
    assert sample(metrics, "tawasul_satisfaction_ratio", channel="call", window="24h") == 0.98
    assert sample(metrics, "tawasul_survey_responses", channel="call", window="24h") == 50
    assert sample(metrics, "tawasul_calls_waiting", queue="zakat") == 3
    assert sample(metrics, "tawasul_walk_in_waiting", centre="main_building") == 4
    exposition = generate_latest(metrics.registry).decode()
    assert "a-17" not in exposition  # satisfaction per agent is not exported, nor mistaken for "all"
    assert sample(metrics, "tawasul_satisfaction_ratio", channel=ALL, window="24h") is None

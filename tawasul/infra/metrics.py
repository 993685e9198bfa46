"""Every Prometheus metric Tawasul exposes, declared once.

Names follow `tawasul_<what>_<unit>`, counters end in `_total`, labels are bounded sets
(channel, kind, type, target, queue, centre, window, reason, stage, partition, status): never ids.

Each process builds its own `Metrics` on a registry it owns, for its role:

```python
metrics = Metrics(role="worker")     # registers the worker's metrics, and only those
metrics.consumer_lag.labels(...)     # the sink's lag: a worker never touches it, never exports it
```

A role's metrics are registered at once (so a scrape shows them from the start); any other
metric is registered the first time the process uses it (`Metrics()` without a role, as in a
replay that runs every stage in one process, registers only what it uses). So a process never
exports a figure it does not maintain: the worker and the gateway export no `tawasul_database_up`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final, Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

Role = Literal["sink", "worker", "gateway", "wallboard"]
ROLE_NAMES: Final[tuple[str, ...]] = get_args(Role)

_Factory = Callable[[CollectorRegistry], Any]


def _counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> _Factory:
    return lambda registry: Counter(name, doc, list(labels), registry=registry)


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> _Factory:
    return lambda registry: Gauge(name, doc, list(labels), registry=registry)


def _histogram(
    name: str, doc: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] = LATENCY_BUCKETS
) -> _Factory:
    return lambda registry: Histogram(name, doc, list(labels), buckets=buckets, registry=registry)


DECLARED: Final[dict[str, _Factory]] = {
    # intake (gateway, file and adapter publishers; the sink dead-letters what it cannot decode)
    "events_accepted": _counter(
        "tawasul_events_accepted_total", "Valid events published to Kafka.", ("channel", "type")
    ),
    "events_rejected": _counter(
        "tawasul_events_rejected_total", "Invalid events rejected at intake.", ("source_kind", "reason")
    ),
    "dead_letters": _counter(
        "tawasul_dead_letters_total", "Records written to the dead-letter topic.", ("source_kind",)
    ),
    "sla_ticks_ignored": _counter(
        "tawasul_sla_ticks_ignored_total",
        "Replay end-of-input markers on tawasul.sla.ticks the SLA engine ignored (reason: live, other_run).",
        ("reason",),
    ),
    "duplicates": _counter(
        "tawasul_duplicate_events_total", "Events dropped because their id was already seen.", ("stage",)
    ),
    "gateway_requests": _counter(
        "tawasul_gateway_requests_total", "HTTP ingest requests by answer status.", ("status",)
    ),
    "gateway_refusals": _counter(
        "tawasul_gateway_refusals_total",
        "HTTP ingest requests the gateway refused, by reason (invalid_event, unauthorized, forbidden, "
        "too_large, unsupported_media_type, rate_limited, unavailable, other).",
        ("reason",),
    ),
    "conflicting_duplicates": _counter(
        "tawasul_conflicting_duplicates_total",
        "Events whose id was already stored with other content: dead-lettered, not stored.",
        ("stage",),
    ),
    "gateway_auth_refusals": _counter(
        "tawasul_gateway_auth_refusals_total",
        "Gateway requests refused with 401, by reason (missing, bad_signature, stale, replayed, ...).",
        ("reason",),
    ),
    "gateway_rate_limited": _counter(
        "tawasul_gateway_rate_limited_total",
        "Gateway requests refused with 429 by their adapter's rate limit.",
        ("adapter",),
    ),
    "gateway_forbidden_events": _counter(
        "tawasul_gateway_forbidden_events_total",
        "Events the gateway refused with 403: a type, channel or source their adapter may not send.",
        ("adapter",),
    ),
    # tickets and SLA (the sink)
    "tickets_open": _gauge("tawasul_tickets_open", "Open tickets now.", ("channel", "kind", "priority", "sla_state")),
    "sla_outcomes": _counter(
        "tawasul_sla_outcomes_total",
        "SLA outcomes (warning, breached, met, breach_withdrawn, warning_withdrawn) stored by the sink, each once.",
        ("outcome", "channel", "kind", "target"),
    ),
    # the worker's SLA engine
    "sla_outcomes_emitted": _counter(
        "tawasul_sla_outcomes_emitted_total",
        "SLA outcome events the worker's SLA engine published (at least once: one may be published again "
        "after a restart).",
        ("outcome", "channel", "kind", "target"),
    ),
    "ignored_after_close": _counter(
        "tawasul_events_after_close_total", "Ticket events ignored because the ticket was closed."
    ),
    "closed_tickets_expired": _counter(
        "tawasul_closed_tickets_expired_total",
        "Closed tickets removed from the SLA table after TAWASUL_CLOSED_RETENTION (tombstones written).",
    ),
    # satisfaction and contact centre (the sink, from the KPI snapshots)
    "satisfaction_ratio": _gauge(
        "tawasul_satisfaction_ratio", "Share of satisfied survey responses.", ("channel", "window")
    ),
    "survey_responses": _gauge("tawasul_survey_responses", "Survey responses in the window.", ("channel", "window")),
    "service_level_ratio": _gauge(
        "tawasul_call_service_level_ratio",
        "Calls answered within the threshold / (answered + abandoned).",
        ("queue", "window"),
    ),
    "asa_seconds": _gauge(
        "tawasul_call_average_speed_of_answer_seconds", "Average speed of answer.", ("queue", "window")
    ),
    "abandon_ratio": _gauge("tawasul_call_abandon_ratio", "Abandoned / offered calls.", ("queue", "window")),
    "calls_waiting": _gauge("tawasul_calls_waiting", "Calls waiting in the queue now.", ("queue",)),
    "walk_in_waiting": _gauge("tawasul_walk_in_waiting", "Visitors waiting at a centre now.", ("centre",)),
    # pipeline health: the sink
    "consumer_lag": _gauge(
        "tawasul_consumer_lag_messages", "Messages the sink has not yet consumed, per topic.", ("stage", "topic")
    ),
    "sink_batch_seconds": _histogram(
        "tawasul_sink_batch_duration_seconds", "Time to store one batch in the database.", buckets=BATCH_BUCKETS
    ),
    "sink_rows": _counter("tawasul_sink_rows_written_total", "Rows written by the database sink.", ("table",)),
    "db_errors": _counter("tawasul_database_errors_total", "Database errors seen by the sink.", ("kind",)),
    "db_up": _gauge("tawasul_database_up", "1 while the sink can reach its database, else 0."),
    # pipeline health: the worker
    "processing_delay": _histogram(
        "tawasul_event_processing_delay_seconds",
        "Delay from an event's arrival in Kafka to its processing.",
        ("stage",),
    ),
    "deadline_delay": _histogram(
        "tawasul_sla_deadline_delay_seconds", "Delay from an SLA deadline to its emitted breach or warning."
    ),
    "worker_lag": _gauge(
        "tawasul_worker_consumer_lag_messages",
        "Input messages of a stage (sla, kpis) not yet processed, per input partition of tawasul.events.",
        ("stage", "partition"),
    ),
    "worker_event_age": _gauge(
        "tawasul_worker_event_age_seconds",
        "Seconds since the Kafka timestamp of the newest input event a stage (sla, kpis) processed, per "
        "input partition (grows while the input is idle too: read it together with the lag).",
        ("stage", "partition"),
    ),
    "worker_held_writes": _gauge(
        "tawasul_worker_held_writes",
        "Input messages of the SLA engine whose table writes wait for the broker's confirmation of their "
        "outcome events.",
    ),
    # the wall display
    "wallboard_reads": _counter(
        "tawasul_wallboard_board_requests_total",
        "Board requests (/api/wallboard) the wall display answered, by result (ok, unavailable).",
        ("result",),
    ),
}

ROLES: Final[dict[str, tuple[str, ...]]] = {
    "sink": (
        "tickets_open",
        "sla_outcomes",
        "satisfaction_ratio",
        "survey_responses",
        "service_level_ratio",
        "asa_seconds",
        "abandon_ratio",
        "calls_waiting",
        "walk_in_waiting",
        "consumer_lag",
        "sink_batch_seconds",
        "sink_rows",
        "db_errors",
        "db_up",
        "dead_letters",
        "events_rejected",
        "conflicting_duplicates",
    ),
    "worker": (
        "sla_outcomes_emitted",
        "ignored_after_close",
        "closed_tickets_expired",
        "duplicates",
        "sla_ticks_ignored",
        "dead_letters",
        "processing_delay",
        "deadline_delay",
        "worker_lag",
        "worker_event_age",
        "worker_held_writes",
    ),
    "gateway": (
        "events_accepted",
        "events_rejected",
        "dead_letters",
        "gateway_requests",
        "gateway_refusals",
        "gateway_auth_refusals",
        "gateway_rate_limited",
        "gateway_forbidden_events",
    ),
    "wallboard": ("wallboard_reads",),
}
"""What each process role maintains, registered when its `Metrics` is made."""

GATEWAY_REFUSAL_REASONS: Final = (
    "invalid_event",
    "unauthorized",
    "forbidden",
    "too_large",
    "unsupported_media_type",
    "rate_limited",
    "unavailable",
    "other",
)
ROLE_SERIES: Final[dict[str, tuple[tuple[str, dict[str, str]], ...]]] = {
    "sink": (
        ("dead_letters", {"source_kind": "sink"}),
        *(("db_errors", {"kind": kind}) for kind in ("unavailable", "error", "rejected_row")),
    ),
    "worker": (("duplicates", {"stage": "sla"}), ("dead_letters", {"source_kind": "processor"})),
    "gateway": (
        ("dead_letters", {"source_kind": "http"}),
        *(("gateway_refusals", {"reason": reason}) for reason in GATEWAY_REFUSAL_REASONS),
    ),
    "wallboard": tuple(("wallboard_reads", {"result": result}) for result in ("ok", "unavailable")),
}
"""Counter series each role exports at 0 from its start: `increase()` needs a sample before the
first count, otherwise the first dead letter, database error or refusal would raise no alert."""


class Metrics:
    """The metric objects of one process, bound to one registry (a fresh one by default)."""

    events_accepted: Counter
    events_rejected: Counter
    dead_letters: Counter
    sla_ticks_ignored: Counter
    duplicates: Counter
    conflicting_duplicates: Counter
    gateway_requests: Counter
    gateway_refusals: Counter
    gateway_auth_refusals: Counter
    gateway_rate_limited: Counter
    gateway_forbidden_events: Counter
    tickets_open: Gauge
    sla_outcomes: Counter
    sla_outcomes_emitted: Counter
    ignored_after_close: Counter
    closed_tickets_expired: Counter
    satisfaction_ratio: Gauge
    survey_responses: Gauge
    service_level_ratio: Gauge
    asa_seconds: Gauge
    abandon_ratio: Gauge
    calls_waiting: Gauge
    walk_in_waiting: Gauge
    consumer_lag: Gauge
    sink_batch_seconds: Histogram
    sink_rows: Counter
    db_errors: Counter
    db_up: Gauge
    processing_delay: Histogram
    deadline_delay: Histogram
    worker_lag: Gauge
    worker_event_age: Gauge
    worker_held_writes: Gauge
    wallboard_reads: Counter

    def __init__(self, registry: CollectorRegistry | None = None, role: Role | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.role = role
        self._lock = threading.Lock()
        if role is not None:
            if role not in ROLES:
                raise ValueError(f"unknown metrics role {role!r}: one of {', '.join(ROLE_NAMES)}")
            for name in ROLES[role]:
                getattr(self, name)
            for name, labels in ROLE_SERIES[role]:
                getattr(self, name).labels(**labels)

    def __getattr__(self, name: str) -> Any:
        factory = DECLARED.get(name)
        if factory is None or name.startswith("_"):
            raise AttributeError(f"{type(self).__name__} has no metric {name!r}")
        with self._lock:
            metric = self.__dict__.get(name)
            if metric is None:
                metric = factory(self.registry)
                self.__dict__[name] = metric
        return metric

    def declare_all(self) -> Metrics:
        """Register every declared metric (for tests and documentation)."""
        for name in DECLARED:
            getattr(self, name)
        return self

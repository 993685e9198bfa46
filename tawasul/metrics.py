"""Every Prometheus metric Tawasul exposes, declared once.

Names follow `tawasul_<what>_<unit>`, counters end in `_total`, labels are bounded sets
(channel, kind, type, target, queue, centre, window, reason, stage): never ids.
Each process builds its own `Metrics` on a registry it owns, so tests and several
pipelines in one process never share state.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The metric objects of one process, bound to one registry (a fresh one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or CollectorRegistry()
        # intake
        self.events_accepted = Counter(
            "tawasul_events_accepted_total", "Valid events published to Kafka.",
            ["channel", "type"], registry=registry)
        self.events_rejected = Counter(
            "tawasul_events_rejected_total", "Invalid events rejected at intake.",
            ["source_kind", "reason"], registry=registry)
        self.dead_letters = Counter(
            "tawasul_dead_letters_total", "Records written to the dead-letter topic.",
            ["source_kind"], registry=registry)
        self.sla_ticks_ignored = Counter(
            "tawasul_sla_ticks_ignored_total",
            "Replay end-of-input markers on tawasul.sla.ticks the SLA engine ignored (reason: live, other_run).",
            ["reason"], registry=registry)
        self.duplicates = Counter(
            "tawasul_duplicate_events_total", "Events dropped because their id was already seen.",
            ["stage"], registry=registry)
        self.gateway_requests = Counter(
            "tawasul_gateway_requests_total", "HTTP ingest requests by answer status.",
            ["status"], registry=registry)
        # tickets and SLA
        self.tickets_open = Gauge(
            "tawasul_tickets_open", "Open tickets now.",
            ["channel", "kind", "priority", "sla_state"], registry=registry)
        self.sla_outcomes = Counter(
            "tawasul_sla_outcomes_total", "SLA outcomes (warning, breached, met) stored by the sink, each once.",
            ["outcome", "channel", "kind", "target"], registry=registry)
        self.sla_outcomes_emitted = Counter(
            "tawasul_sla_outcomes_emitted_total",
            "SLA outcome events the worker's SLA engine published (at least once: one may be published again "
            "after a restart).",
            ["outcome", "channel", "kind", "target"], registry=registry)
        self.ignored_after_close = Counter(
            "tawasul_events_after_close_total", "Ticket events ignored because the ticket was closed.",
            registry=registry)
        # satisfaction and contact centre
        self.satisfaction_ratio = Gauge(
            "tawasul_satisfaction_ratio", "Share of satisfied survey responses.",
            ["channel", "window"], registry=registry)
        self.survey_responses = Gauge(
            "tawasul_survey_responses", "Survey responses in the window.",
            ["channel", "window"], registry=registry)
        self.service_level_ratio = Gauge(
            "tawasul_call_service_level_ratio", "Calls answered within the threshold / (answered + abandoned).",
            ["queue", "window"], registry=registry)
        self.asa_seconds = Gauge(
            "tawasul_call_average_speed_of_answer_seconds", "Average speed of answer.",
            ["queue", "window"], registry=registry)
        self.abandon_ratio = Gauge(
            "tawasul_call_abandon_ratio", "Abandoned / offered calls.",
            ["queue", "window"], registry=registry)
        self.calls_waiting = Gauge(
            "tawasul_calls_waiting", "Calls waiting in the queue now.", ["queue"], registry=registry)
        self.walk_in_waiting = Gauge(
            "tawasul_walk_in_waiting", "Visitors waiting at a centre now.", ["centre"], registry=registry)
        # pipeline health
        self.consumer_lag = Gauge(
            "tawasul_consumer_lag_messages", "Messages not yet consumed, per stage and topic.",
            ["stage", "topic"], registry=registry)
        self.processing_delay = Histogram(
            "tawasul_event_processing_delay_seconds", "Delay from an event's arrival in Kafka to its processing.",
            ["stage"], buckets=LATENCY_BUCKETS, registry=registry)
        self.deadline_delay = Histogram(
            "tawasul_sla_deadline_delay_seconds", "Delay from an SLA deadline to its emitted breach or warning.",
            buckets=LATENCY_BUCKETS, registry=registry)
        self.sink_batch_seconds = Histogram(
            "tawasul_sink_batch_duration_seconds", "Time to store one batch in the database.",
            buckets=BATCH_BUCKETS, registry=registry)
        self.sink_rows = Counter(
            "tawasul_sink_rows_written_total", "Rows written by the database sink.", ["table"], registry=registry)
        self.db_errors = Counter(
            "tawasul_database_errors_total", "Database errors seen by the sink.", ["kind"], registry=registry)
        self.db_up = Gauge(
            "tawasul_database_up", "1 while the sink can reach its database, else 0.", registry=registry)

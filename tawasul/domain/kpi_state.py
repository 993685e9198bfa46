"""The live KPIs' domain, by concept (this module re-exports them for its many callers):

* `kpi_records`: per-subject facts (`SubjectRecord`) and `apply(record, event)`;
* `kpi_ticket_state`: the ticket-state messages as the KPIs read them (`apply_ticket_state`);
* `kpi_tallies`: the contact rules, one per outcome (`call_tally`, `visit_tally`, `survey_tally`),
  shared with the period report;
* `kpi_contributions`: what a subject adds to which scope and when (`contributions`);
* `kpi_rows`: the published figures (`Row`, `tally_rows`);
* `kpi_book`: `KpiBook`, the sums per scope and window and the instantaneous figures;
* `kpi_fold`: the fold of events and ticket states into records and book, over a store.
"""

from __future__ import annotations

from tawasul.domain.kpi_book import KpiBook, Lookup, rebuild
from tawasul.domain.kpi_contributions import (
    Contribution,
    Live,
    Scope,
    contributions,
    expiry_us,
    live_status,
    pending_deadline_us,
    scope,
    survey_scopes,
)
from tawasul.domain.kpi_records import (
    KPI_EVENT_TYPES,
    Backlog,
    KpiStateError,
    Stamp,
    SubjectRecord,
    Survey,
    apply,
)
from tawasul.domain.kpi_rows import (
    CALL_FIGURES,
    NOW_FIGURES,
    SURVEY_FIGURES,
    VISIT_FIGURES,
    Row,
    families,
    scope_key,
    snapshot_key,
    tally_rows,
)
from tawasul.domain.kpi_tallies import (
    ZERO,
    KpiConfig,
    Tally,
    call_tally,
    normalised_points,
    survey_tally,
    visit_tally,
)
from tawasul.domain.kpi_ticket_state import (
    TicketStateView,
    apply_backlog,
    apply_ticket_state,
    read_ticket_state,
    sla_state_of,
    state_rank,
    target_progress,
)

__all__ = [
    "CALL_FIGURES",
    "KPI_EVENT_TYPES",
    "NOW_FIGURES",
    "SURVEY_FIGURES",
    "VISIT_FIGURES",
    "ZERO",
    "Backlog",
    "Contribution",
    "KpiBook",
    "KpiConfig",
    "KpiStateError",
    "Live",
    "Lookup",
    "Row",
    "Scope",
    "Stamp",
    "SubjectRecord",
    "Survey",
    "Tally",
    "TicketStateView",
    "apply",
    "apply_backlog",
    "apply_ticket_state",
    "call_tally",
    "contributions",
    "expiry_us",
    "families",
    "live_status",
    "normalised_points",
    "pending_deadline_us",
    "read_ticket_state",
    "rebuild",
    "scope",
    "scope_key",
    "sla_state_of",
    "snapshot_key",
    "state_rank",
    "survey_scopes",
    "survey_tally",
    "tally_rows",
    "target_progress",
    "visit_tally",
]

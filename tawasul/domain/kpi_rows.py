"""The published figures: their names, Kafka keys and values (`Row`) from a window's `Tally`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from tawasul.domain import kpis
from tawasul.domain.kpi_contributions import Scope
from tawasul.domain.kpi_tallies import Tally

__all__ = [
    "CALL_FIGURES",
    "NOW_FIGURES",
    "SURVEY_FIGURES",
    "VISIT_FIGURES",
    "Row",
    "families",
    "scope_key",
    "snapshot_key",
    "tally_rows",
]

CALL_FIGURES: tuple[str, ...] = (
    "calls.offered",
    "calls.answered",
    "calls.abandoned",
    "calls.answered_within_threshold",
    "calls.service_level",
    "calls.average_speed_of_answer_seconds",
    "calls.average_handle_seconds",
    "calls.abandon_ratio",
)
SURVEY_FIGURES: tuple[str, ...] = (
    "surveys.responses",
    "surveys.satisfied",
    "surveys.satisfaction",
    "surveys.average_score",
)
VISIT_FIGURES: tuple[str, ...] = (
    "visits.checked_in",
    "visits.called",
    "visits.completed",
    "visits.no_show",
    "visits.average_wait_seconds",
)
NOW_FIGURES: tuple[str, ...] = (
    "calls.waiting",
    "calls.longest_wait_seconds",
    "calls.agents_on_call",
    "visits.waiting",
    "visits.longest_wait_seconds",
    "tickets.open",
    "surveys.pending",
)


def scope_key(value: Scope) -> str:
    """`queue=general`, `category=mosque.cleaning,kind=facility_report`; `` for everything.

    Values are percent-encoded (`quote(value, safe="")`) so `|`, `,` and `=` never clash.
    """
    return ",".join(f"{name}={quote(v, safe='')}" for name, v in value)


def snapshot_key(figure: str, window: str, value: Scope) -> str:
    """The Kafka key of a snapshot: `figure|window|scope`, e.g. `calls.service_level|15m|queue=general`."""
    return f"{figure}|{window}|{scope_key(value)}"


@dataclass(frozen=True, slots=True)
class Row:
    """One figure over one window for one scope."""

    figure: str
    window: str
    scope: Scope
    value: float | None
    count: int | None

    @property
    def key(self) -> str:
        return snapshot_key(self.figure, self.window, self.scope)


def _count(figure: str, window: str, where: Scope, n: int) -> Row:
    return Row(figure, window, where, float(n), n)


def tally_rows(tally: Tally, window: str, where: Scope, families: tuple[str, ...]) -> list[Row]:
    """The figures of `families` (`calls`, `surveys`, `visits`) from one window's tally."""
    t = tally
    rows: list[Row] = []
    if "calls" in families:
        decided = t.answered + t.abandoned
        rows += [
            _count("calls.offered", window, where, t.offered),
            _count("calls.answered", window, where, t.answered),
            _count("calls.abandoned", window, where, t.abandoned),
            _count("calls.answered_within_threshold", window, where, t.within),
            Row("calls.service_level", window, where, kpis.service_level(t.within, t.answered, t.abandoned), decided),
            Row(
                "calls.average_speed_of_answer_seconds",
                window,
                where,
                kpis.average_speed_of_answer(timedelta(microseconds=t.wait_us), t.answered),
                t.answered,
            ),
            Row(
                "calls.average_handle_seconds",
                window,
                where,
                kpis.average_handle_seconds(timedelta(microseconds=t.handle_us), t.ended),
                t.ended,
            ),
            Row("calls.abandon_ratio", window, where, kpis.abandon_ratio(t.abandoned, t.answered), decided),
        ]
    if "surveys" in families:
        rows += [
            _count("surveys.responses", window, where, t.responses),
            _count("surveys.satisfied", window, where, t.satisfied),
            Row("surveys.satisfaction", window, where, kpis.satisfaction(t.satisfied, t.responses), t.responses),
            Row("surveys.average_score", window, where, kpis.average(t.score_points, t.responses), t.responses),
        ]
    if "visits" in families:
        rows += [
            _count("visits.checked_in", window, where, t.visits),
            _count("visits.called", window, where, t.called),
            _count("visits.completed", window, where, t.completed),
            _count("visits.no_show", window, where, t.no_show),
            Row(
                "visits.average_wait_seconds",
                window,
                where,
                kpis.average_wait_seconds(timedelta(microseconds=t.visit_wait_us), t.called),
                t.called,
            ),
        ]
    return rows


def families(where: Scope) -> tuple[str, ...]:
    """Which figure families a scope publishes: by the names in it."""
    names = tuple(name for name, _ in where)
    if not names:
        return ("calls", "surveys", "visits")
    if names == ("queue",):
        return ("calls", "surveys")
    if names == ("centre",):
        return ("visits", "surveys")
    return ("surveys",)

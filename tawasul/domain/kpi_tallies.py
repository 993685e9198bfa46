"""The contact rules: what one call, visit or survey adds to the figures, as a `Tally`.

One rule per contact outcome, shared by the live KPIs (`kpi_contributions`, `kpi_book`) and
the period report (`report`): a call is answered when answered and not abandoned before, its
wait and handle time count then; a visit is completed unless a no-show came first; a survey
is satisfied by `kpis.is_satisfied`. Durations are integer microseconds (exact sums).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NamedTuple

from tawasul.domain.kpi_records import SubjectRecord, Survey
from tawasul.domain.kpis import DEFAULT_THRESHOLD_SECONDS, is_satisfied

__all__ = [
    "ZERO",
    "KpiConfig",
    "Tally",
    "call_tally",
    "normalised_points",
    "survey_tally",
    "visit_tally",
]

_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class KpiConfig:
    """Settings of the KPI figures."""

    thresholds: Mapping[str, int] = field(default_factory=dict)
    """Service-level threshold in seconds per queue; others use `default_threshold_seconds`."""
    default_threshold_seconds: int = DEFAULT_THRESHOLD_SECONDS
    survey_hold: timedelta = timedelta(hours=24)
    """How long (event time) a survey waits for its unknown subject before it counts as unmatched."""
    call_stale_after: timedelta = timedelta(hours=4)
    """A call waiting or talking longer than this is taken as lost (no end event) in the live figures."""
    visit_stale_after: timedelta = timedelta(hours=12)
    attribute_retention: timedelta = timedelta(days=35)
    """How long after its latest event a subject's attributes are kept for late surveys."""

    def threshold_us(self, queue: str) -> int:
        return self.thresholds.get(queue, self.default_threshold_seconds) * 1_000_000


class Tally(NamedTuple):
    """Additive counters of one bucket or window; durations in integer microseconds (exact).

    A tuple, so that adding the counters of thousands of buckets stays cheap.
    """

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    within: int = 0
    wait_us: int = 0
    ended: int = 0
    handle_us: int = 0
    responses: int = 0
    satisfied: int = 0
    score_points: int = 0
    visits: int = 0
    called: int = 0
    visit_wait_us: int = 0
    completed: int = 0
    no_show: int = 0

    def __add__(self, other: tuple[int, ...]) -> Tally:  # type: ignore[override]  # element-wise, not concatenation
        return _new_tally(Tally, map(operator.add, self, other))

    def __sub__(self, other: tuple[int, ...]) -> Tally:
        return _new_tally(Tally, map(operator.sub, self, other))

    def __neg__(self) -> Tally:
        return _new_tally(Tally, map(operator.neg, self))

    def __bool__(self) -> bool:
        return any(self)


_new_tally = tuple.__new__
ZERO = Tally()


def normalised_points(score: int, scale: int) -> int:
    """A score on the 5-point scale: 3-point answers map linearly, 1 -> 1, 2 -> 3, 3 -> 5."""
    return 2 * score - 1 if scale == 3 else score


def call_tally(record: SubjectRecord, config: KpiConfig) -> Tally:
    """A call's counters (the record has its `call.offered`); its queue's threshold decides `within`."""
    offered = record.offered
    assert offered is not None
    if record.is_answered:
        answered = record.answered
        assert answered is not None
        wait = max(answered[0] - offered[0], 0)
        within = int(wait <= config.threshold_us(offered[2]))
        ended = handle = 0
        if record.ended is not None:
            ended = 1
            wrap = record.ended[2]
            handle = max(record.ended[0] - answered[0], 0) + (timedelta(seconds=wrap or 0.0) // _US)
        return Tally(offered=1, answered=1, within=within, wait_us=wait, ended=ended, handle_us=handle)
    return Tally(offered=1, abandoned=int(record.abandoned is not None))


def visit_tally(record: SubjectRecord) -> Tally:
    """A visit's counters (the record has its `visit.checked_in`)."""
    checked_in = record.checked_in
    assert checked_in is not None
    called = wait = completed = no_show = 0
    if record.called is not None:
        called, wait = 1, max(record.called[0] - checked_in[0], 0)
    if record.completed is not None and (record.no_show is None or record.completed <= record.no_show):
        completed = 1
    elif record.no_show is not None:
        no_show = 1
    return Tally(visits=1, called=called, visit_wait_us=wait, completed=completed, no_show=no_show)


def survey_tally(survey: Survey) -> Tally:
    """One survey answer's counters."""
    return Tally(
        responses=1,
        satisfied=int(is_satisfied(survey.score, survey.scale)),
        score_points=normalised_points(survey.score, survey.scale),
    )

"""Per-subject KPI facts (calls, visits, tickets, surveys) and what each contributes to the figures.

`apply(record, event)` folds an event into the record of its subject; it is idempotent and
does not depend on the order of arrival (of several events of one type, the earliest by
(time, id) wins, exactly as in `tawasul.domain.report`). `contributions(record, config, as_of)`
says what the subject adds to which scope at which event time:

* a call counts in the window of its `call.offered`, per queue and in total;
* a visit counts in the window of its `visit.checked_in`, per centre and in total;
* a survey counts in the window of its own `time`, under the attributes of its subject
  (ticket: channel, kind, category, department; call: queue, agent; visit: centre). A survey
  whose subject is not known yet is held; once `survey_hold` of event time has passed without
  the subject, it counts as unmatched (and moves to its subject if that appears later).

`KpiBook` sums the contributions per scope over the windows of `tawasul.domain.windows` and
turns them into figures with the formulas of `tawasul.domain.kpis`.
"""

from __future__ import annotations

import heapq
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import quote

from schemas import Event
from tawasul.domain import kpis
from tawasul.domain.errors import DomainError
from tawasul.domain.kpis import DEFAULT_THRESHOLD_SECONDS, is_satisfied
from tawasul.domain.windows import (
    DAY_US,
    HOUR_US,
    MINUTE_US,
    NOW,
    WINDOW_NAMES,
    WindowedSums,
    bucket_ids,
    from_us,
    retention_floors,
    to_us,
    window_ranges,
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
    "Row",
    "Scope",
    "SubjectRecord",
    "Survey",
    "Tally",
    "apply",
    "apply_ticket_state",
    "contributions",
    "expiry_us",
    "families",
    "live_status",
    "normalised_points",
    "pending_deadline_us",
    "rebuild",
    "scope",
    "scope_key",
    "sla_state_of",
    "snapshot_key",
    "survey_scopes",
    "tally_rows",
]

KPI_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "call.offered",
        "call.answered",
        "call.abandoned",
        "call.ended",
        "ticket.opened",
        "visit.checked_in",
        "visit.called",
        "visit.completed",
        "visit.no_show",
        "survey.submitted",
    }
)
"""The input events the KPIs read; the other ticket events reach them through the ticket state."""

Scope = tuple[tuple[str, str], ...]
"""What a figure is restricted to, as sorted (name, value) pairs; `()` is everything."""
_US = timedelta(microseconds=1)
_OPEN_TICKET_RETENTION_US = 10 * 365 * DAY_US


class KpiStateError(DomainError, ValueError):
    """A stored KPI record or a ticket state message could not be read."""


def scope(**attributes: str) -> Scope:
    """A scope from keyword attributes: `scope(queue="general")`."""
    return tuple(sorted(attributes.items()))


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

    def __add__(self, other: tuple[int, ...]) -> Tally:  # type: ignore[override]  # element-wise sum, not tuple concatenation
        return _new_tally(Tally, map(operator.add, self, other))

    def __sub__(self, other: tuple[int, ...]) -> Tally:
        return _new_tally(Tally, map(operator.sub, self, other))

    def __neg__(self) -> Tally:
        return _new_tally(Tally, map(operator.neg, self))

    def __bool__(self) -> bool:
        return any(self)


_new_tally = tuple.__new__
ZERO = Tally()

Stamp = tuple[int, str]
"""(time us, event id): of several events of one type the smallest wins."""


@dataclass(frozen=True, slots=True)
class Survey:
    """One survey answer about the record's subject."""

    id: str
    time_us: int
    score: int
    scale: int
    channel: str


@dataclass(frozen=True, slots=True)
class Backlog:
    """The latest ticket state seen: open or not, and its backlog class."""

    version: int
    open: bool
    channel: str
    kind: str
    priority: str
    sla_state: str


@dataclass(frozen=True, slots=True)
class SubjectRecord:
    """Everything the KPIs know about one ticket, call or visit (the table value)."""

    subject: str
    offered: tuple[int, str, str] | None = None
    """(us, id, queue)"""
    answered: tuple[int, str, str, str] | None = None
    """(us, id, queue, agent)"""
    abandoned: tuple[int, str, str] | None = None
    ended: tuple[int, str, float | None] | None = None
    """(us, id, wrap_up_seconds)"""
    opened: tuple[int, str, str, str, str, str | None] | None = None
    """(us, id, channel, kind, category, department)"""
    checked_in: tuple[int, str, str] | None = None
    """(us, id, centre)"""
    called: Stamp | None = None
    completed: Stamp | None = None
    no_show: Stamp | None = None
    surveys: tuple[Survey, ...] = ()
    backlog: Backlog | None = None
    seen_us: int = 0
    """The latest event time applied (for retention)."""

    @property
    def section(self) -> str | None:
        """`ticket`, `call` or `visit` once the subject's first event is known (ticket first)."""
        if self.opened is not None:
            return "ticket"
        if self.offered is not None:
            return "call"
        if self.checked_in is not None:
            return "visit"
        return None

    @property
    def is_answered(self) -> bool:
        """Answered, and not abandoned before (the report's rule for a call with both)."""
        return self.answered is not None and (self.abandoned is None or self.answered[:2] <= self.abandoned[:2])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; `SubjectRecord.from_dict(r.to_dict()) == r`."""
        out: dict[str, Any] = {"subject": self.subject, "seen_us": self.seen_us}
        for name in _TUPLE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value)
        if self.surveys:
            out["surveys"] = [[s.id, s.time_us, s.score, s.scale, s.channel] for s in self.surveys]
        if self.backlog is not None:
            b = self.backlog
            out["backlog"] = [b.version, b.open, b.channel, b.kind, b.priority, b.sla_state]
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SubjectRecord:
        try:
            values: dict[str, Any] = {name: tuple(raw[name]) for name in _TUPLE_FIELDS if raw.get(name) is not None}
            surveys = tuple(
                Survey(str(i), int(t), int(sc), int(sl), str(ch)) for i, t, sc, sl, ch in raw.get("surveys", ())
            )
            backlog = raw.get("backlog")
            return cls(
                subject=str(raw["subject"]),
                seen_us=int(raw.get("seen_us", 0)),
                surveys=surveys,
                backlog=None
                if backlog is None
                else Backlog(int(backlog[0]), bool(backlog[1]), *(str(v) for v in backlog[2:6])),
                **values,
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise KpiStateError(f"unreadable KPI record: {type(exc).__name__}") from None


_TUPLE_FIELDS: tuple[str, ...] = (
    "offered",
    "answered",
    "abandoned",
    "ended",
    "opened",
    "checked_in",
    "called",
    "completed",
    "no_show",
)


def _earliest(current: tuple[Any, ...] | None, candidate: tuple[Any, ...]) -> tuple[Any, ...]:
    return candidate if current is None or candidate[:2] < current[:2] else current


def apply(record: SubjectRecord | None, event: Event) -> SubjectRecord | None:
    """The record after `event`; idempotent, order-independent; other event types change nothing."""
    kind = event.type
    if kind not in KPI_EVENT_TYPES:
        return record
    current = record or SubjectRecord(subject=event.subject)
    at = to_us(event.time)
    data: Any = event.data  # the fields of the `kind` chosen below (validated by schemas)
    stamp = (at, event.id)
    changes: dict[str, Any]
    if kind == "survey.submitted":
        if any(s.id == event.id for s in current.surveys):
            return current
        survey = Survey(event.id, at, int(data.score), int(data.scale), str(data.channel))
        changes = {"surveys": tuple(sorted((*current.surveys, survey), key=lambda s: (s.time_us, s.id)))}
    elif kind == "call.offered":
        changes = {"offered": _earliest(current.offered, (*stamp, str(data.queue)))}
    elif kind == "call.answered":
        changes = {"answered": _earliest(current.answered, (*stamp, str(data.queue), str(data.agent)))}
    elif kind == "call.abandoned":
        changes = {"abandoned": _earliest(current.abandoned, (*stamp, str(data.queue)))}
    elif kind == "call.ended":
        wrap = None if data.wrap_up_seconds is None else float(data.wrap_up_seconds)
        changes = {"ended": _earliest(current.ended, (*stamp, wrap))}
    elif kind == "ticket.opened":
        department = None if data.department is None else str(data.department)
        payload = (*stamp, str(data.channel), str(data.kind), str(data.category), department)
        changes = {"opened": _earliest(current.opened, payload)}
    elif kind == "visit.checked_in":
        changes = {"checked_in": _earliest(current.checked_in, (*stamp, str(data.centre)))}
    else:
        name = kind.partition(".")[2]
        changes = {name: _earliest(getattr(current, name), stamp)}
    changes["seen_us"] = max(current.seen_us, at)
    return _replace(current, changes)


def _replace(record: SubjectRecord, changes: dict[str, Any]) -> SubjectRecord:
    """`dataclasses.replace(record, **changes)`, or `record` itself when nothing changes."""
    if all(getattr(record, k) == v for k, v in changes.items()):
        return record
    return SubjectRecord(*[changes[name] if name in changes else getattr(record, name) for name in _RECORD_FIELDS])


_RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(SubjectRecord))
"""The fields of `SubjectRecord` in declaration (positional) order."""


def sla_state_of(state: Mapping[str, Any]) -> str:
    """`breached` (a target breached), `at_risk` (a running target warned), `on_track`, or `none` (no policy)."""
    if state.get("policy") is None:
        return "none"
    targets = state.get("targets") or {}
    if not isinstance(targets, Mapping):
        raise KpiStateError("ticket state: targets must be an object")
    values = [t for t in targets.values() if isinstance(t, Mapping)]
    if any(t.get("breached") or t.get("state") == "breached" for t in values):
        return "breached"
    if any(t.get("warned") and t.get("state") in ("running", "paused") for t in values):
        return "at_risk"
    return "on_track"


_SLA_PROGRESS = {"none": 0, "on_track": 0, "at_risk": 1, "breached": 2}
"""Between two events (same `version`) a ticket's SLA state only moves forward, as deadlines pass."""


def target_progress(warned: bool, breached: bool) -> int:
    """How far one target has moved since the ticket's last event: 0, 1 (warned), 2 or 3 (breached).

    Between two events (same `version`) only deadlines passing change a ticket's state, and they
    only add warnings and breaches: of two states of one version, the higher progress is the later.
    """
    return 2 * bool(breached) + bool(warned)


def state_rank(state: Mapping[str, Any]) -> tuple[int, int]:
    """(version, progress) of a `tawasul.tickets.state` message: the later of two states ranks
    higher (progress: `target_progress` summed over the targets). Raises KpiStateError."""
    version = state.get("version")
    targets = state.get("targets") or {}
    if not isinstance(version, int) or not isinstance(targets, Mapping):
        raise KpiStateError("ticket state: version must be an integer and targets an object")
    return version, sum(
        target_progress(bool(t.get("warned")), bool(t.get("breached")))
        for t in targets.values()
        if isinstance(t, Mapping)
    )


def apply_ticket_state(record: SubjectRecord | None, state: Mapping[str, Any]) -> SubjectRecord:
    """Fold a `tawasul.tickets.state` message into the ticket's record: a higher `version` wins;
    at the same `version` (a warning or a breach fired by the clock, no new event) the state that
    is further along wins, so a message delivered again late never takes a breach back."""
    try:
        subject = str(state["ticket_id"])
        version = int(state["version"])
        backlog = Backlog(
            version,
            state["status"] == "open",
            str(state["channel"]),
            str(state["kind"]),
            str(state["priority"]),
            sla_state_of(state),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise KpiStateError(f"unreadable ticket state: {type(exc).__name__}") from None
    current = record or SubjectRecord(subject=subject)
    held = current.backlog
    if held is not None and (
        held.version > version
        or (held.version == version and _SLA_PROGRESS.get(held.sla_state, 0) >= _SLA_PROGRESS[backlog.sla_state])
    ):
        return current
    return _replace(current, {"backlog": backlog, "seen_us": max(current.seen_us, _updated_us(state))})


def _updated_us(state: Mapping[str, Any]) -> int:
    text = state.get("updated_at")
    if not isinstance(text, str):
        return 0
    try:
        return to_us(datetime.fromisoformat(text))
    except ValueError:
        return 0


def normalised_points(score: int, scale: int) -> int:
    """A score on the 5-point scale: 3-point answers map linearly, 1 -> 1, 2 -> 3, 3 -> 5."""
    return 2 * score - 1 if scale == 3 else score


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one subject adds to one scope, at one event time."""

    scope: Scope
    time_us: int
    tally: Tally


def _call_tally(record: SubjectRecord, config: KpiConfig) -> Tally:
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


def _visit_tally(record: SubjectRecord) -> Tally:
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


def survey_scopes(record: SubjectRecord) -> tuple[Scope, ...]:
    """The scopes a survey about this (known) subject counts in, besides `()`."""
    section = record.section
    if section == "ticket":
        opened = record.opened
        assert opened is not None
        channel, kind, category, department = opened[2], opened[3], opened[4], opened[5]
        out = [scope(contact="ticket"), scope(channel=channel), scope(kind=kind), scope(category=category)]
        if department is not None:
            out.append(scope(department=department))
        return tuple(out)
    if section == "call":
        assert record.offered is not None
        out = [scope(contact="call"), scope(channel="call"), scope(queue=record.offered[2])]
        if record.answered is not None:
            out.append(scope(agent=record.answered[3]))
        return tuple(out)
    assert record.checked_in is not None
    return scope(contact="visit"), scope(channel="walk_in"), scope(centre=record.checked_in[2])


def contributions(record: SubjectRecord, config: KpiConfig, as_of_us: int) -> tuple[Contribution, ...]:
    """What the subject adds to the windows, as seen at `as_of_us` (which decides unmatched surveys)."""
    out: list[Contribution] = []
    if record.offered is not None:
        tally = _call_tally(record, config)
        at = record.offered[0]
        out += [Contribution((), at, tally), Contribution(scope(queue=record.offered[2]), at, tally)]
    if record.checked_in is not None:
        tally = _visit_tally(record)
        at = record.checked_in[0]
        out += [Contribution((), at, tally), Contribution(scope(centre=record.checked_in[2]), at, tally)]
    if record.surveys:
        hold = config.survey_hold // _US
        known = record.section is not None
        scopes = survey_scopes(record) if known else ()
        for survey in record.surveys:
            if known:
                targets: tuple[Scope, ...] = scopes
            elif as_of_us >= survey.time_us + hold:
                targets = (scope(contact="unmatched"), scope(channel=survey.channel))
            else:
                continue
            tally = Tally(
                responses=1,
                satisfied=int(is_satisfied(survey.score, survey.scale)),
                score_points=normalised_points(survey.score, survey.scale),
            )
            out += [Contribution(s, survey.time_us, tally) for s in ((), *targets)]
    return tuple(out)


def pending_deadline_us(record: SubjectRecord, config: KpiConfig, as_of_us: int) -> int | None:
    """When the earliest still-held survey of an unknown subject becomes unmatched, or None."""
    if record.section is not None:
        return None
    hold = config.survey_hold // _US
    due = [s.time_us + hold for s in record.surveys if s.time_us + hold > as_of_us]
    return min(due) if due else None


@dataclass(frozen=True, slots=True)
class Live:
    """A subject's part in the instantaneous figures."""

    kind: str
    """`call_waiting`, `on_call` or `visit_waiting`."""
    group: str
    """The queue or centre."""
    since_us: int
    agent: str = ""


def live_status(record: SubjectRecord) -> Live | None:
    """Whether the call waits or talks, or the visitor waits, right now (ignoring staleness)."""
    if record.offered is not None and record.answered is None and record.abandoned is None and record.ended is None:
        return Live("call_waiting", record.offered[2], record.offered[0])
    if record.answered is not None and record.is_answered and record.ended is None:
        return Live("on_call", record.answered[2], record.answered[0], record.answered[3])
    ci = record.checked_in
    if ci is not None and record.called is None and record.completed is None and record.no_show is None:
        return Live("visit_waiting", ci[2], ci[0])
    return None


def _last_window_instant(time_us: int) -> int:
    """The first instant at which `time_us` lies in no window (30 days rolling, the half-year)."""
    local = from_us(time_us)
    half_end = local.replace(year=local.year + 1, month=1, day=1) if local.month > 6 else local.replace(month=7, day=1)
    half_end = half_end.replace(hour=0, minute=0, second=0, microsecond=0)
    return max(time_us + 30 * DAY_US + HOUR_US, to_us(half_end))


def expiry_us(record: SubjectRecord, config: KpiConfig) -> int:
    """When the record can be deleted: no window needs it and late surveys are no longer expected."""
    keep = record.seen_us + config.attribute_retention // _US
    for at in (record.offered, record.checked_in):
        if at is not None:
            keep = max(keep, _last_window_instant(at[0]))
    for survey in record.surveys:
        keep = max(keep, _last_window_instant(survey.time_us), survey.time_us + config.survey_hold // _US)
    if record.backlog is not None and record.backlog.open:
        keep = max(keep, record.seen_us + _OPEN_TICKET_RETENTION_US)
    return keep


# --- figures -------------------------------------------------------------------------------

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


# --- the book: every scope's windows and the instantaneous figures ---------------------------

Lookup = Callable[[str], SubjectRecord | None]
BacklogClass = tuple[str, str, str, str]
"""(channel, kind, priority, sla_state) of an open ticket."""
_BACKLOG_NAMES = ("channel", "kind", "priority", "sla_state")


class KpiBook:
    """All figures of one aggregator: per-scope window totals, live statuses, the ticket backlog.

    Feed it every changed record with `update(subject, record)` (None forgets the subject) and
    move its clock with `advance(as_of_us, lookup)`; both are idempotent. It only keeps what the
    records imply, so rebuilding it from the stored records after a restart gives the same
    figures. `take_dirty()` names the scopes whose window figures may have changed since.
    """

    def __init__(self, config: KpiConfig, as_of_us: int = 0) -> None:
        self.config = config
        self._as_of = as_of_us
        self._minute = as_of_us // MINUTE_US
        self._sums: dict[Scope, WindowedSums[Tally]] = {(): WindowedSums(ZERO, as_of_us)}
        self._applied: dict[str, tuple[Contribution, ...]] = {}
        self._live: dict[str, Live] = {}
        self._backlog: dict[str, BacklogClass] = {}
        self._backlog_counts: Counter[BacklogClass] = Counter()
        self._backlog_seen: set[BacklogClass] = set()
        self._pending: dict[str, int] = {}
        self._pending_heap: list[tuple[int, str]] = []
        self._expiry: dict[str, int] = {}
        self._next_sweep = 0
        self._dirty: set[Scope] = set()
        self.now_dirty = False

    @property
    def as_of_us(self) -> int:
        return self._as_of

    def __len__(self) -> int:
        """How many subjects the book holds."""
        return len(self._expiry)

    def scopes(self) -> list[Scope]:
        return list(self._sums)

    def take_dirty(self) -> set[Scope]:
        dirty, self._dirty = self._dirty, set()
        return dirty

    def update(self, subject: str, record: SubjectRecord | None) -> None:
        """Take the subject's current record into account (None: the subject is gone)."""
        new = contributions(record, self.config, self._as_of) if record is not None else ()
        old = self._applied.get(subject, ())
        if new != old:
            deltas: dict[tuple[Scope, int], Tally] = {}
            for c in old:
                deltas[(c.scope, c.time_us)] = deltas.get((c.scope, c.time_us), ZERO) - c.tally
            for c in new:
                deltas[(c.scope, c.time_us)] = deltas.get((c.scope, c.time_us), ZERO) + c.tally
            ids: dict[int, tuple[int, int, int]] = {}
            for (where, at), delta in deltas.items():
                if delta:
                    if at not in ids:
                        ids[at] = bucket_ids(at)
                    self._scope(where).add(at, delta, ids[at])
                    self._dirty.add(where)
            if new:
                self._applied[subject] = new
            else:
                self._applied.pop(subject, None)
        self._set_live(subject, live_status(record) if record is not None else None)
        backlog = record.backlog if record is not None else None
        cls = (backlog.channel, backlog.kind, backlog.priority, backlog.sla_state) if backlog and backlog.open else None
        self._set_backlog(subject, cls)
        self._set_pending(subject, record)
        if record is None:
            self._expiry.pop(subject, None)
        else:
            self._expiry[subject] = expiry_us(record, self.config)

    def _scope(self, where: Scope) -> WindowedSums[Tally]:
        sums = self._sums.get(where)
        if sums is None:
            sums = self._sums[where] = WindowedSums(ZERO, self._as_of)
        return sums

    def _set_live(self, subject: str, status: Live | None) -> None:
        if self._live.get(subject) != status:
            self.now_dirty = True
            if status is None:
                del self._live[subject]
            else:
                self._live[subject] = status

    def _set_backlog(self, subject: str, cls: BacklogClass | None) -> None:
        old = self._backlog.get(subject)
        if old == cls:
            return
        self.now_dirty = True
        if old is not None:
            self._backlog_counts[old] -= 1
            del self._backlog[subject]
        if cls is not None:
            self._backlog[subject] = cls
            self._backlog_counts[cls] += 1
            self._backlog_seen.add(cls)

    def _set_pending(self, subject: str, record: SubjectRecord | None) -> None:
        held = 0
        if record is not None and record.section is None:
            hold = self.config.survey_hold // _US
            held = sum(1 for s in record.surveys if s.time_us + hold > self._as_of)
        if self._pending.get(subject, 0) != held:
            self.now_dirty = True
            if held:
                self._pending[subject] = held
            else:
                self._pending.pop(subject, None)
        deadline = pending_deadline_us(record, self.config, self._as_of) if record is not None else None
        if deadline is not None:
            heapq.heappush(self._pending_heap, (deadline, subject))

    def advance(self, as_of_us: int, lookup: Lookup) -> None:
        """Move the clock forward (never back); held surveys whose time is up become unmatched."""
        if as_of_us <= self._as_of:
            return
        self._as_of = as_of_us
        if self._live or self._backlog_counts:
            self.now_dirty = True
        minute = as_of_us // MINUTE_US
        if minute != self._minute:
            self._minute = minute
            ranges, floors = window_ranges(as_of_us), retention_floors(as_of_us)
            for where, sums in self._sums.items():
                if sums.advance(as_of_us, ranges, floors):
                    self._dirty.add(where)
        while self._pending_heap and self._pending_heap[0][0] <= as_of_us:
            _, subject = heapq.heappop(self._pending_heap)
            self.update(subject, lookup(subject))

    def expired(self) -> list[str]:
        """Subjects whose records may be deleted now (looked for at most once per day of clock)."""
        if self._as_of < self._next_sweep:
            return []
        self._next_sweep = self._as_of + DAY_US
        return [subject for subject, at in self._expiry.items() if at <= self._as_of]

    def window_rows(self, where: Scope, windows: Iterable[str] = WINDOW_NAMES) -> list[Row]:
        """The figures of one scope over `windows` (all of them by default)."""
        sums = self._sums.get(where)
        if sums is None:
            return []
        kinds = families(where)
        rows: list[Row] = []
        for name in windows:
            rows += tally_rows(sums.total(name), name, where, kinds)
        return rows

    def tally(self, where: Scope, window: str) -> Tally:
        """The counters of one scope over one window (zero for an unknown scope)."""
        sums = self._sums.get(where)
        return ZERO if sums is None else sums.total(window)

    def now_rows(self) -> list[Row]:
        """The instantaneous figures: calls and visitors waiting, agents on a call, open tickets."""
        now = self._as_of
        call_stale = now - self.config.call_stale_after // _US
        visit_stale = now - self.config.visit_stale_after // _US
        waiting: dict[str, list[int]] = {}
        agents: dict[str, set[str]] = {}
        visitors: dict[str, list[int]] = {}
        for where in self._sums:
            if len(where) == 1 and where[0][0] == "queue":
                waiting.setdefault(where[0][1], [])
                agents.setdefault(where[0][1], set())
            elif len(where) == 1 and where[0][0] == "centre":
                visitors.setdefault(where[0][1], [])
        for status in self._live.values():
            if status.kind == "visit_waiting":
                if status.since_us >= visit_stale:
                    visitors.setdefault(status.group, []).append(status.since_us)
            elif status.since_us >= call_stale:
                if status.kind == "call_waiting":
                    waiting.setdefault(status.group, []).append(status.since_us)
                    agents.setdefault(status.group, set())
                else:
                    agents.setdefault(status.group, set()).add(status.agent)
                    waiting.setdefault(status.group, [])
        rows = _wait_rows("calls", waiting, now) + _wait_rows("visits", visitors, now)
        everyone = set().union(*agents.values()) if agents else set()
        rows.append(_count("calls.agents_on_call", NOW, (), len(everyone)))
        rows += [_count("calls.agents_on_call", NOW, scope(queue=q), len(a)) for q, a in sorted(agents.items())]
        rows += self._backlog_rows()
        rows.append(_count("surveys.pending", NOW, (), sum(self._pending.values())))
        return rows

    def clock_row(self) -> Row:
        """The total of open tickets: republished with the new `as_of` when the clock moved but no
        figure changed, so the newest snapshot always tells how current the figures are."""
        return _count("tickets.open", NOW, (), sum(self._backlog_counts.values()))

    def _backlog_rows(self) -> list[Row]:
        groups: Counter[Scope] = Counter({(): 0})
        for cls in self._backlog_seen:
            n = self._backlog_counts[cls]
            full = tuple(sorted(zip(_BACKLOG_NAMES, cls, strict=True)))
            groups[()] += n
            groups[full] += n
            for pair in full:
                groups[(pair,)] += n
        return [_count("tickets.open", NOW, where, n) for where, n in sorted(groups.items())]


def _wait_rows(family: str, waits: dict[str, list[int]], now: int) -> list[Row]:
    everything = [since for values in waits.values() for since in values]
    rows: list[Row] = []
    for where, values in [((), everything), *((scope(**{_GROUP[family]: g}), v) for g, v in sorted(waits.items()))]:
        longest = kpis.round4(max(now - min(values), 0) / 1_000_000) if values else None
        rows.append(_count(f"{family}.waiting", NOW, where, len(values)))
        rows.append(Row(f"{family}.longest_wait_seconds", NOW, where, longest, len(values)))
    return rows


_GROUP = {"calls": "queue", "visits": "centre"}


def rebuild(config: KpiConfig, records: Iterable[SubjectRecord], as_of_us: int | None = None) -> KpiBook:
    """A book holding these stored records (after a restart); the clock at `as_of_us`, by default
    the latest event time of the records (the event-time clock of a replay)."""
    items = list(records)
    start = max((r.seen_us for r in items), default=0) if as_of_us is None else as_of_us
    book = KpiBook(config, start)
    for record in items:
        book.update(record.subject, record)
    return book

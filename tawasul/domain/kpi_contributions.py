"""What each subject contributes to the figures: per scope, at an event time (`contributions`).

* a call counts in the window of its `call.offered`, per queue and in total;
* a visit counts in the window of its `visit.checked_in`, per centre and in total;
* a survey counts in the window of its own `time`, under the attributes of its subject
  (ticket: channel, kind, category, department; call: queue, agent; visit: centre). A survey
  whose subject is not known yet is held; once `survey_hold` of event time has passed without
  the subject, it counts as unmatched (and moves to its subject if that appears later).

Also here: a subject's part in the instantaneous figures (`live_status`) and when its record
may be deleted (`expiry_us`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tawasul.domain.kpi_records import SubjectRecord
from tawasul.domain.kpi_tallies import _US, KpiConfig, Tally, call_tally, survey_tally, visit_tally
from tawasul.domain.windows import DAY_US, HOUR_US, from_us, to_us

__all__ = [
    "Contribution",
    "Live",
    "Scope",
    "contributions",
    "expiry_us",
    "live_status",
    "pending_deadline_us",
    "scope",
    "survey_scopes",
]

Scope = tuple[tuple[str, str], ...]
"""What a figure is restricted to, as sorted (name, value) pairs; `()` is everything."""
_OPEN_TICKET_RETENTION_US = 10 * 365 * DAY_US


def scope(**attributes: str) -> Scope:
    """A scope from keyword attributes: `scope(queue="general")`."""
    return tuple(sorted(attributes.items()))


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one subject adds to one scope, at one event time."""

    scope: Scope
    time_us: int
    tally: Tally


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
        tally = call_tally(record, config)
        at = record.offered[0]
        out += [Contribution((), at, tally), Contribution(scope(queue=record.offered[2]), at, tally)]
    if record.checked_in is not None:
        tally = visit_tally(record)
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
            tally = survey_tally(survey)
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

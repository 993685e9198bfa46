"""The JSON view of a ticket's SLA story (`tawasul ticket`, the ticket page), and the outcomes
computed now beside those the database stored."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tawasul.domain.business_breakdown import Breakdown
from tawasul.domain.durations import format_duration
from tawasul.domain.sla_state import SlaOutcome

if TYPE_CHECKING:
    from tawasul.domain.ticket_story import StoryEvent, TargetStory

__all__ = ["StoredOutcome", "compare_outcomes", "duration_text", "event_json", "outcome_json", "target_json"]


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def duration_text(value: timedelta) -> str:
    """`1h30m`, `0s`, `-2h` or `12.5s`: hours, minutes and seconds (fractions of a second kept)."""
    if value < timedelta(0):
        return "-" + duration_text(-value)
    whole = timedelta(seconds=value // timedelta(seconds=1))
    if whole == value and value:
        return format_duration(value)
    hours, rest = divmod(value, timedelta(hours=1))
    minutes, rest = divmod(rest, timedelta(minutes=1))
    seconds = f"{rest.total_seconds():g}s"
    return f"{hours}h" * bool(hours) + f"{minutes}m" * bool(minutes) + seconds


_dur = duration_text


def _breakdown_json(b: Breakdown) -> dict[str, Any]:
    return {
        "from": _iso(b.start),
        "to": _iso(b.end),
        "business": _dur(b.business),
        "business_seconds": b.business.total_seconds(),
        "intervals": [{"from": _iso(s.start), "to": _iso(s.end), "business": _dur(s.business)} for s in b.spans],
        "skipped_days": [{"date": _iso(d.day), "reason": d.reason, "name": d.name} for d in b.skipped],
        "ramadan_days": [_iso(d) for d in b.ramadan_days],
    }


def event_json(e: StoryEvent) -> dict[str, Any]:
    return {"time": _iso(e.time), "type": e.type, "id": e.id, "details": dict(e.details), "note": e.note}


def target_json(t: TargetStory) -> dict[str, Any]:
    p, b = t.policy, t.deadline_basis
    return {
        "target": t.target,
        "status": t.status,
        "elapsed": _dur(t.elapsed),
        "elapsed_seconds": t.elapsed.total_seconds(),
        "policy": {
            "name": p.name,
            "position": p.position,
            "match": {k: list(v) for k, v in p.match.items()},
            "priority": p.priority,
            "calendar": p.calendar,
            "limit": _dur(p.limit),
            "warn_at": p.warn_at,
            "passed_over": [{"policy": n, "misfit": k} for n, k in p.passed_over],
        },
        "segments": [
            {"from": _iso(s.start), "to": _iso(s.end), "cycle": s.cycle, "counted": _breakdown_json(s.counted)}
            for s in t.segments
        ],
        "pauses": [
            {"from": _iso(x.start), "to": _iso(x.end), "why": x.why, "skipped_business": _dur(x.skipped_business)}
            for x in t.pauses
        ],
        "deadline": _iso(t.deadline),
        "deadline_basis": None
        if b is None
        else {
            "from": _iso(b.start),
            "counted_before": _dur(b.counted_before),
            "remaining": _dur(b.remaining),
            "walk": _breakdown_json(b.walk),
        },
        "warning_at": _iso(t.warning_at),
        "breached_from": _iso(t.breached_from),
    }


def outcome_json(o: SlaOutcome) -> dict[str, Any]:
    return {
        "id": o.id,
        "type": o.type,
        "target": o.target,
        "cycle": o.cycle,
        "policy": o.policy,
        "deadline": _iso(o.deadline),
        "at": _iso(o.at),
        "priority": o.priority,
    }


@dataclass(frozen=True, slots=True)
class StoredOutcome:
    """An outcome as the database stored it (`sla_outcomes`)."""

    id: str
    type: str
    target: str
    policy: str
    deadline: datetime
    at: datetime
    policies_sha256: str | None = None


def compare_outcomes(computed: Iterable[SlaOutcome], stored: Iterable[StoredOutcome]) -> list[dict[str, Any]]:
    """Each outcome id, computed now and as stored, side by side: `agree` when both exist with the
    same policy, deadline and instant; `computed only` / `stored only` otherwise."""
    mine = {o.id: o for o in computed}
    theirs = {o.id: o for o in stored}
    rows = []
    for outcome_id in sorted(mine.keys() | theirs.keys(), key=lambda i: ((mine.get(i) or theirs[i]).at, i)):
        a, b = mine.get(outcome_id), theirs.get(outcome_id)
        if a is None:
            verdict = "stored only"
        elif b is None:
            verdict = "computed only"
        elif (a.policy, a.deadline, a.at) == (b.policy, b.deadline, b.at):
            verdict = "agree"
        else:
            verdict = "differ"
        rows.append(
            {
                "id": outcome_id,
                "verdict": verdict,
                "computed": None if a is None else outcome_json(a),
                "stored": None
                if b is None
                else {
                    "id": b.id,
                    "type": b.type,
                    "target": b.target,
                    "policy": b.policy,
                    "deadline": _iso(b.deadline),
                    "at": _iso(b.at),
                    "policies_sha256": b.policies_sha256,
                },
            }
        )
    return rows

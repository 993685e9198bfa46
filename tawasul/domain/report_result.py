"""The period report's typed results (frozen): `Report` (contract section 6) and `ReportBy`
(`--by agent|team`). `to_json()` gives the contract's JSON object, keys in the printed order;
`from_json()` reads it back (`Report.from_json(r.to_json()) == r`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self

from tawasul.domain.period import Period

__all__ = [
    "CallFigures",
    "CategoryBreaches",
    "GroupFigures",
    "Report",
    "ReportBy",
    "TargetFigures",
    "TicketFigures",
    "TicketGroup",
    "WalkInFigures",
]

Policies = Mapping[str, Any]
"""Which policy book(s) the SLA figures come from (`sinks.report_books.BookPlan.to_json`)."""


def _json(value: Any) -> Any:
    if isinstance(value, _Figures | Period):
        return value.to_json()
    if isinstance(value, Mapping):
        return {key: _json(v) for key, v in value.items()}
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    return value


class _Figures:
    """`to_json` / `from_json` over the dataclass fields, in declaration order; a field whose
    default is None is left out of the JSON while None."""

    _NESTED: ClassVar[Mapping[str, Any]] = {}
    """Field -> how to read it back from JSON (plain values are taken as they are)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]  # every subclass is a dataclass
            value = getattr(self, f.name)
            if value is not None or f.default is not None:
                out[f.name] = _json(value)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        nested, values = cls._NESTED, {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]  # every subclass is a dataclass
            if f.name in raw:
                values[f.name] = nested.get(f.name, _same)(raw[f.name])
        return cls(**values)


def _same(value: Any) -> Any:
    return value


def _period(raw: Mapping[str, str]) -> Period:
    return Period(datetime.fromisoformat(raw["from"]), datetime.fromisoformat(raw["to"]))


@dataclass(frozen=True, slots=True)
class TargetFigures(_Figures):
    """One SLA target's met and breached counts (undecided ones left out)."""

    met: int
    breached: int
    compliance: float | None


@dataclass(frozen=True, slots=True)
class CallFigures(_Figures):
    """The contact centre's figures (`calls`)."""

    offered: int
    answered: int
    abandoned: int
    answered_within_threshold: int
    service_level: float | None
    threshold_seconds: int
    average_speed_of_answer_seconds: float | None
    average_handle_seconds: float | None
    abandon_ratio: float | None
    surveys: int
    satisfied: int
    satisfaction: float | None


@dataclass(frozen=True, slots=True)
class TicketGroup(_Figures):
    """Ticket figures of a channel or a kind."""

    _NESTED: ClassVar[Mapping[str, Any]] = {
        "first_response": TargetFigures.from_json,
        "resolution": TargetFigures.from_json,
    }

    opened: int
    resolved: int
    first_response: TargetFigures
    resolution: TargetFigures
    surveys: int
    satisfied: int
    satisfaction: float | None


@dataclass(frozen=True, slots=True)
class CategoryBreaches(_Figures):
    """A category with at least one breach."""

    category: str
    opened: int
    breached: int
    first_response_breached: int
    resolution_breached: int
    resolution_compliance: float | None


def _groups(raw: Mapping[str, Any]) -> Mapping[str, TicketGroup]:
    return {name: TicketGroup.from_json(group) for name, group in raw.items()}


def _breaches(raw: list[Mapping[str, Any]]) -> tuple[CategoryBreaches, ...]:
    return tuple(CategoryBreaches.from_json(row) for row in raw)


@dataclass(frozen=True, slots=True)
class TicketFigures(TicketGroup):
    """The tickets' figures (`tickets`): the whole section, by channel, by kind, breaches by category."""

    _NESTED: ClassVar[Mapping[str, Any]] = {
        **TicketGroup._NESTED,
        "by_channel": _groups,
        "by_kind": _groups,
        "breaches_by_category": _breaches,
    }

    by_channel: Mapping[str, TicketGroup]
    """Sorted by name."""
    by_kind: Mapping[str, TicketGroup]
    breaches_by_category: tuple[CategoryBreaches, ...]
    """Most breaches first, then by name."""


@dataclass(frozen=True, slots=True)
class WalkInFigures(_Figures):
    """The service centres' figures (`walk_in`)."""

    visits: int
    called: int
    completed: int
    no_show: int
    average_wait_seconds: float | None
    surveys: int
    satisfied: int
    satisfaction: float | None


@dataclass(frozen=True, slots=True)
class Report(_Figures):
    """The period report; `policies` is added by `tawasul report` (`with_policies`)."""

    _NESTED: ClassVar[Mapping[str, Any]] = {
        "period": _period,
        "calls": CallFigures.from_json,
        "tickets": TicketFigures.from_json,
        "walk_in": WalkInFigures.from_json,
    }

    period: Period
    calls: CallFigures
    tickets: TicketFigures
    walk_in: WalkInFigures
    unmatched_surveys: int
    policies: Policies | None = None

    def with_policies(self, policies: Policies) -> Report:
        return dataclasses.replace(self, policies=policies)


@dataclass(frozen=True, slots=True)
class GroupFigures(_Figures):
    """One agent's or team's figures (`name` None: unassigned)."""

    _NESTED: ClassVar[Mapping[str, Any]] = TicketGroup._NESTED

    name: str | None
    calls_answered: int
    average_handle_seconds: float | None
    tickets_assigned: int
    first_response: TargetFigures
    resolution: TargetFigures
    surveys: int
    satisfied: int
    satisfaction: float | None

    def to_json_by(self, by: str) -> dict[str, Any]:
        """The JSON of the group, its name under the key `by` (`agent` or `team`)."""
        out = self.to_json()
        return {by: out.pop("name"), **out}


@dataclass(frozen=True, slots=True)
class ReportBy:
    """The period report per agent or team: groups sorted by name, unassigned last."""

    period: Period
    by: str
    groups: tuple[GroupFigures, ...]
    policies: Policies | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "period": self.period.to_json(),
            "by": self.by,
            "groups": [group.to_json_by(self.by) for group in self.groups],
        }
        if self.policies is not None:
            out["policies"] = dict(self.policies)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ReportBy:
        by = raw["by"]
        groups = tuple(GroupFigures.from_json({"name": g[by], **g}) for g in raw["groups"])
        return cls(_period(raw["period"]), by, groups, raw.get("policies"))

    def with_policies(self, policies: Policies) -> ReportBy:
        return dataclasses.replace(self, policies=policies)

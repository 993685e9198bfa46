"""Simulation parameters and the calibration targets (H1 2025 half-year report)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

DUBAI = timezone(timedelta(hours=4), "Asia/Dubai")
"""Asia/Dubai: UTC+4 all year (no daylight saving), so a fixed offset is exact."""

_TAG = re.compile(r"^[A-Za-z0-9]{0,16}$")


class SimulatorError(Exception):
    """Raised for invalid simulator parameters."""


@dataclass(frozen=True)
class KindTarget:
    """Half-year volume and satisfaction target of one ticket kind."""

    kind: str
    count: float
    satisfaction: float
    survey_share: float


@dataclass(frozen=True)
class Calibration:
    """Volumes and satisfaction over the reference period at scale 1.

    Defaults come from the department's H1 2025 report: more than 20,000 calls handled
    (98 % satisfied), more than 27,000 CRM service requests (93 % satisfied), more than
    12,000 mosque reports; the other volumes are assumptions (docs/simulator.md).
    """

    reference_start: date = date(2025, 1, 1)
    reference_end: date = date(2025, 7, 1)
    calls_offered: float = 22_000.0
    call_satisfaction: float = 0.98
    call_survey_share: float = 0.35
    staffing_service_level: float = 0.70
    service_level_seconds: int = 20
    tickets: tuple[KindTarget, ...] = (
        KindTarget("request", 27_000.0, 0.93, 0.25),
        KindTarget("facility_report", 12_000.0, 0.95, 0.20),
        KindTarget("complaint", 2_500.0, 0.80, 0.30),
        KindTarget("suggestion", 1_200.0, 0.90, 0.15),
        KindTarget("inquiry", 4_000.0, 0.94, 0.25),
        KindTarget("compliment", 600.0, 0.99, 0.10),
    )
    walk_in_visits: float = 20_000.0
    walk_in_satisfaction: float = 0.96
    walk_in_survey_share: float = 0.20
    walk_in_wait_target_seconds: int = 600
    walk_in_staffing_level: float = 0.80
    three_point_share: float = 0.10
    daily_noise_cv: float = 0.15

    def ticket_target(self, kind: str) -> KindTarget:
        """The target of `kind`; raises SimulatorError when it has none."""
        for target in self.tickets:
            if target.kind == kind:
                return target
        raise SimulatorError(f"no calibration target for ticket kind {kind!r}")


@dataclass(frozen=True)
class Params:
    """What to simulate: the period [start, end), the seed and the volume multiplier.

    `tag` (letters/digits) is put into every subject id so that separate runs never share
    ids; `tail` also emits the events after `end` of the contacts that arrived before it.
    """

    start: datetime
    end: datetime
    seed: int = 7
    scale: float = 1.0
    tag: str = ""
    tail: bool = False
    calibration: Calibration = field(default_factory=Calibration)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise SimulatorError("start and end must carry a time zone")
        if self.end <= self.start:
            raise SimulatorError("end must be after start")
        if not self.scale > 0:
            raise SimulatorError("scale must be positive")
        if not _TAG.match(self.tag):
            raise SimulatorError("tag must be up to 16 letters or digits")


def parse_when(text: str) -> datetime:
    """ISO 8601 date or date-time; a date alone is 00:00 and no offset means Asia/Dubai."""
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(0))
        else:
            moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SimulatorError(f"not an ISO 8601 date or date-time: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=DUBAI)
    return moment

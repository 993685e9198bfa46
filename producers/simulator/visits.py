"""Walk-in visits at the service centres: a queue-ticketing system with counters."""

from __future__ import annotations

import bisect
import math
import random
from typing import NamedTuple

from .arrivals import day_multiplier, draw_arrivals, rate_segments
from .catalog import CENTRES, SERVICE_SIGMA, Centre
from .days import DayInfo
from .plan import Plan, PlanBuilder
from .staffing import required_servers
from .surveys import answer, split_satisfaction
from .world import World

KIOSK_SURVEY_SOURCE = "/channels/surveys/kiosk"
LONG_WAIT_SECONDS = 900
"""Visitors who waited longer are less often satisfied."""


class _Served(NamedTuple):
    plan: PlanBuilder
    completed: int
    waited: int


def _counters(world: World, centre: Centre, rates: list[tuple[float, float, float]]) -> list[int]:
    """Counters open per period, planned with Erlang C on the forecast."""
    calibration = world.params.calibration
    services = centre.services
    total = sum(service.weight for service in services)
    handle = sum(s.weight * s.median_seconds for s in services) / total
    handle *= math.exp(SERVICE_SIGMA * SERVICE_SIGMA / 2.0)
    return [
        required_servers(
            rate, handle, calibration.walk_in_wait_target_seconds, calibration.walk_in_staffing_level, centre.counters
        )
        for _, _, rate in rates
    ]


def _surveys(rng: random.Random, world: World, served: list[_Served]) -> None:
    """Kiosk/SMS surveys, split on the day's real share of long waits (calibrated)."""
    calibration = world.params.calibration
    slow = sum(1 for visit in served if visit.waited > LONG_WAIT_SECONDS)
    p_good, p_bad = split_satisfaction(calibration.walk_in_satisfaction, slow / max(1, len(served)))
    for visit in served:
        if rng.random() < calibration.walk_in_survey_share:
            data: dict[str, object] = {"channel": "walk_in"}
            p = p_good if visit.waited <= LONG_WAIT_SECONDS else p_bad
            data.update(answer(rng, p, calibration.three_point_share))
            visit.plan.add(visit.completed + rng.uniform(30.0, 1800.0), "survey.submitted", KIOSK_SURVEY_SOURCE, data)


def _centre_plans(world: World, info: DayInfo, centre: Centre) -> list[Plan]:
    name = f"visit.{centre.centre_id}"
    rates = rate_segments(world.streams[name], info, world.per_level_minute[name])
    if not rates:
        return []
    rng = world.rng(info.day, name)
    noise = day_multiplier(rng, world.params.calibration.daily_noise_cv)
    arrivals = draw_arrivals(rng, rates, noise)
    staff = _counters(world, centre, rates)
    starts = [start for start, _, _ in rates]
    weights = [service.weight for service in centre.services]
    where: dict[str, object] = {"centre": centre.centre_id}
    source = f"/channels/qms/{centre.centre_id}"
    free_at = [0.0] * centre.counters
    plans: list[Plan] = []
    served: list[_Served] = []
    for arrived in arrivals:
        service = rng.choices(centre.services, weights=weights)[0]
        plan = PlanBuilder("V")
        plan.add(arrived, "visit.checked_in", source, {**where, "service": service.name})
        on_duty = staff[max(0, bisect.bisect_right(starts, arrived) - 1)]
        counter = min(range(on_duty), key=free_at.__getitem__)
        desk: dict[str, object] = {**where, "counter": f"counter-{counter + 1:02d}"}
        called = plan.add(max(arrived + rng.uniform(20.0, 90.0), free_at[counter]), "visit.called", source, desk)
        waited = called - int(arrived)
        if rng.random() < 0.02 + 0.08 * min(1.0, waited / 1800.0):
            free_at[counter] = plan.add(called + rng.uniform(60.0, 180.0), "visit.no_show", source, dict(where))
            plans.append(plan.build())
            continue
        duration = rng.lognormvariate(math.log(service.median_seconds), SERVICE_SIGMA)
        completed = plan.add(called + duration, "visit.completed", source, dict(where))
        free_at[counter] = completed + rng.uniform(20.0, 60.0)
        served.append(_Served(plan, completed, waited))
    _surveys(rng, world, served)
    plans.extend(visit.plan.build() for visit in served)
    return plans


def visit_plans(world: World, info: DayInfo) -> list[Plan]:
    """The day's walk-in visits at every centre."""
    plans: list[Plan] = []
    for centre in CENTRES:
        plans.extend(_centre_plans(world, info, centre))
    return plans

"""Contact-centre calls: an event-driven multi-server FCFS queue per queue with abandonment."""

from __future__ import annotations

import bisect
import math
import random
from typing import NamedTuple

from .arrivals import RateSegment, day_multiplier, draw_arrivals, rate_segments
from .catalog import (
    ENGLISH_SHARE,
    PATIENCE_MEDIAN_SECONDS,
    PATIENCE_SIGMA,
    QUEUES,
    TALK_SIGMA,
    WRAP_MEDIAN_SECONDS,
    WRAP_SIGMA,
    Queue,
)
from .days import DayInfo
from .plan import Plan, PlanBuilder
from .staffing import required_servers
from .surveys import answer, split_satisfaction
from .world import World

PBX_SOURCE = "/channels/pbx/main"
IVR_SURVEY_SOURCE = "/channels/surveys/ivr"
ABSENCE_SHARE = 0.35
"""Chance that a planned agent of a queue and period is missing (break, sickness)."""
_Caller = tuple[float, str, str]


def _mean(median: float, sigma: float) -> float:
    return median * math.exp(sigma * sigma / 2.0)


def _staffing(rng: random.Random, queue: Queue, share: float, rates: list[RateSegment], world: World) -> list[int]:
    handle = _mean(queue.talk_median_seconds, TALK_SIGMA) + _mean(WRAP_MEDIAN_SECONDS, WRAP_SIGMA)
    staff = []
    for _, _, rate in rates:
        agents = required_servers(
            rate * share,
            handle,
            world.params.calibration.service_level_seconds,
            world.params.calibration.staffing_service_level,
            queue.agent_pool,
        )
        if agents > 1 and rng.random() < ABSENCE_SHARE:
            agents -= 1
        staff.append(agents)
    return staff


class _Answered(NamedTuple):
    plan: PlanBuilder
    ended: int
    waited: int


def _serve_queue(
    rng: random.Random,
    world: World,
    queue: Queue,
    callers: list[_Caller],
    rates: list[RateSegment],
    staff: list[int],
) -> list[Plan]:
    """FCFS with patience: a caller is answered by the first free agent unless they hang up."""
    starts = [start for start, _, _ in rates]
    free_at = [0.0] * queue.agent_pool
    plans: list[Plan] = []
    answered_calls: list[_Answered] = []
    talk_mu = math.log(queue.talk_median_seconds)
    for offered, language, caller_ref in callers:
        plan = PlanBuilder("C")
        plan.add(
            offered, "call.offered", PBX_SOURCE, {"queue": queue.name, "language": language, "caller_ref": caller_ref}
        )
        on_duty = staff[max(0, bisect.bisect_right(starts, offered) - 1)]
        agent = min(range(on_duty), key=free_at.__getitem__)
        answered = max(offered + rng.uniform(2.0, 6.0), free_at[agent])
        patience = max(1.0, rng.lognormvariate(math.log(PATIENCE_MEDIAN_SECONDS), PATIENCE_SIGMA))
        if answered - offered > patience:
            plan.add(offered + patience, "call.abandoned", PBX_SOURCE, {"queue": queue.name})
            plans.append(plan.build())
            continue
        talk = rng.lognormvariate(talk_mu, TALK_SIGMA)
        wrap = min(600, round(rng.lognormvariate(math.log(WRAP_MEDIAN_SECONDS), WRAP_SIGMA)))
        agent_id = f"agent-{queue.agent_offset + agent + 1:03d}"
        second = plan.add(answered, "call.answered", PBX_SOURCE, {"queue": queue.name, "agent": agent_id})
        ended = plan.add(
            answered + talk, "call.ended", PBX_SOURCE, {"queue": queue.name, "agent": agent_id, "wrap_up_seconds": wrap}
        )
        free_at[agent] = ended + wrap
        answered_calls.append(_Answered(plan, ended, second - int(offered)))
    plans.extend(_surveys(rng, world, answered_calls))
    return plans


def _surveys(rng: random.Random, world: World, calls: list[_Answered]) -> list[Plan]:
    """Post-call IVR surveys; callers who waited long are less often satisfied.

    The satisfied shares of quick and slow answers are split on the day's real share of slow
    answers, so the expected satisfaction is the calibrated one at any load.
    """
    calibration = world.params.calibration
    threshold = calibration.service_level_seconds
    slow = sum(1 for call in calls if call.waited > threshold)
    p_good, p_bad = split_satisfaction(calibration.call_satisfaction, slow / max(1, len(calls)))
    for call in calls:
        if rng.random() < calibration.call_survey_share:
            data: dict[str, object] = {"channel": "call"}
            p = p_good if call.waited <= threshold else p_bad
            data.update(answer(rng, p, calibration.three_point_share))
            call.plan.add(call.ended + rng.uniform(10.0, 90.0), "survey.submitted", IVR_SURVEY_SOURCE, data)
    return [call.plan.build() for call in calls]


def call_plans(world: World, info: DayInfo) -> list[Plan]:
    """The day's calls, each with its events (and survey) planned."""
    rng = world.rng(info.day, "calls")
    stream = world.streams["calls"]
    rates = rate_segments(stream, info, world.per_level_minute[stream.name])
    if not rates:
        return []
    multiplier = day_multiplier(rng, world.params.calibration.daily_noise_cv)
    arrivals = draw_arrivals(rng, rates, multiplier)
    shares = [queue.ramadan_share if info.ramadan else queue.share for queue in QUEUES]
    by_queue: list[list[_Caller]] = [[] for _ in QUEUES]
    indices = range(len(QUEUES))
    for offered in arrivals:
        index = rng.choices(indices, weights=shares)[0]
        language = "en" if rng.random() < ENGLISH_SHARE else "ar"
        by_queue[index].append((offered, language, world.person_ref(rng)))
    plans: list[Plan] = []
    for index, queue in enumerate(QUEUES):
        staff = _staffing(rng, queue, shares[index], rates, world)
        plans.extend(_serve_queue(rng, world, queue, by_queue[index], rates, staff))
    return plans

"""Tickets (service requests, facility reports, complaints...): the whole lifecycle at opening."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .arrivals import day_multiplier, draw_arrivals, rate_segments
from .days import DayInfo
from .params import KindTarget
from .plan import Plan, PlanBuilder
from .surveys import answer, split_satisfaction
from .ticket_classes import SUMMER_FACTORS, TICKET_CLASSES, Category, TicketClass
from .world import World

CASE_SOURCE = "/channels/crm"
SMS_SURVEY_SOURCE = "/channels/surveys/sms"
OPEN_SOURCES = {
    "crm": "/channels/crm",
    "call": "/channels/crm",
    "walk_in": "/channels/crm",
    "email": "/channels/crm",
    "complaints_platform": "/channels/04-platform",
    "web": "/channels/web",
    "app": "/channels/app",
    "social": "/channels/social",
}
ESCALATION = {"low": "normal", "normal": "high", "high": "urgent"}
CUSTOMER_REF_SHARE = 0.9
_HOUR = 3600.0
_DAY = 86400.0


@dataclass(frozen=True)
class _Context:
    world: World
    cls: TicketClass
    channel: str
    target: KindTarget
    categories: tuple[Category, ...]
    weights: tuple[float, ...]


def _category_weights(cls: TicketClass, info: DayInfo) -> tuple[float, ...]:
    summer = SUMMER_FACTORS[info.month - 1]
    return tuple(c.weight * (summer if c.summer_peak else 1.0) for c in cls.categories)


def _opened_data(rng: random.Random, ctx: _Context) -> tuple[dict[str, object], str]:
    category = rng.choices(ctx.categories, weights=ctx.weights)[0]
    if rng.random() < category.urgent_share:
        priority = "urgent"
    else:
        names = [name for name, _ in ctx.cls.priorities]
        priority = rng.choices(names, weights=[share for _, share in ctx.cls.priorities])[0]
    data: dict[str, object] = {
        "channel": ctx.channel,
        "kind": ctx.cls.kind,
        "category": category.name,
        "priority": priority,
        "department": category.department,
    }
    if category.at_mosque:
        mosque = ctx.world.mosque(rng)
        data["location"] = {"mosque_id": mosque.mosque_id, "area": mosque.area}
    if rng.random() < CUSTOMER_REF_SHARE:
        data["customer_ref"] = ctx.world.person_ref(rng)
    return data, priority


def plan_ticket(rng: random.Random, ctx: _Context, opened: float) -> Plan:
    """One ticket from opening to closing, with its survey when the customer answers one."""
    cls = ctx.cls
    opened_data, priority = _opened_data(rng, ctx)
    timing = cls.timing_for(priority)
    calendar = ctx.world.calendars[timing.calendar]
    ack_b = timing.ack.draw(rng)
    res_b = max(timing.res.draw(rng), ack_b + rng.uniform(300.0, 1800.0))
    steps: list[tuple[float, int, str, str, dict[str, object]]] = [
        (opened, 0, "ticket.opened", OPEN_SOURCES[ctx.channel], opened_data),
        (calendar.add(opened, ack_b), 1, "ticket.acknowledged", CASE_SOURCE, {}),
    ]
    paused_b = res_b
    if rng.random() < cls.pause_share:
        paused_b = ack_b + rng.uniform(0.1, 0.6) * (res_b - ack_b)
        paused = calendar.add(opened, paused_b)
        resumed = paused + rng.lognormvariate(math.log(18 * _HOUR), 0.8)
        resolved = calendar.add(resumed, res_b - paused_b)
        steps.append((paused, 4, "ticket.paused", CASE_SOURCE, {"reason": "waiting_on_customer"}))
        steps.append((resumed, 5, "ticket.resumed", CASE_SOURCE, {}))
    else:
        resolved = calendar.add(opened, res_b)
    if rng.random() < cls.assign_share:
        at = calendar.add(opened, ack_b + rng.uniform(0.0, 0.3) * (paused_b - ack_b))
        team: dict[str, object] = {
            "team": opened_data["department"],
            "agent": f"staff-{rng.randint(1, 180):03d}",
        }
        steps.append((at, 2, "ticket.assigned", CASE_SOURCE, team))
    if priority in ESCALATION and rng.random() < cls.escalate_share:
        at = calendar.add(opened, ack_b + rng.uniform(0.1, 0.9) * (paused_b - ack_b))
        steps.append((at, 3, "ticket.priority_changed", CASE_SOURCE, {"priority": ESCALATION[priority]}))
    resolution: dict[str, object] = {"resolution": rng.choice(cls.resolutions)}
    steps.append((resolved, 6, "ticket.resolved", CASE_SOURCE, resolution))
    reopened = rng.random() < cls.reopen_share
    final = resolved
    if reopened:
        again = resolved + rng.uniform(2 * _HOUR, 30 * _HOUR)
        final = calendar.add(again, rng.lognormvariate(math.log(3 * _HOUR), 0.7))
        steps.append((again, 7, "ticket.reopened", CASE_SOURCE, {}))
        steps.append((final, 8, "ticket.resolved", CASE_SOURCE, dict(resolution)))
    close_delay = min(max(rng.lognormvariate(math.log(20 * _HOUR), 0.9), 600.0), 5 * _DAY)
    if rng.random() < ctx.target.survey_share:
        late = res_b > timing.res.target_hours * _HOUR or reopened
        p_good, p_bad = split_satisfaction(ctx.target.satisfaction, timing.res.late_share() + cls.reopen_share)
        data: dict[str, object] = {"channel": ctx.channel}
        data.update(answer(rng, p_bad if late else p_good, ctx.world.params.calibration.three_point_share))
        delay = min(rng.lognormvariate(math.log(2 * _HOUR), 1.0), close_delay - 120.0)
        steps.append((final + max(60.0, delay), 9, "survey.submitted", SMS_SURVEY_SOURCE, data))
    steps.append((final + close_delay, 10, "ticket.closed", CASE_SOURCE, {}))
    steps.sort(key=lambda step: (int(step[0]), step[1]))
    plan = PlanBuilder("T")
    for at, _, type_, source, data in steps:
        plan.add(at, type_, source, data)
    return plan.build()


def ticket_plans(world: World, info: DayInfo) -> list[Plan]:
    """The day's new tickets of every kind and channel."""
    plans: list[Plan] = []
    cv = world.params.calibration.daily_noise_cv
    for cls in TICKET_CLASSES:
        target = world.params.calibration.ticket_target(cls.kind)
        weights = _category_weights(cls, info)
        for channel, _ in cls.channels:
            name = f"ticket.{cls.kind}.{channel}"
            rates = rate_segments(world.streams[name], info, world.per_level_minute[name])
            if not rates:
                continue
            rng = world.rng(info.day, name)
            ctx = _Context(world, cls, channel, target, cls.categories, weights)
            for opened in draw_arrivals(rng, rates, day_multiplier(rng, cv)):
                plans.append(plan_ticket(rng, ctx, opened))
    return plans

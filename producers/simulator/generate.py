"""Day-by-day generation merged into one time-ordered stream of CloudEvents dicts."""

from __future__ import annotations

import heapq
import itertools
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import NamedTuple

from .calls import call_plans
from .days import local_date
from .params import DUBAI, Params
from .plan import Plan
from .tickets import ticket_plans
from .visits import visit_plans
from .world import World

ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:tawasul:simulator")
SPECVERSION = "1.0"
DATACONTENTTYPE = "application/json"


class Draft(NamedTuple):
    """An event waiting in the merge heap, ordered by (time, order)."""

    time: int
    order: int
    id: str
    type: str
    subject: str
    source: str
    data: dict[str, object]


def format_time(epoch: int) -> str:
    """RFC 3339 with the Asia/Dubai offset, e.g. 2025-01-01T07:30:05+04:00."""
    return datetime.fromtimestamp(epoch, DUBAI).isoformat()


def render(draft: Draft) -> dict[str, object]:
    """The CloudEvents structured-mode dict of a draft."""
    return {
        "specversion": SPECVERSION,
        "id": draft.id,
        "source": draft.source,
        "type": draft.type,
        "time": format_time(draft.time),
        "subject": draft.subject,
        "datacontenttype": DATACONTENTTYPE,
        "data": draft.data,
    }


def _subjects(params: Params, plans: list[Plan], stamp: str) -> Iterator[tuple[str, Plan]]:
    """Numbers a day's plans per prefix in order of their first event."""
    counters: dict[str, int] = {}
    tag = f"{params.tag}-" if params.tag else ""
    for plan in sorted(plans, key=lambda p: p.start):
        number = counters.get(plan.prefix, 0) + 1
        counters[plan.prefix] = number
        yield f"{plan.prefix}-{tag}{stamp}-{number:05d}", plan


def iter_drafts(params: Params) -> Iterator[Draft]:
    """Drafts of every event in [start, end) (and after, with `tail`), sorted by time."""
    world = World(params)
    start = int(params.start.timestamp())
    end = int(params.end.timestamp())
    heap: list[Draft] = []
    order = itertools.count()
    day = local_date(start)
    last_day = local_date(end - 1)
    while day <= last_day:
        info = world.info(day)
        plans = call_plans(world, info) + ticket_plans(world, info) + visit_plans(world, info)
        for subject, plan in _subjects(params, plans, day.strftime("%Y%m%d")):
            if not start <= plan.start < end:
                continue
            for index, step in enumerate(plan.steps):
                event_id = str(uuid.uuid5(ID_NAMESPACE, f"{params.seed}/{subject}/{index}"))
                heapq.heappush(
                    heap, Draft(step.time, next(order), event_id, step.type, subject, step.source, step.data)
                )
        day += timedelta(days=1)
        boundary = min(world.info(day).start, end)
        while heap and heap[0].time < boundary:
            yield heapq.heappop(heap)
    if params.tail:
        while heap:
            yield heapq.heappop(heap)


def iter_events(params: Params) -> Iterator[dict[str, object]]:
    """Every simulated event as a CloudEvents dict, sorted by `time`."""
    for draft in iter_drafts(params):
        yield render(draft)

"""Read-only queries on the SQL sink's tables that build one `Board`.

* `kpi_snapshots`: service level, ASA, abandon ratio (all queues and per queue) and satisfaction
  per channel over the configured window, as the KPI processor published them;
* `calls` / `visits`: today's counts and who is waiting now (and since when);
* `tickets` + `ticket_targets`: open tickets by SLA state; `sla_outcomes`: the newest breaches.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import Connection, Engine, case, func, select
from sqlalchemy.exc import SQLAlchemyError

from sinks.db.models import Call, KpiSnapshot, SlaOutcome, Ticket, Visit
from sinks.metrics_feed import (
    ALL,
    FIGURE_ABANDON,
    FIGURE_ASA,
    FIGURE_SATISFACTION,
    FIGURE_SERVICE_LEVEL,
    open_ticket_states,
    sla_state_of,
)
from sinks.wallboard.board import (
    Board,
    Breach,
    CallsFigures,
    CentreFigures,
    ChannelTickets,
    QueueFigures,
    Satisfaction,
    TicketFigures,
)
from sinks.wallboard.config import NO_TARGET, Band, WallboardConfig, WallboardError

__all__ = ["ANSWERED_CALL", "read_board"]

ANSWERED_CALL = Call.answered_at.is_not(None) & (Call.abandoned_at.is_(None) | (Call.answered_at <= Call.abandoned_at))
"""An answered call, by the report's rule: a call with both an answer and an abandonment counts
once, as answered unless it was abandoned first (at the same instant: answered)."""

Kpis = dict[tuple[str, str], tuple[float | None, int | None]]
"""(figure, scope value or ALL) -> (value, count)."""
BOARD_STATES = {"on_track": "on_track", "at_risk": "at_risk", "breached": "breached", "none": "no_sla"}
"""`sla_state` label value -> field of `TicketFigures`."""
SCOPE_KEYS = {
    FIGURE_SERVICE_LEVEL: "queue",
    FIGURE_ASA: "queue",
    FIGURE_ABANDON: "queue",
    FIGURE_SATISFACTION: "channel",
}


def read_board(engine: Engine, config: WallboardConfig, now: datetime) -> Board:
    """Everything the page shows as of `now` (aware), in one read-only transaction."""
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection = connection.execution_options(postgresql_readonly=True)
            with connection.begin():
                return _read(connection, config, now)
    except SQLAlchemyError as exc:
        raise WallboardError(f"cannot read the wallboard data: {type(exc).__name__}") from exc


def _read(connection: Connection, config: WallboardConfig, now: datetime) -> Board:
    local = now.astimezone(config.zone)
    day_start = datetime.combine(local.date(), time(0), tzinfo=config.zone)
    kpis = _kpis(connection, config.window)
    as_of = _data_as_of(connection)
    stale = as_of is None or (now - as_of).total_seconds() > config.stale_after_seconds
    return Board(
        generated_at=local,
        timezone=config.timezone,
        window=config.window,
        data_as_of=None if as_of is None else as_of.astimezone(config.zone),
        stale=stale,
        stale_after_seconds=config.stale_after_seconds,
        refresh_seconds=config.refresh_seconds,
        keepalive_seconds=config.keepalive_seconds,
        calls=_calls(connection, config, kpis, day_start, now),
        satisfaction=_satisfaction(config, kpis),
        tickets=_tickets(connection, config, now),
        walk_in=_walk_in(connection, config, day_start, now),
    )


def _kpis(connection: Connection, window: str) -> Kpis:
    rows = connection.execute(
        select(KpiSnapshot.figure, KpiSnapshot.scope, KpiSnapshot.value, KpiSnapshot.count).where(
            KpiSnapshot.figure.in_(sorted(SCOPE_KEYS)), KpiSnapshot.window == window
        )
    )
    kpis: Kpis = {}
    for figure, scope_text, value, count in rows:
        scope = _scope(scope_text)
        if scope is None or len(scope) > 1 or (scope and SCOPE_KEYS[figure] not in scope):
            continue
        kpis[(figure, scope.get(SCOPE_KEYS[figure], ALL))] = (value, count)
    return kpis


def _scope(text: str) -> dict[str, str] | None:
    try:
        scope = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return None
    return scope if isinstance(scope, dict) else None


def _data_as_of(connection: Connection) -> datetime | None:
    """The newest time the sink has stored anything for (KPI, ticket, outcome, call, visit)."""
    latest = connection.execute(
        select(
            select(func.max(KpiSnapshot.as_of)).scalar_subquery(),
            select(func.max(Ticket.updated_at)).scalar_subquery(),
            select(func.max(SlaOutcome.time)).scalar_subquery(),
            select(func.max(Call.offered_at)).scalar_subquery(),
            select(func.max(Visit.checked_in_at)).scalar_subquery(),
        )
    ).one()
    stamps = [_aware(value) for value in latest if value is not None]
    return max(stamps) if stamps else None


def _aware(value: Any) -> datetime:
    """`func.max` bypasses the column type on SQLite: parse text and add UTC where needed."""
    stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def _wait(now: datetime, since: Any) -> float | None:
    return None if since is None else max(0.0, (now - _aware(since)).total_seconds())


def _calls(
    connection: Connection, config: WallboardConfig, kpis: Kpis, day_start: datetime, now: datetime
) -> CallsFigures:
    targets = config.targets
    answered = ANSWERED_CALL
    today = connection.execute(
        select(
            Call.queue,
            func.count(),
            func.count(case((answered, 1))),
            func.count(case((~answered & Call.abandoned_at.is_not(None), 1))),
        )
        .where(Call.offered_at >= day_start, Call.offered_at <= now)
        .group_by(Call.queue)
    )
    counts = {queue or "unknown": (offered, answered, abandoned) for queue, offered, answered, abandoned in today}
    waiting_rows = connection.execute(
        select(Call.queue, func.count(), func.min(Call.offered_at))
        .where(
            Call.offered_at >= now - config.max_wait,
            Call.offered_at <= now,
            Call.answered_at.is_(None),
            Call.abandoned_at.is_(None),
            Call.ended_at.is_(None),
        )
        .group_by(Call.queue)
    )
    waiting = {queue or "unknown": (count, _wait(now, since)) for queue, count, since in waiting_rows}
    names = sorted(
        set(counts)
        | set(waiting)
        | {scope for (figure, scope) in kpis if SCOPE_KEYS[figure] == "queue" and scope != ALL}
    )
    queues = []
    for name in names:
        offered, answered, abandoned = counts.get(name, (0, 0, 0))
        count, longest = waiting.get(name, (0, None))
        level, asa, abandon = (
            kpis.get((f, name), (None, None))[0] for f in (FIGURE_SERVICE_LEVEL, FIGURE_ASA, FIGURE_ABANDON)
        )
        queues.append(
            QueueFigures(
                queue=name,
                offered_today=offered,
                answered_today=answered,
                abandoned_today=abandoned,
                waiting=count,
                longest_wait_seconds=longest,
                wait_status=_wait_status(targets.call_wait_seconds, longest),
                service_level=level,
                service_level_status=targets.service_level.status(level),
                asa_seconds=asa,
                asa_status=targets.asa_seconds.status(asa),
                abandon_ratio=abandon,
            )
        )
    level, asa, abandon = (
        kpis.get((f, ALL), (None, None))[0] for f in (FIGURE_SERVICE_LEVEL, FIGURE_ASA, FIGURE_ABANDON)
    )
    longest_all = max((q.longest_wait_seconds for q in queues if q.longest_wait_seconds is not None), default=None)
    return CallsFigures(
        offered_today=sum(q.offered_today for q in queues),
        answered_today=sum(q.answered_today for q in queues),
        abandoned_today=sum(q.abandoned_today for q in queues),
        waiting=sum(q.waiting for q in queues),
        longest_wait_seconds=longest_all,
        wait_status=_wait_status(targets.call_wait_seconds, longest_all),
        service_level=level,
        service_level_status=targets.service_level.status(level),
        asa_seconds=asa,
        asa_status=targets.asa_seconds.status(asa),
        abandon_ratio=abandon,
        abandon_status=targets.abandon_ratio.status(abandon),
        queues=tuple(queues),
    )


def _wait_status(band: Band, longest: float | None) -> str:
    """Nobody waiting is on target; otherwise the longest wait decides."""
    return band.status(0.0 if longest is None else longest)


def _satisfaction(config: WallboardConfig, kpis: Kpis) -> tuple[Satisfaction, ...]:
    channels = {scope for (figure, scope) in kpis if figure == FIGURE_SATISFACTION and scope != ALL}
    shown = [c for c in config.targets.satisfaction if c not in channels] + sorted(channels)
    result = []
    for channel in sorted(shown, key=lambda c: (c not in config.targets.satisfaction, c)):
        ratio, responses = kpis.get((FIGURE_SATISFACTION, channel), (None, None))
        band = config.targets.satisfaction_band(channel)
        result.append(
            Satisfaction(
                channel=channel,
                ratio=ratio,
                responses=responses,
                target=None if band is None else band.target,
                status=NO_TARGET if band is None else band.status(ratio),
            )
        )
    return tuple(result)


def _tickets(connection: Connection, config: WallboardConfig, now: datetime) -> TicketFigures:
    states = open_ticket_states(connection)
    per_channel: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(BOARD_STATES.values(), 0))
    for entry in states:
        per_channel[entry["channel"]][BOARD_STATES[sla_state_of(entry)]] += 1
    totals = {name: sum(c[name] for c in per_channel.values()) for name in BOARD_STATES.values()}
    return TicketFigures(
        **totals,
        by_channel=tuple(ChannelTickets(channel, **counts) for channel, counts in sorted(per_channel.items())),
        breaches=tuple(_breaches(connection, config.breaches_shown, now)),
    )


def _breaches(connection: Connection, limit: int, now: datetime) -> Iterable[Breach]:
    rows = connection.execute(
        select(
            SlaOutcome.ticket_id,
            SlaOutcome.target,
            SlaOutcome.category,
            SlaOutcome.channel,
            SlaOutcome.kind,
            SlaOutcome.priority,
            SlaOutcome.deadline,
            SlaOutcome.time,
            Ticket.status,
            Ticket.resolved_at,
            Ticket.closed_at,
        )
        .select_from(SlaOutcome)
        .outerjoin(Ticket, Ticket.ticket_id == SlaOutcome.ticket_id)
        .where(SlaOutcome.type == "sla.breached")
        .order_by(SlaOutcome.time.desc(), SlaOutcome.id)
        .limit(limit)
    )
    for ticket_id, target, category, channel, kind, priority, deadline, at, status, resolved, closed in rows:
        still_open = status in (None, "open")
        end = now if still_open else (resolved or closed or now)
        yield Breach(
            ticket_id=ticket_id,
            target=target,
            category=category,
            channel=channel,
            kind=kind,
            priority=priority,
            deadline=deadline,
            breached_at=at,
            late_seconds=max(0.0, (end - deadline).total_seconds()),
            still_open=still_open,
        )


def _walk_in(
    connection: Connection, config: WallboardConfig, day_start: datetime, now: datetime
) -> tuple[CentreFigures, ...]:
    def per_centre(column: Any) -> dict[str, int]:
        rows = connection.execute(
            select(Visit.centre, func.count()).where(column >= day_start, column <= now).group_by(Visit.centre)
        )
        return {centre or "unknown": count for centre, count in rows}

    # each by its own time: a visit checked in before midnight and completed after counts today
    checked_in_today, completed_today = per_centre(Visit.checked_in_at), per_centre(Visit.completed_at)
    counts = {
        centre: (checked_in_today.get(centre, 0), completed_today.get(centre, 0))
        for centre in checked_in_today.keys() | completed_today.keys()
    }
    waiting_rows = connection.execute(
        select(Visit.centre, func.count(), func.min(Visit.checked_in_at))
        .where(
            Visit.checked_in_at >= now - config.max_wait,
            Visit.checked_in_at <= now,
            Visit.called_at.is_(None),
            Visit.completed_at.is_(None),
            Visit.no_show_at.is_(None),
        )
        .group_by(Visit.centre)
    )
    waiting = {centre or "unknown": (count, _wait(now, since)) for centre, count, since in waiting_rows}
    band = config.targets.visit_wait_seconds
    result = []
    for centre in sorted(set(counts) | set(waiting)):
        checked_in, completed = counts.get(centre, (0, 0))
        count, longest = waiting.get(centre, (0, None))
        result.append(
            CentreFigures(
                centre=centre,
                checked_in_today=checked_in,
                completed_today=completed,
                waiting=count,
                longest_wait_seconds=longest,
                wait_status=_wait_status(band, longest),
            )
        )
    return tuple(result)

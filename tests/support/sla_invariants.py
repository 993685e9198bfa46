"""Invariants of a database the sink built: the SLA outcomes never contradict each other.

A target is never both met and breached in one resolution cycle unless the breach was withdrawn
(`sla.breach_withdrawn`, after which the sink no longer keeps the breach), and no target row
says `met` while flagged breached.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Engine, create_engine, text


def _cycle_of(outcome_id: str, kind: str) -> str | None:
    head, _, cycle = outcome_id.rpartition(":")
    return cycle if head.endswith(f":{kind}") else None


def sla_contradictions(database: Engine | str) -> list[str]:
    """Descriptions of every contradiction found (empty: the database agrees with itself)."""
    engine = create_engine(database) if isinstance(database, str) else database
    try:
        with engine.connect() as connection:
            outcomes = connection.execute(text("SELECT id, type, ticket_id, target FROM sla_outcomes")).all()
            targets = connection.execute(
                text("SELECT ticket_id, target FROM ticket_targets WHERE state = 'met' AND breached")
            ).all()
    finally:
        if isinstance(database, str):
            engine.dispose()
    kinds: dict[tuple[str, str, str | None], set[str]] = defaultdict(set)
    for outcome_id, kind, ticket_id, target in outcomes:
        kinds[(ticket_id, target, _cycle_of(outcome_id, kind))].add(kind)
    found = [
        f"{ticket}/{target} cycle {cycle}: both sla.met and sla.breached without a withdrawal"
        for (ticket, target, cycle), seen in sorted(kinds.items(), key=str)
        if {"sla.met", "sla.breached"} <= seen and "sla.breach_withdrawn" not in seen
    ]
    found += [f"{ticket}/{target}: ticket_targets says met and breached" for ticket, target in targets]
    return found


def assert_no_sla_contradictions(database: Engine | str) -> None:
    found = sla_contradictions(database)
    assert not found, f"{len(found)} SLA contradictions, e.g. {found[:5]}"

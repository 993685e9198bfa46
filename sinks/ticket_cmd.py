"""`tawasul ticket ID`: a ticket's whole SLA story from the database, as text or JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import ArgumentError

from sinks.db.engine import UnsupportedDatabase, make_engine
from sinks.report_cmd import explicit_policies, require_sqlite_file
from sinks.ticket_query import TicketQueryError, choose_book, load_ticket, story_json, tell
from tawasul.domain.errors import PolicyError
from tawasul.domain.period import PeriodError, parse_instant
from tawasul.infra.cli_options import settings_options
from tawasul.infra.settings import Settings

__all__ = ["render_text", "ticket", "ticket_story"]

TARGET_NAMES = {"first_response": "First response", "resolution": "Resolution"}


@click.command("ticket")
@click.argument("ticket_id")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="A readable story or its JSON.",
)
@click.option(
    "--at",
    "as_of",
    default=None,
    metavar="INSTANT",
    help="Tell the story as of this instant, ISO 8601 (a date alone is 00:00 Asia/Dubai) [default: now].",
)
@settings_options
def ticket(settings: Settings, ticket_id: str, output_format: str, as_of: str | None) -> None:
    """A ticket's SLA story: its events, the policy chosen and why, the business time counted,
    the holidays, Ramadan hours and pauses skipped, each deadline and warning and how it was
    computed, and the outcomes (computed beside stored).

    The policy book is the stored one the ticket was processed with; --policies FILE tells the
    story with FILE instead (a what-if)."""
    try:
        at = datetime.now(UTC) if as_of is None else parse_instant(as_of, "--at")
    except PeriodError as exc:
        raise click.UsageError(str(exc)) from exc
    result = ticket_story(settings, ticket_id, at, explicit_policies())
    if output_format == "json":
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        click.echo(render_text(result), nl=False)


def ticket_story(settings: Settings, ticket_id: str, at: datetime, what_if: Path | None) -> dict[str, Any]:
    """The story's JSON, read from the database of `settings` (raises `click.ClickException`)."""
    require_sqlite_file(settings.database_url)
    try:
        engine = make_engine(settings.database_url)
    except (UnsupportedDatabase, ArgumentError) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        records = load_ticket(engine, ticket_id)
        book, policies = choose_book(records, what_if, settings.policies_path)
        return story_json(tell(records, book, at), records, policies)
    except (TicketQueryError, PolicyError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()


def _when(text: str | None) -> str:
    if text is None:
        return "-"
    value = datetime.fromisoformat(text)
    return f"{value:%a %d %b %Y %H:%M}" + (f":{value:%S}" if value.second or value.microsecond else "")


def _span(a: str | None, b: str | None) -> str:
    if a and b and a[:10] == b[:10]:
        return f"{_when(a)}-{datetime.fromisoformat(b):%H:%M}"
    return f"{_when(a)} - {_when(b) if b else 'still running'}"


def _breakdown(b: Mapping[str, Any], indent: str) -> list[str]:
    """The counted intervals and the skipped days, in date order."""
    dated = [(i["from"][:10], f"{indent}{_span(i['from'], i['to'])}  {i['business']}") for i in b["intervals"]]
    for day in b["skipped_days"]:
        why = f"holiday: {day['name']}" if day["reason"] == "holiday" else day["reason"]
        dated.append((day["date"], f"{indent}skipped {datetime.fromisoformat(day['date']):%a %d %b %Y} ({why})"))
    lines = [line for _, line in sorted(dated, key=lambda item: item[0])] or [f"{indent}(no working time)"]
    if b["ramadan_days"]:
        days = ", ".join(f"{datetime.fromisoformat(d):%d %b}" for d in b["ramadan_days"])
        lines.append(f"{indent}Ramadan hours on {days}")
    return lines


def render_text(story: Mapping[str, Any]) -> str:
    """The story as plain text for a terminal."""
    p = story["profile"]
    lines = [f"Ticket {story['ticket_id']}: SLA story as of {_when(story['as_of'])} ({story['as_of'][-6:]})"]
    if p:
        lines.append(
            f"Opened as {p['channel']} / {p['kind']} / {p['category']}, priority {p['priority']}"
            + (f", department {p['department']}" if p.get("department") else "")
        )
    books = story["policies"]
    lines.append(
        f"Policy book: {books['name']} ({books['source']}, sha256 {books['sha256'][:12]}...)"
        + (f"; {books['note']}" if books.get("note") else "")
    )
    lines += ["", "Events, in the order the engine applies them:"]
    for e in story["events"]:
        details = " ".join(f"{k}={v}" for k, v in e["details"].items())
        note = f"  [{e['note']}]" if e["note"] else ""
        lines.append(f"  {_when(e['time'])}  {e['type']:<24}{details}{note}")
    for t in story["targets"]:
        pol = t["policy"]
        match = ", ".join(f"{k}={'|'.join(v)}" for k, v in pol["match"].items()) or "anything (no match keys)"
        lines += [
            "",
            f"{TARGET_NAMES.get(t['target'], t['target'])}: {t['status'].upper()}, {t['elapsed']} of "
            f"{pol['limit']} counted",
        ]
        lines.append(
            f"  policy {pol['name']} (policies[{pol['position']}], priority {pol['priority']}), "
            f"chosen by {match}; calendar {pol['calendar']}, warning at {pol['warn_at']:.0%}"
        )
        if pol["passed_over"]:
            lines.append(
                "  passed over: " + ", ".join(f"{x['policy']} ({x['misfit']} does not fit)" for x in pol["passed_over"])
            )
        for n, seg in enumerate(t["segments"], 1):
            lines.append(
                f"  clock segment {n} (cycle {seg['cycle']}): {_span(seg['from'], seg['to'])}, "
                f"{seg['counted']['business']} counted:"
            )
            lines += _breakdown(seg["counted"], "    ")
        for pause in t["pauses"]:
            lines.append(
                f"  {pause['why']}: {_span(pause['from'], pause['to'])}, "
                f"{pause['skipped_business']} of working time not counted"
            )
        basis = t["deadline_basis"]
        if t["deadline"] is None:
            lines.append("  deadline: none while the clock is paused")
        elif basis is not None:
            lines.append(
                f"  deadline {_when(t['deadline'])} = {basis['remaining']} of business time from "
                f"{_when(basis['from'])} ({pol['limit']} - {basis['counted_before']} counted before):"
            )
            lines += _breakdown(basis["walk"], "    ")
        lines.append(f"  warning instant: {_when(t['warning_at'])}; limit exceeded from: {_when(t['breached_from'])}")
        stored = next((s for s in story["stored"]["targets"] if s["target"] == t["target"]), None)
        if stored is not None:
            lines.append(
                f"  stored by the pipeline: {stored['state']}, deadline {_when(stored['deadline'])}"
                f"{', warned' if stored['warned'] else ''}{', breached' if stored['breached'] else ''}"
            )
    if story["no_policy"]:
        lines += ["", "No policy (no SLA) for: " + ", ".join(story["no_policy"])]
    lines += ["", "Outcomes (computed now | stored by the pipeline):"]
    for row in story["outcome_comparison"]:
        o = row["computed"] or row["stored"]
        lines.append(
            f"  {o['type']:<13}{o['target']:<16}at {_when(o['at'])}, deadline {_when(o['deadline'])}: {row['verdict']}"
        )
    if not story["outcome_comparison"]:
        lines.append("  none")
    return "\n".join(lines) + "\n"

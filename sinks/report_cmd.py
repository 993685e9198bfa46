"""`tawasul report`: the period report (contract section 6) from the database, as JSON or Markdown."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sinks.db.engine import UnsupportedDatabase, describe_url, make_engine
from sinks.report_query import ReportQueryError, load_report_events
from sinks.report_render import LANGUAGES, render_markdown
from tawasul.cli_options import policy_book, settings_options
from tawasul.domain.kpis import DEFAULT_THRESHOLD_SECONDS
from tawasul.domain.period import Period, PeriodError, parse_instant
from tawasul.domain.policies import PolicyBook
from tawasul.domain.report import build_report
from tawasul.settings import Settings

log = logging.getLogger(__name__)


@click.command("report")
@click.option("--from", "start", required=True, metavar="DATE",
              help="Start of the period, ISO 8601; a date alone is 00:00 Asia/Dubai.")
@click.option("--to", "end", required=True, metavar="DATE", help="End of the period, exclusive, same format.")
@click.option("--format", "output_format", type=click.Choice(["json", "md"]), default="json", show_default=True,
              help="JSON (the contract's object) or a Markdown document.")
@click.option("--lang", type=click.Choice(LANGUAGES), default="en", show_default=True,
              help="Language of the Markdown document.")
@click.option("--threshold-seconds", type=click.IntRange(min=0), default=DEFAULT_THRESHOLD_SECONDS,
              show_default=True, help="A call answered within this many seconds counts towards the service level.")
@settings_options
def report(settings: Settings, start: str, end: str, output_format: str, lang: str, threshold_seconds: int) -> None:
    """The period report: calls, tickets and their SLA, walk-in visits and satisfaction."""
    try:
        period = Period(parse_instant(start, "--from"), parse_instant(end, "--to"))
    except PeriodError as exc:
        raise click.UsageError(str(exc)) from exc
    book = policy_book(settings)
    began = time.perf_counter()
    result = _compute(settings.database_url, period, book, threshold_seconds)
    log.info("report computed", extra={"database": describe_url(settings.database_url),
                                        "seconds": round(time.perf_counter() - began, 3)})
    if output_format == "json":
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        click.echo(render_markdown(result, lang), nl=False)


def _compute(url: str, period: Period, book: PolicyBook, threshold_seconds: int) -> dict[str, object]:
    _require_sqlite_file(url)
    try:
        engine = make_engine(url)
    except (UnsupportedDatabase, ArgumentError) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        events = load_report_events(engine, period.start, period.end)
        return build_report(events, period.start, period.end, book, threshold_seconds=threshold_seconds)
    except ReportQueryError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()


def _require_sqlite_file(url: str) -> None:
    """Refuse a missing SQLite file (opening it would create an empty database)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise click.ClickException(f"bad database URL: {exc}") from exc
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        return
    if not Path(database).exists():
        raise click.ClickException(f"no database at {database}: run `tawasul db upgrade` "
                                   "(or start `tawasul sink`) and store some events first")

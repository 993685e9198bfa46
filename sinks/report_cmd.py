"""`tawasul report`: the period report (contract section 6) from the database, as JSON or Markdown."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from sinks.db.engine import UnsupportedDatabase, describe_error, describe_url, make_engine
from sinks.report_books import BookPlan, plan_books
from sinks.report_query import ReportQueryError, load_report_events, require_events_table
from sinks.report_render import LANGUAGES, render_by_markdown, render_markdown
from tawasul.domain.errors import PolicyError
from tawasul.domain.kpis import DEFAULT_THRESHOLD_SECONDS
from tawasul.domain.period import Period, PeriodError, parse_instant
from tawasul.domain.report import build_report
from tawasul.domain.report_by import BY, BY_DATA_EVENT_TYPES, By, build_report_by
from tawasul.domain.report_result import Report, ReportBy
from tawasul.infra.cli_options import settings_options
from tawasul.infra.policy_books import read_policy_file
from tawasul.infra.settings import Settings

log = logging.getLogger(__name__)


@click.command("report")
@click.option(
    "--from",
    "start",
    required=True,
    metavar="DATE",
    help="Start of the period, ISO 8601; a date alone is 00:00 Asia/Dubai.",
)
@click.option("--to", "end", required=True, metavar="DATE", help="End of the period, exclusive, same format.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "md"]),
    default="json",
    show_default=True,
    help="JSON (the contract's object) or a Markdown document.",
)
@click.option(
    "--lang", type=click.Choice(LANGUAGES), default="en", show_default=True, help="Language of the Markdown document."
)
@click.option(
    "--by",
    "by",
    type=click.Choice(BY),
    default=None,
    help="Figures per agent or per team instead of the department's report.",
)
@click.option(
    "--threshold-seconds",
    type=click.IntRange(min=0),
    default=DEFAULT_THRESHOLD_SECONDS,
    show_default=True,
    help="A call answered within this many seconds counts towards the service level.",
)
@settings_options
def report(
    settings: Settings, start: str, end: str, output_format: str, lang: str, threshold_seconds: int, by: By | None
) -> None:
    """The period report: calls, tickets and their SLA, walk-in visits and satisfaction.

    SLA figures use the policy book(s) the data was processed with (stored by the sink);
    --policies FILE recomputes them with FILE instead, as a what-if marked in the output."""
    try:
        period = Period(parse_instant(start, "--from"), parse_instant(end, "--to"))
    except PeriodError as exc:
        raise click.UsageError(str(exc)) from exc
    what_if = explicit_policies()
    if what_if is not None:
        check_policy_file(what_if)  # named before the database is opened
    began = time.perf_counter()
    result = _compute(settings, period, what_if, threshold_seconds, by)
    log.info(
        "report computed",
        extra={"database": describe_url(settings.database_url), "seconds": round(time.perf_counter() - began, 3)},
    )
    if output_format == "json":
        click.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        text = render_markdown(result, lang) if isinstance(result, Report) else render_by_markdown(result, lang)
        click.echo(text, nl=False)


def check_policy_file(path: Path) -> None:
    """A `click.ClickException` naming the file and what is wrong when it cannot be used."""
    try:
        read_policy_file(path)
    except PolicyError as exc:
        raise click.ClickException(str(exc) if str(path) in str(exc) else f"SLA policy file {path}: {exc}") from exc


def explicit_policies() -> Path | None:
    """The policy file given with `--policies` on the command line (the command's or the root's);
    None when it comes from TAWASUL_POLICIES or the default."""
    ctx = click.get_current_context()
    given = ctx.params.get("policies") or ctx.find_root().params.get("policies")
    return None if not given else Path(given)


def _compute(
    settings: Settings, period: Period, what_if: Path | None, threshold_seconds: int, by: By | None = None
) -> Report | ReportBy:
    url = settings.database_url
    require_sqlite_file(url)
    try:
        engine = make_engine(url)
    except (UnsupportedDatabase, ArgumentError) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        require_events_table(engine)
        try:
            plan: BookPlan = plan_books(engine, period, what_if, settings.policies_path)
        except SQLAlchemyError as exc:
            raise ReportQueryError(f"reading the policy books failed: {describe_error(exc)}") from exc
        result: Report | ReportBy
        if by is None:
            events = load_report_events(engine, period.start, period.end)
            result = build_report(events, period.start, period.end, plan.book_for, threshold_seconds=threshold_seconds)
        else:
            events = load_report_events(engine, period.start, period.end, BY_DATA_EVENT_TYPES)
            result = build_report_by(events, period.start, period.end, plan.book_for, by=by)
    except ReportQueryError as exc:
        raise click.ClickException(str(exc)) from exc
    except PolicyError as exc:
        raise click.ClickException(f"SLA policy file: {exc}") from exc
    finally:
        engine.dispose()
    return result.with_policies(plan.to_json())


def require_sqlite_file(url: str) -> None:
    """Refuse a missing SQLite file (opening it would create an empty database)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise click.ClickException(f"bad database URL: {exc}") from exc
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return
    if not Path(database).exists():
        raise click.ClickException(
            f"no database at {database}: run `tawasul db upgrade` (or start `tawasul sink`) and store some events first"
        )

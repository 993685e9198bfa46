"""`tawasul replay FILE`: publish a recorded period and run it through the whole pipeline."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tawasul.app.replay import ENGINES, Engine, ReplayError, replay_file
from tawasul.infra.cli_options import policy_book, settings_options
from tawasul.infra.settings import Settings


@click.command("replay")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--progress/--no-progress", default=None, help="Show progress (default: when stderr is a terminal)")
@click.option("--keep-topics", is_flag=True, help="Keep the run's Kafka topics afterwards (for inspection)")
@click.option("--timeout", "timeout_s", default=3600.0, show_default=True, help="Give up after this many seconds")
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="batch",
    show_default=True,
    help="batch: the processors' replay logic over large batches (fast); "
    "faust: the live worker's faust agents (same results, slower)",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="batch engine: SLA engine processes, by partition group, feeding one KPI process "
    "(default: the number of CPUs; the results are the same whatever the number)",
)
@settings_options
def replay(
    file: str,
    progress: bool | None,
    keep_topics: bool,
    timeout_s: float,
    engine: Engine,
    jobs: int | None,
    settings: Settings,
) -> None:
    """Replay FILE (JSON Lines, `-` = stdin) through the stream processors on the event-time clock
    into the database, and exit when every event has been processed and stored.

    Exit status 0 when every line was valid, 1 when any was rejected (the valid ones are replayed).
    """
    policy_book(settings)  # a policy file that cannot be used is named before anything starts
    console = Console(stderr=True)
    show = console.is_terminal if progress is None else progress
    path = None if file == "-" else Path(file)
    total = path.stat().st_size if path is not None else None
    rejected_lines: list[str] = []

    def report(line_no: int, rejected: object) -> None:
        line = f"line {line_no}: {getattr(rejected, 'reason', rejected)}"
        rejected_lines.append(line)
        click.echo(line)

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not show,
        transient=True,
    ) as bar:
        task = bar.add_task("replay", total=total, detail="")

        def stage(name: str) -> None:
            bar.update(task, description=name)
            if not show:
                console.print(f"replay: {name}")

        def published(done: int) -> None:
            size = f"/{total / 1e6:,.1f}" if total else ""
            bar.update(task, completed=done, detail=f"{done / 1e6:,.1f}{size} MB")

        def counted(name: str, done: int, of: int) -> None:
            unit = "messages" if name == "processing" else "records"
            bar.update(task, completed=done, total=max(of, 1), detail=f"{done:,}/{of:,} {unit}")

        try:
            summary = replay_file(
                path,
                settings,
                stream=sys.stdin.buffer if path is None else None,
                stage=stage,
                progress=published,
                report_rejected=report,
                timeout_s=timeout_s,
                keep_topics=keep_topics,
                engine=engine,
                counted=counted,
                favour_engine=True,
                jobs=jobs,
            )
        except ReplayError as error:
            raise click.ClickException(str(error)) from error
    click.echo(summary.line(), err=True)
    if summary.rejected:
        sys.exit(1)

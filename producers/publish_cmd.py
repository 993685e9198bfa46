"""`tawasul publish FILE|-`: validate a JSON Lines file of events and publish the valid ones.

Each line is checked against the contract (`producers.intake`, through `producers.lines`); valid
events go to the events topic (key = subject, value = the line as written), rejected ones to
the dead-letter topic and to stdout as `line N: reason`. Blank lines are skipped. Memory stays
flat for files of any size. Exit status: 0 when every line was valid, 1 when any was rejected
(the valid ones are still published), 3 when Kafka did not confirm every send, 128 + signal
number when interrupted (after flushing what was sent).
"""

from __future__ import annotations

import sys
import time
from contextlib import suppress
from pathlib import Path

import click

from producers.intake import Rejected
from producers.lines import READ_BUFFER, StopOnSignal, default_workers, publish_lines
from producers.publish_run import byte_progress, finish, live_skew, open_file_publisher, pseudonymiser_from_env
from producers.publisher import PublishError
from tawasul.infra.cli_options import settings_options
from tawasul.infra.exit_codes import EXIT_KAFKA
from tawasul.infra.settings import Settings


@click.command("publish")
@click.argument("file", metavar="FILE|-", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr [default: when stderr is a terminal and FILE is a file].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Validation processes (0 = validate in this process) [default: CPUs - 1, at most 4, "
    "for files of 16 MiB or more; else 0].",
)
@click.option(
    "--history",
    is_flag=True,
    help="The file is a recorded or simulated period: no bound on how far event times lie ahead of "
    "the clock (TAWASUL_MAX_CLOCK_SKEW, default 5m, applies otherwise).",
)
@settings_options
def publish(file: str, progress: bool | None, workers: int | None, history: bool, settings: Settings) -> None:
    """Validate each line of a JSON Lines file of events and publish the valid ones.

    Prints `line N: reason` for each rejected line (also sent to the dead-letter topic).
    Exit status 0 when all lines were valid, 1 when any was rejected, 3 on a Kafka failure.
    """
    pseudonymiser = pseudonymiser_from_env(required=False)
    max_skew = None if history else live_skew()
    from_stdin = file == "-"
    name = "stdin" if from_stdin else Path(file).name
    total = None if from_stdin else Path(file).stat().st_size
    show = sys.stderr.isatty() if progress is None else progress
    workers = default_workers(total) if workers is None else workers
    publisher = open_file_publisher(settings, "tawasul-publish", workers)

    def report(line_no: int, rejected: Rejected) -> None:
        click.echo(f"line {line_no}: {rejected.reason}")

    began = time.perf_counter()
    with StopOnSignal() as signals:
        handle = sys.stdin.buffer if from_stdin else open(file, "rb", buffering=READ_BUFFER)  # noqa: SIM115  # stdin is not ours to close: closed in the finally below
        try:
            with byte_progress(total, show and not from_stdin) as update:
                summary = publish_lines(
                    handle,
                    name,
                    publisher,
                    pseudonymiser,
                    report=report,
                    progress=update,
                    stop=signals,
                    workers=workers,
                    max_skew=max_skew,
                )
        except PublishError as exc:
            click.echo(f"error: {exc}", err=True)
            with suppress(PublishError):
                publisher.close(timeout_s=5)
            sys.exit(EXIT_KAFKA)
        finally:
            if not from_stdin:
                handle.close()
        sys.exit(finish(publisher, summary, signals, began))

"""`tawasul adapters queue-log|import-csv`: the file adapters wired to intake and the publisher.

Both translate their input with the adapter modules (`producers.queue_log`,
`producers.follow`, `producers.csv_import`), validate every event with `producers.intake`,
publish the valid ones and send the rest to the dead-letter topic with origin `<file>:<line>`;
each rejected line is also printed to stdout as `line N: reason`. The pseudonymisation key
comes from `TAWASUL_PSEUDONYM_KEY`.

Dead letters of lines an adapter could not translate keep: for queue_log, the line with
every phone-number field replaced by `[redacted]`; for CSV, nothing of the row (it may hold
personal columns the mapping never reads) - the origin names the file line to look at.

Exit status: 0, or 1 when any line was rejected (a run that reads a file once), 3 on a Kafka
failure, 128 + signal when a run over a file was interrupted. `queue-log --follow` runs until
SIGINT/SIGTERM and then exits 0 after its last flush and checkpoint.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final, Literal

import click

from producers.csv_import import CsvImportError, read_csv_events
from producers.follow import FileFollower, FollowError, Position, load_position, save_position
from producers.intake import Outcome, Rejected, accept_object, reject
from producers.lines import PublishSummary, StopOnSignal
from producers.publish_run import EXIT_OK, EXIT_REJECTED, byte_progress, open_publisher, pseudonymiser_from_env
from producers.publisher import EventPublisher, PublishError
from producers.queue_log import (
    AdapterError,
    QueueLogError,
    QueueLogOptions,
    default_prefix,
    load_options,
    translate_numbered,
)
from tawasul.infra.cli_options import settings_options
from tawasul.infra.exit_codes import EXIT_KAFKA, EXIT_USAGE
from tawasul.infra.privacy import redact_delimited
from tawasul.infra.pseudonymise import Pseudonymiser
from tawasul.infra.settings import Settings

COMMIT_EVERY_S: Final = 1.0
"""Flush and save the checkpoint at least this often while events are flowing or idle."""
COMMIT_EVERY_EVENTS: Final = 5_000


class Committer:
    """Flushes the publisher and then saves the follower's checkpoint, at most every
    COMMIT_EVERY_S or COMMIT_EVERY_EVENTS; used as the follower's stop signal, so it also
    runs while the follower waits for new lines."""

    def __init__(self, publisher: EventPublisher, checkpoint: Path | None, signals: StopOnSignal) -> None:
        self.publisher = publisher
        self.checkpoint = checkpoint
        self.signals = signals
        self.follower: FileFollower | None = None
        self.unsaved = 0
        self._last = time.monotonic()

    def __call__(self) -> bool:
        """True when the follower should stop; commits first when one is due."""
        if self.signals.event.is_set():
            return True
        now = time.monotonic()
        if self.unsaved >= COMMIT_EVERY_EVENTS or (self.unsaved and now - self._last >= COMMIT_EVERY_S):
            self.commit()
        return False

    def commit(self) -> None:
        """Wait for every send to be confirmed, then record how far the file was read."""
        self.publisher.flush()
        position = self.follower.position if self.follower is not None else None
        if self.checkpoint is not None and position is not None:
            save_position(self.checkpoint, position)
        self.unsaved = 0
        self._last = time.monotonic()


def _remember(lines: Iterator[tuple[int, str]], last: list[str]) -> Iterator[tuple[int, str]]:
    """Pass lines on, keeping the latest text in `last[0]` (the line an adapter error is about)."""
    for line_no, text in lines:
        last[0] = text
        yield line_no, text


def _queue_log_options(options_path: str | None, prefix: str | None, pseudonymiser: Pseudonymiser) -> QueueLogOptions:
    try:
        if options_path is not None:
            return load_options(options_path, pseudonymiser=pseudonymiser, prefix=prefix)
        return QueueLogOptions(prefix=prefix or default_prefix(), pseudonymiser=pseudonymiser)
    except QueueLogError as exc:
        raise click.UsageError(str(exc)) from None


def _start(checkpoint: Path | None, follow: bool, from_start: bool) -> Position | Literal["beginning", "end"]:
    try:
        saved = load_position(checkpoint) if checkpoint is not None else None
    except FollowError as exc:
        raise click.UsageError(str(exc)) from None
    if saved is not None:
        return saved
    return "beginning" if from_start or not follow else "end"


def _report(line_no: int, rejected: Rejected) -> None:
    click.echo(f"line {line_no}: {rejected.reason}")


def _exit(publisher: EventPublisher, summary: PublishSummary, code: int, committer: Committer | None = None) -> None:
    """Flush (saving the checkpoint), close, print the summary and exit with `code` (3 on failure)."""
    try:
        if committer is not None:
            committer.commit()
        publisher.close()
    except PublishError as exc:
        click.echo(f"error: {exc}", err=True)
        click.echo(summary.line(), err=True)
        sys.exit(EXIT_KAFKA)
    click.echo(summary.line(), err=True)
    sys.exit(code)


@click.group("adapters")
def adapters() -> None:
    """Publish the records of existing systems: the PBX queue_log, CSV history exports."""


@adapters.command("queue-log")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--follow", is_flag=True, help="Keep reading as the file grows, across rotation (like tail -F).")
@click.option(
    "--from-start",
    is_flag=True,
    help="With --follow and no checkpoint yet: start at the beginning of the file, not its end.",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File recording how far the log was published; a restart continues from there.",
)
@click.option("--prefix", default=None, help="Call id prefix, unique per PBX [default: options file, else pbx-<host>].")
@click.option(
    "--options",
    "options_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="YAML adapter options (prefix, source, timezone, languages, wrap-up, agents).",
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0.05),
    default=0.5,
    show_default=True,
    help="Seconds between checks for new lines with --follow.",
)
@settings_options
def queue_log(
    file: str,
    follow: bool,
    from_start: bool,
    checkpoint: Path | None,
    prefix: str | None,
    options_path: str | None,
    poll: float,
    settings: Settings,
) -> None:
    """Publish the call events of an Asterisk queue_log (once, or following it with --follow)."""
    pseudonymiser = pseudonymiser_from_env(required=True)
    if pseudonymiser is None:
        raise click.UsageError("TAWASUL_PSEUDONYM_KEY is not set")
    options = _queue_log_options(options_path, prefix, pseudonymiser)
    start = _start(checkpoint, follow, from_start)
    if not follow and not Path(file).is_file():
        raise click.UsageError(f"{file} does not exist")
    name = Path(file).name
    publisher = open_publisher(settings, "tawasul-queue-log")
    published = rejected = 0
    began = time.perf_counter()
    last = [""]
    with StopOnSignal() as signals:
        committer = Committer(publisher, checkpoint, signals)
        follower = FileFollower(file, start=start, poll_interval=poll, stop=committer, stop_at_eof=not follow)
        committer.follower = follower
        try:
            for line_no, item in translate_numbered(_remember(follower.lines(), last), options):
                origin = f"{name}:{line_no}"
                if isinstance(item, AdapterError):
                    raw = redact_delimited(last[0].encode("utf-8", "surrogateescape"), b"|", first_field=5)
                    outcome: Outcome = reject(raw, item.reason, origin)
                else:
                    outcome = accept_object(item, origin, pseudonymiser)
                publisher.route(outcome, source_kind="queue_log")
                if isinstance(outcome, Rejected):
                    rejected += 1
                    _report(line_no, outcome)
                else:
                    published += 1
                committer.unsaved += 1
        except (PublishError, FollowError) as exc:
            # no checkpoint now: the lines of a failed send must be read again
            click.echo(f"error: {exc}", err=True)
            summary = PublishSummary(published, rejected, time.perf_counter() - began, True)
            _exit(publisher, summary, EXIT_KAFKA if isinstance(exc, PublishError) else EXIT_USAGE)
        stopped = signals.event.is_set()
        summary = PublishSummary(published, rejected, time.perf_counter() - began, stopped and not follow)
        if follow:
            code = EXIT_OK
        elif stopped and signals.exit_code is not None:
            code = signals.exit_code
        else:
            code = EXIT_REJECTED if rejected else EXIT_OK
        _exit(publisher, summary, code, committer)


@adapters.command("import-csv")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--mapping",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="YAML mapping of the file's columns to event attributes (see docs/adapters.md).",
)
@click.option("--source", default="/import/csv", show_default=True, help="CloudEvents source of rows without one.")
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar on stderr [default: when stderr is a terminal]."
)
@settings_options
def import_csv(file: str, mapping: str | None, source: str, progress: bool | None, settings: Settings) -> None:
    """Publish a CSV history export, one event per row."""
    pseudonymiser = pseudonymiser_from_env(required=False)
    name = Path(file).name
    show = sys.stderr.isatty() if progress is None else progress
    published = rejected = 0
    began = time.perf_counter()
    with StopOnSignal() as signals, byte_progress(Path(file).stat().st_size, show, "importing") as update:
        try:
            rows = read_csv_events(
                file,
                mapping,
                None if update is None else (lambda done, _total: update(done)),
                source=source,
                pseudonymiser=pseudonymiser,
            )
        except CsvImportError as exc:
            raise click.UsageError(str(exc)) from None
        publisher = open_publisher(settings, "tawasul-import-csv")
        try:
            for line_no, item in rows:
                if signals.event.is_set():
                    break
                origin = f"{name}:{line_no}"
                if isinstance(item, AdapterError):
                    outcome: Outcome = reject(b"", item.reason, origin)
                else:
                    outcome = accept_object(item, origin, pseudonymiser)
                publisher.route(outcome, source_kind="csv")
                if isinstance(outcome, Rejected):
                    rejected += 1
                    _report(line_no, outcome)
                else:
                    published += 1
        except PublishError as exc:
            click.echo(f"error: {exc}", err=True)
            _exit(publisher, PublishSummary(published, rejected, time.perf_counter() - began, True), EXIT_KAFKA)
        stopped = signals.event.is_set()
        summary = PublishSummary(published, rejected, time.perf_counter() - began, stopped)
        if stopped and signals.exit_code is not None:
            code = signals.exit_code
        else:
            code = EXIT_REJECTED if rejected else EXIT_OK
        _exit(publisher, summary, code)

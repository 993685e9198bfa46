"""A publishing command's run around `producers.lines.publish_lines`: its settings read with clear
usage errors, the publisher opened (topics created; exit status 3 when Kafka is not usable), a
progress bar, and the final flush that decides the exit status (0 all valid, 1 some rejected,
3 Kafka did not confirm every send, 128 + signal number when interrupted).

Shared by `tawasul publish`, `tawasul adapters` and `tawasul replay`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Final, TypeVar

import click
from kafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from producers.bulk_publisher import BulkPublisher
from producers.intake import SkewSettingError, max_clock_skew
from producers.lines import ByteProgress, LinePublisher, PublishSummary, StopOnSignal
from producers.publisher import EventPublisher, PublishError
from tawasul.infra.exit_codes import EXIT_KAFKA
from tawasul.infra.pseudonymise import PseudonymiseError, Pseudonymiser, from_env
from tawasul.infra.settings import Settings
from tawasul.infra.topics import ensure_topics

EXIT_OK: Final = 0
EXIT_REJECTED: Final = 1


@contextmanager
def byte_progress(total: int | None, enabled: bool, label: str = "publishing") -> Iterator[ByteProgress | None]:
    """A rich progress bar on stderr, by bytes; yields its update function (None when disabled)."""
    if not enabled or not total:
        yield None
        return
    columns = (
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(label, total=total)

        def update(done: int) -> None:
            bar.update(task, completed=min(done, total))

        yield update


def pseudonymiser_from_env(required: bool) -> Pseudonymiser | None:
    """The pseudonymiser of TAWASUL_PSEUDONYM_KEY; a clear usage error when it is unusable."""
    try:
        return from_env(required=required)
    except PseudonymiseError as exc:
        raise click.UsageError(str(exc)) from None


def live_skew() -> timedelta | None:
    """TAWASUL_MAX_CLOCK_SKEW read once (a clear usage error when it is not a duration)."""
    try:
        return max_clock_skew()
    except SkewSettingError as exc:
        raise click.UsageError(str(exc)) from None


def open_publisher(settings: Settings, client_id: str) -> EventPublisher:
    """Create the topics when missing and connect a publisher; exits with status 3 on failure."""
    return _opened(lambda: EventPublisher(settings, client_id=client_id), settings)


def open_file_publisher(settings: Settings, client_id: str, workers: int) -> LinePublisher:
    """The publisher of `publish_lines` for `workers`: record batches (`BulkPublisher`) when
    the lines are validated in worker processes, else `EventPublisher`; as `open_publisher`."""
    if workers <= 0:
        return open_publisher(settings, client_id)
    return _opened(lambda: BulkPublisher(settings, client_id=client_id), settings)


P = TypeVar("P")


def _opened(connect: Callable[[], P], settings: Settings) -> P:
    try:
        ensure_topics(settings.kafka, settings.topic_prefix)
        return connect()
    except (KafkaError, PublishError) as exc:
        click.echo(f"error: Kafka at {settings.kafka} is not usable: {exc}", err=True)
        sys.exit(EXIT_KAFKA)


def finish(publisher: LinePublisher, summary: PublishSummary, signals: StopOnSignal, began: float) -> int:
    """Flush and close, print the summary (its time counting from `began`, the final flush
    included) on stderr, and return the exit status."""
    try:
        publisher.close()
        summary = replace(summary, seconds=time.perf_counter() - began)
    except PublishError as exc:
        click.echo(f"error: {exc}", err=True)
        click.echo(summary.line(), err=True)
        return EXIT_KAFKA
    click.echo(summary.line(), err=True)
    if signals.exit_code is not None:
        return signals.exit_code
    return EXIT_REJECTED if summary.rejected else EXIT_OK

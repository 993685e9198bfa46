"""`tawasul replay FILE`: the whole pipeline as a batch, on the event-time clock.

The main flow at a glance::

    topics of this run (prefix)  ->  stream processors (replay mode, a thread)
                                 ->  database sink (a thread)
    publish FILE                 ->  end-of-input watermark  ->  wait: processors drained
                                 ->  wait: sink stored every record  ->  stop, delete the run's topics

A replay uses topics of its own, so it never disturbs a live pipeline on the same broker, and
writes into the database of `settings` with the same idempotent upserts as the live sink: a
second replay of the same file changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal, Protocol

from tawasul.infra.kafka_security import kafka_python_options
from tawasul.infra.metrics import Metrics
from tawasul.infra.policy_books import publish_policy_book
from tawasul.infra.settings import Settings
from tawasul.infra.topics import (
    EVENTS,
    KPIS,
    POLICIES,
    SLA_OUTCOMES,
    TICKET_STATE,
    ensure_topics,
    partition_end_offsets,
)

if TYPE_CHECKING:  # faust is imported only when the faust engine runs
    from stream_processors.kpi_agent import KpiProcessor
    from stream_processors.runner import AppThread

log = logging.getLogger("tawasul.replay")

Engine = Literal["batch", "faust"]
ENGINES: tuple[Engine, ...] = ("batch", "faust")

Stage = Callable[[str], None]
"""Told the name of each stage as it begins (for progress display)."""
Counted = Callable[[str, int, int], None]
"""Told (stage, done, total) while the replay waits for the processors and the sink."""

_TIME = re.compile(rb'"time"\s*:\s*"([^"]+)"')


class ReplayError(RuntimeError):
    """The replay could not finish; the message says which stage failed."""


@dataclass(frozen=True)
class ReplaySummary:
    events: int
    rejected: int
    stored: Mapping[str, int]
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        stored = ", ".join(f"{topic.rsplit('.', 1)[-1]} {count}" for topic, count in sorted(self.stored.items()))
        return (
            f"replayed {self.events} events ({self.rejected} rejected) in {self.seconds:.1f} s, "
            f"{self.rate:,.0f} events/s; stored: {stored}"
        )


class LatestTime:
    """Wraps a publisher to remember the latest event `time` it published (the end of the input)."""

    def __init__(self, publisher: object) -> None:
        self._publisher = publisher
        self.latest: datetime | None = None

    def publish_validated(self, key: bytes, value: bytes, *, channel: str, event_type: str) -> object:
        found = _TIME.search(value)
        if found:
            when = datetime.fromisoformat(found.group(1).decode().replace("Z", "+00:00"))
            if self.latest is None or when > self.latest:
                self.latest = when
        return self._publisher.publish_validated(key, value, channel=channel, event_type=event_type)  # type: ignore[attr-defined]  # the wrapped object is a LinePublisher

    def __getattr__(self, name: str) -> object:
        return getattr(self._publisher, name)


def run_prefix() -> str:
    return f"replay-{uuid.uuid4().hex[:10]}."


def _end_offsets(settings: Settings, topic_names: list[str]) -> dict[str, int]:
    totals: dict[str, int] = dict.fromkeys(topic_names, 0)
    for (topic, _partition), offset in partition_end_offsets(settings.kafka, topic_names).items():
        totals[topic] += offset
    return totals


def _delete_run_topics(settings: Settings) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka, client_id="tawasul-replay-cleanup", **kafka_python_options()
    )
    try:
        mine = [name for name in admin.list_topics() if name.startswith(settings.topic_prefix)]
        if mine:
            admin.delete_topics(mine)
    finally:
        admin.close()


@contextmanager
def _sink_thread(
    settings: Settings, metrics: Metrics, stored: dict[str, int], failure: list[BaseException]
) -> Iterator[threading.Thread]:
    """The database sink in a thread; what made it fail goes to `failure`."""
    from sinks.consumer import run_db_sink

    stop = threading.Event()

    def progress(counts: Mapping[str, int]) -> None:
        stored.update(counts)

    def main() -> None:
        try:
            run_db_sink(
                settings,
                stop=stop,
                metrics=metrics,
                group_id=settings.topic("sink"),
                on_progress=progress,
                batch_max=10_000,
                batch_wait_s=0.2,
                assign=True,
            )
        except BaseException as exc:  # noqa: BLE001 - reported by the waiting thread
            failure.append(exc)

    thread = threading.Thread(target=main, name="replay-sink", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(120)
    if failure:
        raise ReplayError(f"database sink failed: {failure[0]!r}") from failure[0]


def _wait(condition: Callable[[], bool], what: str, timeout_s: float, alive: Callable[[], None]) -> None:
    give_up = time.monotonic() + timeout_s
    while not condition():
        alive()
        if time.monotonic() > give_up:
            raise ReplayError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


def replay_file(
    path: Path | None,
    settings: Settings,
    *,
    stream: BinaryIO | None = None,
    stage: Stage = lambda name: None,
    progress: Callable[[int], None] | None = None,
    report_rejected: Callable[[int, object], None] | None = None,
    timeout_s: float = 3600.0,
    keep_topics: bool = False,
    engine: Engine = "batch",
    counted: Counted | None = None,
    favour_engine: bool = False,
    jobs: int | None = None,
) -> ReplaySummary:
    """Publish, process and store one JSON Lines file; returns when everything is in the database.

    `engine` "batch" runs the stream processors' replay logic over large batches in a process
    of its own (`stream_processors.batch_runner`); "faust" runs the faust agents (the live
    worker's code path) in a thread. Both give the same outcomes, states and figures.
    `counted(stage, done, total)` is told, while the replay waits, how many input messages the
    processors handled ("processing") and how many output records the sink stored ("storing").
    `favour_engine` (batch engine only): see `_yield_cpu`; for a process that ends with the
    replay, as `tawasul replay`. `jobs` (batch engine only): SLA engine processes, by partition
    group, feeding one KPI process (`stream_processors.batch_jobs`); by default the number of
    CPUs; the outputs are the same whatever the number.
    """
    from producers.lines import default_workers, publish_lines
    from producers.publish_run import open_file_publisher, pseudonymiser_from_env
    from stream_processors.runner import GroupProgress, send_end_of_input

    if engine not in ENGINES:
        raise ReplayError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    began = time.perf_counter()
    stage("checking the database")
    _prepare_database(settings.database_url)
    run = settings.with_prefix(settings.topic_prefix + run_prefix())
    metrics = Metrics()
    stage("creating the run's topics")
    ensure_topics(run.kafka, run.topic_prefix)
    publish_policy_book(run, "replay")  # the sink stores the book; outcomes carry its hash
    stored: dict[str, int] = {}
    try:
        stage("starting the stream processors")
        sink_failure: list[BaseException] = []
        with contextlib.ExitStack() as running:
            processors, app_id = running.enter_context(_processors(run, engine, metrics, default_jobs(jobs)))
            if favour_engine and engine == "batch":
                _yield_cpu()  # the engine runs: the sink and the publisher, started next, inherit it
            sink = running.enter_context(_sink_thread(run, metrics, stored, sink_failure))

            def alive() -> None:
                try:
                    processors.raise_if_dead()
                except RuntimeError as exc:
                    raise ReplayError(str(exc)) from exc
                if not sink.is_alive():
                    raise ReplayError(
                        f"the database sink stopped: {sink_failure[0]!r}"
                        if sink_failure
                        else "the database sink stopped"
                    )

            stage("publishing")
            workers = default_workers(path.stat().st_size if path is not None else None)
            publisher = open_file_publisher(run, "tawasul-replay", workers)
            latest = LatestTime(publisher)
            name = path.name if path is not None else "stdin"
            handle = stream if stream is not None else path.open("rb")  # type: ignore[union-attr]  # path is set whenever stream is None
            try:
                summary = publish_lines(
                    handle,
                    name,
                    latest,  # type: ignore[arg-type]  # LatestTime passes the rest of LinePublisher on (__getattr__)
                    pseudonymiser_from_env(required=False),
                    max_skew=None,  # history: bounded by the file, not the clock
                    report=report_rejected,
                    progress=progress,
                    workers=workers,
                )
                publisher.flush()
            finally:
                publisher.close()
                if stream is None:
                    handle.close()
            if latest.latest is not None:
                send_end_of_input(run, latest.latest)
            stage("processing")
            with GroupProgress(run, app_id) as group:
                _wait(lambda: _told(counted, "processing", *group.counts()), "the stream processors", timeout_s, alive)
            if isinstance(processors, _FaustProcessors):
                # the batch engine produces every output before it commits its input; the faust
                # agents pace KPI snapshots: publish the pending ones now, then wait for quiet
                processors.settle(timeout_s=min(timeout_s, 120.0))
            stage("storing")
            outputs = [run.topic(spec.name) for spec in (EVENTS, SLA_OUTCOMES, TICKET_STATE, KPIS, POLICIES)]
            settled = _settled_ends(run, outputs, alive, quiet_s=0.0 if engine == "batch" else 2.5)
            _wait(
                lambda: _told(
                    counted, "storing", sum(min(stored.get(t, 0), n) for t, n in settled.items()), sum(settled.values())
                ),
                "the database sink",
                timeout_s,
                alive,
            )
    finally:
        if not keep_topics:
            try:
                _delete_run_topics(run)
            except Exception as exc:  # noqa: BLE001 - cleanup must not hide the real outcome
                log.warning("could not delete the replay's topics", extra={"error": repr(exc)})
    return ReplaySummary(summary.published, summary.rejected, dict(stored), time.perf_counter() - began)


def _prepare_database(url: str) -> None:
    """Bring the database to this code's schema before anything starts, or raise `ReplayError`
    saying why it cannot be used: a batch run fails at once on a database it cannot write,
    instead of its sink waiting for it as for an outage."""
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from sinks.db import migrate
    from sinks.db.engine import UnsupportedDatabase, describe_error, describe_url

    try:
        migrate.upgrade(url)
    except (UnsupportedDatabase, ArgumentError, migrate.MigrationError) as exc:
        raise ReplayError(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise ReplayError(f"cannot use the database {describe_url(url)}: {describe_error(exc)}") from exc


YIELD_NICENESS = 10
"""How much the replay's own process lowers its priority below its batch engine's."""


def _yield_cpu() -> None:
    """Lower the priority of this thread, and so of the threads and processes it starts next
    (the database sink, the publisher and its validation workers), below the batch engine's
    process, started before: the engine is the replay's critical path, and the others keep
    up with it on what CPU it leaves. Linux cannot give the priority back without privileges,
    so it stays lowered for the rest of the process."""
    try:
        os.nice(YIELD_NICENESS)
    except OSError:
        log.info("could not lower the replay's priority; the engine competes with it for CPU")


class _Processors(Protocol):
    def raise_if_dead(self) -> None: ...


class _FaustProcessors:
    """The faust agents in a thread, and their KPI processor (whose last figures a replay awaits)."""

    def __init__(self, thread: AppThread, kpis: KpiProcessor) -> None:
        self.thread, self.kpis = thread, kpis

    def raise_if_dead(self) -> None:
        self.thread.raise_if_dead()

    def settle(self, timeout_s: float) -> None:
        """Every KPI figure published and confirmed by Kafka (the input being drained)."""
        from stream_processors.kpi_agent import KpiSettleError
        from stream_processors.runner import RunnerError

        try:
            self.thread.call(self.kpis.settle(timeout_s), timeout_s=timeout_s + 5.0)
        except (RunnerError, KpiSettleError) as exc:
            raise ReplayError(f"the KPI figures could not be published: {exc}") from exc


@contextmanager
def _processors(run: Settings, engine: Engine, metrics: Metrics, jobs: int) -> Iterator[tuple[_Processors, str]]:
    """The stream processors of the run, started, with the consumer group that tells their progress."""
    if engine == "batch":
        from stream_processors.batch_runner import BatchJob, BatchProcess

        group_id = run.topic(f"tawasul-replay-engine-{uuid.uuid4().hex[:12]}")
        with BatchProcess(BatchJob(run, group_id, jobs=jobs)) as process:
            yield process, group_id
        return
    from stream_processors.app import build_app
    from stream_processors.kpi_agent import register_kpis
    from stream_processors.runner import AppThread

    registered: list[KpiProcessor] = []
    app = build_app(
        run,
        mode="replay",
        metrics=metrics,
        extra_registrars=(lambda app, ctx: registered.append(register_kpis(app, ctx)),),
    )
    with AppThread(app) as thread:
        thread.wait_ready(timeout_s=120)
        yield _FaustProcessors(thread, registered[0]), app.conf.id


def default_jobs(jobs: int | None) -> int:
    """`--jobs`: as asked (at least 1), by default the number of CPUs."""
    return max(1, jobs if jobs is not None else os.cpu_count() or 1)


def _told(counted: Counted | None, name: str, done: int, total: int) -> bool:
    """Tell `counted` how far a stage is; True once it is complete."""
    if counted is not None:
        counted(name, done, total)
    return done >= total


def _settled_ends(
    settings: Settings, topics: list[str], alive: Callable[[], None], quiet_s: float = 2.5
) -> dict[str, int]:
    """End offsets once the outputs stopped growing (KPI snapshots are coalesced for a second)."""
    previous = _end_offsets(settings, topics)
    still_since = time.monotonic()
    while time.monotonic() - still_since < quiet_s:
        alive()
        time.sleep(0.5)
        current = _end_offsets(settings, topics)
        if current != previous:
            previous, still_since = current, time.monotonic()
    return previous

"""Run the faust app inside a process: in a background thread (replay, tests) or in the foreground.

How `tawasul replay` drives it::

    settings = settings.with_prefix(run_prefix)              # topics of this run only
    ensure_topics(settings.kafka, settings.topic_prefix)
    app = build_app(settings, mode="replay", app_id=app_id)  # a fresh consumer group
    with AppThread(app) as running:                          # starts the worker thread
        running.wait_ready(timeout_s=60)                     # partitions assigned, tables recovered
        ... publish the file to settings.topic("tawasul.events") ...
        send_end_of_input(settings, last_event_time)         # a watermark to every ticks partition
        running.wait_until(lambda: input_drained(settings, app_id), timeout_s=600)
    # leaving the block stops the worker cleanly (offsets committed, producer flushed)

`run_until(app, done)` does the same in the calling thread, blocking until `done()` is true.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import faust

from stream_processors.clock import watermark_message
from tawasul.infra.kafka_security import kafka_python_options
from tawasul.infra.settings import Settings
from tawasul.infra.topics import EVENTS, SLA_TICKS, assignable_partitions

log = logging.getLogger(__name__)


T = TypeVar("T")


class RunnerError(RuntimeError):
    """The app did not start, crashed, or did not reach the awaited condition in time."""


class EmbeddedWorker(faust.Worker):  # type: ignore[misc]  # faust is untyped here (follow_imports = skip)
    """A faust worker that can run outside the main thread: no signal handlers, no spinner,
    and the logging set up by Tawasul is left alone."""

    def __init__(self, app: faust.App, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(app, loop=loop, quiet=True, override_logging=False, redirect_stdouts=False, daemon=False)
        self.spinner = None

    def install_signal_handlers(self) -> None:
        if threading.current_thread() is threading.main_thread():
            super().install_signal_handlers()


def run_until(app: faust.App, done: Callable[[], bool], *, poll_s: float = 0.2, timeout_s: float | None = None) -> None:
    """Run the app in the calling thread until `done()` is true, then stop it cleanly.

    Raises RunnerError when `timeout_s` passes first (the app is stopped all the same).
    """
    runner = AppThread(app)
    runner.run_here(done, poll_s=poll_s, timeout_s=timeout_s)


class AppThread:
    """The app's worker on its own event loop in a daemon thread; `stop()` ends it cleanly."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None

    def start(self) -> AppThread:
        if self._thread is not None:
            raise RunnerError("already started")
        self._thread = threading.Thread(target=self._main, name=f"faust-{self.app.conf.id}", daemon=True)
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            self.run_here(self._stop.is_set)
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that waits
            self.error = exc
        finally:
            self._started.set()

    def run_here(self, done: Callable[[], bool], *, poll_s: float = 0.1, timeout_s: float | None = None) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        worker = EmbeddedWorker(self.app, loop)
        give_up = None if timeout_s is None else time.monotonic() + timeout_s

        async def main() -> None:
            await worker.start()
            self._started.set()
            try:
                while not done() and not worker.should_stop:
                    if give_up is not None and time.monotonic() > give_up:
                        raise RunnerError(f"condition not reached within {timeout_s} s")
                    await asyncio.sleep(poll_s)
            finally:
                await worker.stop()
            if worker.crash_reason is not None:
                raise RunnerError(f"stream processors crashed: {worker.crash_reason!r}") from worker.crash_reason

        try:
            loop.run_until_complete(main())
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def ready(self) -> bool:
        """True once the worker has partitions assigned and its tables recovered."""
        app = self.app
        return (
            self._started.is_set()
            and not app.rebalancing
            and bool(app.assignor.assigned_actives())
            and app.tables.actives_ready
        )

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        self.wait_until(self.ready, timeout_s=timeout_s)

    def wait_until(self, condition: Callable[[], bool], *, timeout_s: float, poll_s: float = 0.1) -> None:
        give_up = time.monotonic() + timeout_s
        while not condition():
            self.raise_if_dead()
            if time.monotonic() > give_up:
                raise RunnerError(f"condition not reached within {timeout_s} s")
            time.sleep(poll_s)

    def call(self, coroutine: Coroutine[Any, Any, T], *, timeout_s: float) -> T:
        """Run `coroutine` on the worker's event loop (where its agents and tasks run) and
        return its result; raises what it raises, or RunnerError when it takes too long."""
        loop = self._loop
        if loop is None or not self._started.is_set() or loop.is_closed():
            coroutine.close()
            raise RunnerError("the stream processors are not running")
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise RunnerError(f"not done within {timeout_s} s") from None

    def raise_if_dead(self) -> None:
        if self.error is not None:
            raise RunnerError(f"stream processors stopped: {self.error!r}") from self.error
        if self._thread is not None and not self._thread.is_alive():
            raise RunnerError("stream processors thread ended")

    def stop(self, timeout_s: float = 60.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RunnerError(f"stream processors did not stop within {timeout_s} s")
        if self.error is not None:
            raise RunnerError(f"stream processors stopped: {self.error!r}") from self.error

    def __enter__(self) -> AppThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


END_OFFSETS_PATIENCE_S = 180.0
"""How long a replay keeps asking for its events' end offsets (a broker may be failing over)."""


def send_end_of_input(settings: Settings, at: datetime) -> None:
    """Advance every partition's watermark to `at` (replay): all deadlines up to it fire, once
    the processors have read every event published so far (the markers carry the end offsets)."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.errors import KafkaTimeoutError

    events = settings.topic(EVENTS.name)
    partitions = [TopicPartition(events, p) for p in range(EVENTS.partitions)]
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka, enable_auto_commit=False, **kafka_python_options())
    try:
        # A partition whose leader just died has no answer until another replica leads it:
        # ask again (each try waits 30 s) for up to END_OFFSETS_PATIENCE_S before giving up.
        deadline = time.monotonic() + END_OFFSETS_PATIENCE_S
        while True:
            try:
                ends = consumer.end_offsets(partitions)
                break
            except KafkaTimeoutError:
                if time.monotonic() >= deadline:
                    raise
                log.warning("replay: end offsets not known yet, asking again", extra={"topic": events})
    finally:
        consumer.close()
    producer = KafkaProducer(bootstrap_servers=settings.kafka, acks="all", **kafka_python_options())
    try:
        for partition in range(SLA_TICKS.partitions):
            body = watermark_message(at, ends.get(TopicPartition(events, partition)), run=settings.topic_prefix)
            producer.send(settings.topic(SLA_TICKS.name), value=body, partition=partition)
        producer.flush()
    finally:
        producer.close()


def input_drained(settings: Settings, group_id: str) -> bool:
    """True when the consumer group `group_id` has committed every message of the events and
    ticks topics (faust flushes its producer before committing, so the outputs are written)."""
    done, total = input_progress(settings, group_id)
    return done >= total


def input_progress(settings: Settings, group_id: str) -> tuple[int, int]:
    """(messages of the events and ticks topics the group `group_id` has committed, messages
    in them): the two are equal once the processors read and handled everything."""
    with GroupProgress(settings, group_id) as progress:
        return progress.counts()


class GroupProgress:
    """`input_progress` asked again and again (a replay waiting for its processors), with its
    Kafka clients kept open in between."""

    def __init__(self, settings: Settings, group_id: str) -> None:
        from kafka import KafkaAdminClient, KafkaConsumer

        self.group_id = group_id
        self.topics = (settings.topic(EVENTS.name), settings.topic(SLA_TICKS.name))
        self._admin = KafkaAdminClient(bootstrap_servers=settings.kafka, **kafka_python_options())
        self._consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka, enable_auto_commit=False, **kafka_python_options()
        )

    def counts(self) -> tuple[int, int]:
        partitions = assignable_partitions(self._consumer, self.topics)  # never "drained" for want of metadata
        ends = self._consumer.end_offsets(partitions)
        committed = self._admin.list_group_offsets({self.group_id: partitions}).get(self.group_id, {})
        done = sum(min(max(meta.offset, 0), ends.get(tp, 0)) for tp, meta in committed.items() if meta is not None)
        return done, sum(ends.values())

    def close(self) -> None:
        self._consumer.close()
        self._admin.close()

    def __enter__(self) -> GroupProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

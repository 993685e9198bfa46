"""Waiting for the database: capped exponential backoff, stoppable sleeps, the schema at start."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from sinks.db import migrate
from sinks.db.engine import describe_url, is_unavailable
from tawasul.infra.metrics import Metrics

log = logging.getLogger("tawasul.sink")

StopSignal = threading.Event | asyncio.Event


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff between database retries, in seconds."""

    initial: float = 0.5
    maximum: float = 10.0
    factor: float = 2.0

    def next(self, delay: float) -> float:
        return min(delay * self.factor, self.maximum)


def error_name(exc: BaseException) -> str:
    """The driver's error class name (safe to log: no SQL, no values)."""
    original = getattr(exc, "orig", None)
    return type(original if original is not None else exc).__name__


def sleep_unless_stopped(stop: StopSignal, seconds: float) -> bool:
    """Sleep up to `seconds`; False as soon as `stop` is set."""
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(left, 0.1))
    return False


def wait_for_schema(url: str, stop: StopSignal, metrics: Metrics, backoff: Backoff) -> bool:
    """Migrate the database to this code's schema, waiting while it is unreachable; False
    when asked to stop first."""
    delay = backoff.initial
    while not stop.is_set():
        try:
            state = migrate.upgrade(url)
        except SQLAlchemyError as exc:
            if not is_unavailable(exc):
                raise
            metrics.db_up.set(0)
            metrics.db_errors.labels(kind="unavailable").inc()
            log.warning(
                "database unreachable at start; retrying",
                extra={"event": "sink_db_unavailable", "database": describe_url(url), "retry_in_s": delay},
            )
            if not sleep_unless_stopped(stop, delay):
                return False
            delay = backoff.next(delay)
            continue
        metrics.db_up.set(1)
        log.info(
            "database schema ready",
            extra={"event": "sink_schema_ready", "database": describe_url(url), "revision": state.current},
        )
        return True
    return False


DEFAULT_BACKOFF = Backoff()

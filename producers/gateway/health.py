"""Can the gateway publish? The publisher (created lazily) and a cached broker metadata probe.

The gateway starts even while Kafka is down: `PublisherSlot` creates the `EventPublisher` on
first need and retries at most every `retry_s`. `KafkaHealth` asks the broker for its topic
list (one metadata request) at most once per `ttl_s` and answers healthy when both the events
and the dead-letter topics exist and the publisher is up. While the last answer was healthy
(and is at most `3 x ttl_s` old), requests get it at once and the refresh runs in the
background: no request waits for a probe of a broker that answered a moment ago.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from producers.publisher import EventPublisher, PublishError
from tawasul.infra.kafka_security import kafka_python_options

logger = logging.getLogger(__name__)

STALE_FACTOR = 3
"""A healthy status up to this many `ttl_s` old is served while a background probe refreshes it."""


class UnavailableError(Exception):
    """Kafka cannot be reached (or the gateway's topics are missing): answer 503."""


class PublisherSlot:
    """The gateway's one publisher, created on first use; creation failures are retried after `retry_s`."""

    def __init__(
        self,
        factory: Callable[[], EventPublisher],
        *,
        retry_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self._retry_s = retry_s
        self._clock = clock
        self._lock = threading.Lock()
        self._publisher: EventPublisher | None = None
        self._failed_at: float | None = None
        self._failure = ""
        self._closed = False

    def get(self) -> EventPublisher:
        """The publisher (blocking while it connects); raises UnavailableError."""
        with self._lock:
            if self._closed:
                raise UnavailableError("the gateway is shutting down")
            if self._publisher is not None:
                return self._publisher
            now = self._clock()
            if self._failed_at is not None and now - self._failed_at < self._retry_s:
                raise UnavailableError(self._failure)
            try:
                self._publisher = self._factory()
            except PublishError as exc:
                self._failed_at, self._failure = now, f"Kafka is not reachable: {exc}"
                raise UnavailableError(self._failure) from None
            self._failed_at = None
            return self._publisher

    @property
    def ready(self) -> bool:
        return self._publisher is not None

    def close(self, timeout_s: float | None = None) -> None:
        """Flush and close the publisher, if one was created; later `get` calls fail."""
        with self._lock:
            self._closed = True
            publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.close(timeout_s)


@dataclass(frozen=True)
class HealthStatus:
    healthy: bool
    reason: str
    checked_at: float


class KafkaHealth:
    """Whether the gateway can publish now, checked at most once per `ttl_s` (cached in between)."""

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        slot: PublisherSlot,
        *,
        ttl_s: float = 2.0,
        timeout_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = tuple(topics)
        self._slot = slot
        self._ttl_s = ttl_s
        self._timeout_ms = int(timeout_s * 1000)
        self._clock = clock
        self._admin: KafkaAdminClient | None = None
        self._admin_lock = threading.Lock()
        self._status: HealthStatus | None = None
        self._refresh: asyncio.Lock | None = None
        self._background: asyncio.Task[HealthStatus] | None = None

    def check(self) -> HealthStatus:
        """One probe, blocking (at most about `timeout_s`, plus the publisher's connect timeout)."""
        now = self._clock()
        try:
            self._slot.get()
            missing = [topic for topic in self.topics if topic not in self._list_topics()]
        except UnavailableError as exc:
            return HealthStatus(False, str(exc), now)
        except (KafkaError, OSError) as exc:
            self._drop_admin()
            return HealthStatus(False, f"Kafka is not reachable: {type(exc).__name__}", now)
        if missing:
            hint = "create them with `tawasul topics create`"
            return HealthStatus(False, f"missing topics: {', '.join(missing)} ({hint})", now)
        return HealthStatus(True, "ok", now)

    def _list_topics(self) -> set[str]:
        with self._admin_lock:
            if self._admin is None:
                self._admin = KafkaAdminClient(
                    bootstrap_servers=[s.strip() for s in self.bootstrap.split(",") if s.strip()],
                    client_id="tawasul-gateway-health",
                    request_timeout_ms=self._timeout_ms,
                    bootstrap_timeout_ms=self._timeout_ms,
                    **kafka_python_options(),
                )
            return set(self._admin.list_topics())

    def _drop_admin(self) -> None:
        with self._admin_lock:
            admin, self._admin = self._admin, None
        if admin is not None:
            try:
                admin.close()
            except (KafkaError, OSError):
                logger.debug("health probe client did not close cleanly")

    async def status(self, executor: Executor | None = None) -> HealthStatus:
        """The cached status; refreshed in `executor` (one probe at a time) when older than `ttl_s`:
        in the background while it was healthy, else waited for."""
        cached = self._status
        age = self._clock() - cached.checked_at if cached is not None else None
        if cached is not None and age is not None and age < self._ttl_s:
            return cached
        if cached is not None and cached.healthy and age is not None and age < STALE_FACTOR * self._ttl_s:
            if self._background is None or self._background.done():
                self._background = asyncio.create_task(self._probe(executor))
            return cached
        return await self._probe(executor)

    async def _probe(self, executor: Executor | None) -> HealthStatus:
        if self._refresh is None:
            self._refresh = asyncio.Lock()
        async with self._refresh:
            cached = self._status
            if cached is not None and self._clock() - cached.checked_at < self._ttl_s:
                return cached
            status = await asyncio.get_running_loop().run_in_executor(executor, self.check)
            if cached is None or cached.healthy != status.healthy:
                logger.info("kafka health changed", extra={"healthy": status.healthy, "reason": status.reason})
            self._status = status
            return status

    async def settle(self) -> None:
        """Wait for a background refresh still running (before closing)."""
        if self._background is not None:
            await self._background

    def mark_unhealthy(self, reason: str) -> None:
        """Record a failed publish so the next check probes again instead of trusting the cache."""
        self._status = HealthStatus(False, reason, self._clock() - self._ttl_s)

    def close(self) -> None:
        self._drop_admin()

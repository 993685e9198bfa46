"""The Kafka publisher of the events and dead-letter topics: every send confirmed.

```python
from tawasul.infra.publisher import KafkaPublisher, PublishError

with KafkaPublisher(settings) as publisher:           # close() flushes
    publisher.publish(event, raw=line)                # key = subject, value = raw or event JSON
    publisher.dead_letter(letter, source_kind="sink") # no key; headers `reason` and `origin`
    publisher.flush()                                 # raises PublishError when a send failed
```

The producers' `producers.publisher.EventPublisher` adds the routing of intake outcomes
(`reject`, `route`); the sink and the stream processors use this class for their dead letters.

Every send is confirmed. The producer is idempotent with `acks=all` and retries until
`delivery_timeout_ms`; the futures of unconfirmed sends are kept in a bounded window (memory
stays flat for any number of events: a full window waits for its oldest send) and checked in
order. A send that still fails is never dropped silently: the next `publish`, `dead_letter`
or `flush` raises `PublishError` naming how many sends failed and the first reason
(and the failures are then counted as reported). kafka-python's idempotent producer treats
most delivery failures as fatal and fails every later send too: after a `PublishError`,
close the publisher and make a new one. Metrics: `events_accepted` (on
confirmation, by channel and type) and `dead_letters` (on confirmation, by source kind).
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping
from types import MappingProxyType, TracebackType
from typing import Final, Literal, Self

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.producer.future import FutureRecordMetadata
from prometheus_client import Counter

from schemas import CHANNELS, Event
from tawasul.infra.deadletter import DeadLetter
from tawasul.infra.kafka_security import kafka_python_options
from tawasul.infra.metrics import Metrics
from tawasul.infra.partitioner import KeyPartitioner
from tawasul.infra.settings import Settings
from tawasul.infra.topics import DEAD_LETTER, EVENTS

logger = logging.getLogger(__name__)

PRODUCER_DEFAULTS: Final[Mapping[str, object]] = MappingProxyType(
    {
        "acks": "all",
        "enable_idempotence": True,
        "retries": 2_147_483_647,
        "delivery_timeout_ms": 120_000,
        "max_in_flight_requests_per_connection": 5,
        "linger_ms": 20,
        "batch_size": 256 * 1024,
        "compression_type": None,
        "max_request_size": 1024 * 1024,
        "allow_auto_create_topics": False,
    }
)
"""kafka-python settings of every Tawasul publisher (`producer_config` overrides them).

Idempotent, `acks=all`, retried until `delivery_timeout_ms`. No compression: measured with
kafka-python 3.0 on ~300-byte JSON events, none and zstd were equally fast, lz4 slower and
gzip slowest; none needs no codec package in any producer or consumer (aiokafka would need
one for zstd or lz4). Topics are never auto-created: `tawasul.infra.topics.ensure_topics` creates
them with their partitions and retention.
"""
DEFAULT_WINDOW: Final = 20_000
"""Unconfirmed sends kept before `publish` waits for the oldest one."""
_KIND_CHANNEL: Final[Mapping[str, str]] = MappingProxyType({"call": "call", "visit": "walk_in"})

Kind = Literal["event", "dead_letter"]


class PublishError(Exception):
    """Sends that Kafka did not confirm (after the producer's retries), or a send refused at once."""


class ConfirmingPublisher(ABC):
    """What `KafkaPublisher` and `BulkPublisher` share: their topics, a window of unconfirmed
    sends, counts of what Kafka confirmed, and closing (flush, then release the producer, also
    when the flush fails), as a context manager."""

    def __init__(self, settings: Settings, metrics: Metrics | None, window: int) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.events_topic = settings.topic(EVENTS.name)
        self.dead_letter_topic = settings.topic(DEAD_LETTER.name)
        self._window = window
        self._closed = False
        self._confirmed_events = 0
        self._confirmed_dead_letters = 0

    @property
    def confirmed_events(self) -> int:
        """Events Kafka has confirmed so far (checked at the last flush or send)."""
        return self._confirmed_events

    @property
    def confirmed_dead_letters(self) -> int:
        return self._confirmed_dead_letters

    @abstractmethod
    def flush(self, timeout_s: float | None = None) -> None:
        """Send everything buffered and wait for every confirmation; raises PublishError on failure."""

    @abstractmethod
    def _release(self, timeout_s: float | None) -> None:
        """Close the producer (after the final flush)."""

    def close(self, timeout_s: float | None = None) -> None:
        """Flush, then close the producer (also when the flush fails; its error is raised)."""
        if self._closed:
            return
        try:
            self.flush(timeout_s)
        finally:
            self._closed = True
            self._release(timeout_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except PublishError as secondary:
            logger.error("publisher closed with unconfirmed sends", extra={"error": str(secondary)})


def channel_of(event: Event) -> str:
    """The metric `channel` label: the event's `data.channel`, else one implied by its type."""
    channel = event.data.__dict__.get("channel")
    if isinstance(channel, str) and channel in CHANNELS:
        return channel
    return _KIND_CHANNEL.get(event.type.split(".", 1)[0], "unknown")


class KafkaPublisher(ConfirmingPublisher):
    """One kafka-python producer for the events and dead-letter topics of `settings`."""

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str = "tawasul-publisher",
        producer_config: Mapping[str, object] | None = None,
        metrics: Metrics | None = None,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        super().__init__(settings, metrics, window)
        self._pending: deque[tuple[FutureRecordMetadata, Kind, tuple[str, str]]] = deque()
        self._lock = threading.Lock()
        self._failures = 0
        self._first_failure = ""
        self._accepted_children: dict[tuple[str, str], Counter] = {}
        config: dict[str, object] = {**PRODUCER_DEFAULTS, **dict(producer_config or {})}
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=[server.strip() for server in settings.kafka.split(",") if server.strip()],
                client_id=client_id,
                **{"partitioner": KeyPartitioner(), **kafka_python_options(), **config},
            )
        except KafkaError as exc:
            raise PublishError(f"cannot connect to Kafka at {settings.kafka}: {exc}") from exc

    def connect(self) -> None:
        """Wait (up to `max_block_ms`) for the metadata of both topics; raises PublishError."""
        for topic in (self.events_topic, self.dead_letter_topic):
            try:
                partitions = self._producer.partitions_for(topic)
            except KafkaError as exc:
                raise PublishError(f"Kafka at {self.settings.kafka} does not answer: {exc}") from exc
            if not partitions:
                raise PublishError(f"topic {topic} does not exist")

    # sending

    def publish(self, event: Event, raw: bytes | None = None) -> FutureRecordMetadata:
        """Send `event` (key = subject; value = `raw` when given: the event's original valid JSON)."""
        value = raw if raw is not None else event.to_json()
        key = event.subject.encode("utf-8", "surrogatepass")
        return self._send(self.events_topic, key, value, None, "event", (channel_of(event), event.type))

    def publish_validated(self, key: bytes, value: bytes, *, channel: str, event_type: str) -> FutureRecordMetadata:
        """Send an event validated elsewhere (another process) as its key and value bytes;
        `channel` and `event_type` label the metrics (see `channel_of`)."""
        return self._send(self.events_topic, key, value, None, "event", (channel, event_type))

    def dead_letter(self, letter: DeadLetter, *, source_kind: str = "file") -> FutureRecordMetadata:
        """Send a dead letter (no key; headers `reason` and `origin`)."""
        return self._send(
            self.dead_letter_topic, None, letter.to_json(), letter.headers(), "dead_letter", (source_kind, "")
        )

    def _send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]] | None,
        kind: Kind,
        labels: tuple[str, str],
    ) -> FutureRecordMetadata:
        if self._closed:
            raise PublishError("the publisher is closed")
        self._raise_failures()
        try:
            future = self._producer.send(topic, value=value, key=key, headers=headers)
        except (KafkaError, ValueError, TypeError) as exc:
            raise PublishError(f"send to {topic} refused: {type(exc).__name__}: {exc}") from exc
        with self._lock:
            self._pending.append((future, kind, labels))
            self._settle_done()
            overflow = len(self._pending) > self._window
        if overflow:
            self._wait_oldest()
        return future

    # confirmation

    def _settle_done(self) -> None:
        """Account for the confirmed (or failed) sends at the head of the window; lock held."""
        pending = self._pending
        while pending and pending[0][0].is_done:
            self._settle(*pending.popleft())

    def _settle(self, future: FutureRecordMetadata, kind: Kind, labels: tuple[str, str]) -> None:
        if future.exception is not None:
            self._failures += 1
            if not self._first_failure:
                error = future.exception
                self._first_failure = f"{type(error).__name__}: {error}"
            return
        if kind == "event":
            child = self._accepted_children.get(labels)
            if child is None:
                child = self.metrics.events_accepted.labels(channel=labels[0], type=labels[1])
                self._accepted_children[labels] = child
            child.inc()
            self._confirmed_events += 1
        else:
            self.metrics.dead_letters.labels(source_kind=labels[0]).inc()
            self._confirmed_dead_letters += 1

    def _wait_oldest(self) -> None:
        with self._lock:
            oldest = self._pending[0][0] if self._pending else None
        if oldest is None:
            return
        try:
            oldest.get(timeout=None)
        except KafkaError:
            pass  # recorded by _settle below
        with self._lock:
            self._settle_done()

    def _raise_failures(self) -> None:
        if not self._failures:  # the common case, read without the lock
            return
        with self._lock:
            failures, reason = self._failures, self._first_failure
            self._failures, self._first_failure = 0, ""
        if failures:
            raise PublishError(f"{failures} send(s) to Kafka failed after retries; first: {reason}")

    @property
    def pending(self) -> int:
        """Sends not yet accounted for as confirmed or failed."""
        with self._lock:
            return len(self._pending)

    def flush(self, timeout_s: float | None = None) -> None:
        """Send everything buffered and wait for every confirmation; raises PublishError on failure."""
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            with self._lock:
                self._settle_done()
                waiting = len(self._pending)
            if isinstance(exc, KafkaTimeoutError):
                raise PublishError(f"flush did not finish within {timeout_s} s: {waiting} send(s) unconfirmed") from exc
            raise PublishError(f"flush failed ({type(exc).__name__}: {exc}): {waiting} send(s) unconfirmed") from exc
        with self._lock:
            self._settle_done()
        self._raise_failures()

    def _release(self, timeout_s: float | None) -> None:
        self._producer.close(timeout=timeout_s)

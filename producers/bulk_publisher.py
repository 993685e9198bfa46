"""Publishing a large file: validated events to Kafka in record batches, confirmed per batch.

```python
from producers.bulk_publisher import BulkPublisher

with BulkPublisher(settings, client_id="tawasul-publish") as publisher:   # close() flushes
    publisher.publish_validated(key, value, channel="call", event_type="call.ended")
    publisher.reject(rejected, source_kind="file")   # dead letter + rejected-event metrics
    publisher.flush()                                # raises PublishError when a send failed
```

`EventPublisher` hands every record to kafka-python's producer, which costs about 15 us of
Python per record. For files (`tawasul publish` with validation workers, `tawasul replay`)
this publisher appends the records to one aiokafka record batch per partition (built in
compiled code) and sends a batch when it is full, from an event loop in a thread of its own.
The guarantees are those of `EventPublisher`: idempotent producer, `acks=all`, every batch
confirmed, a failed one never dropped silently (the next call raises `PublishError`), memory
bounded (at most `window` batches unconfirmed: a full window waits for its oldest batch),
and the same metrics, counted on confirmation. Keys go to the partition Kafka's default
partitioner picks, so the order of each subject is kept.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import Counter, deque
from collections.abc import Coroutine
from typing import Any, Final, Literal, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from producers.intake import Rejected
from producers.publisher import ConfirmingPublisher, PublishError
from tawasul.infra.kafka_security import aiokafka_options
from tawasul.infra.loop_thread import LoopThread
from tawasul.infra.metrics import Metrics
from tawasul.infra.partitioner import KeyHashes
from tawasul.infra.settings import Settings

BATCH_BYTES: Final = 256 * 1024
"""Size of one record batch (as `PRODUCER_DEFAULTS["batch_size"]` of `EventPublisher`)."""
DEFAULT_WINDOW: Final = 64
"""Unconfirmed batches kept before `publish_validated` waits for the oldest one."""
CONNECT_TIMEOUT_S: Final = 30.0

T = TypeVar("T")
Labels = tuple[str, str]
Kind = Literal["events", "dead_letter"]


class BulkPublisher(ConfirmingPublisher):
    """One aiokafka producer for the events and dead-letter topics of `settings` (see module)."""

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str = "tawasul-bulk-publisher",
        metrics: Metrics | None = None,
        window: int = DEFAULT_WINDOW,
        batch_bytes: int = BATCH_BYTES,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        super().__init__(settings, metrics, window)
        self._hashes = KeyHashes()
        self._open: dict[int, tuple[Any, Counter[Labels]]] = {}
        self._unconfirmed: deque[tuple[concurrent.futures.Future[object], Kind, Counter[Labels]]] = deque()
        self._failures = 0
        self._first_failure = ""
        self._loop = LoopThread(f"{client_id}-io")
        try:
            self._producer = self._call(self._start(client_id, batch_bytes), connect_timeout_s)
        except (KafkaError, OSError, concurrent.futures.TimeoutError) as exc:
            self._loop.stop()
            raise PublishError(f"cannot connect to Kafka at {settings.kafka}: {exc!r}") from exc
        try:
            partitions = self._call(self._producer.partitions_for(self.events_topic), connect_timeout_s)
        except (KafkaError, concurrent.futures.TimeoutError):
            partitions = set()
        if not partitions:
            self._stop_producer(connect_timeout_s)
            raise PublishError(f"topic {self.events_topic} does not exist")
        self._partitions = len(partitions)

    async def _start(self, client_id: str, batch_bytes: int) -> AIOKafkaProducer:
        self._in_order = asyncio.Lock()
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=20,
            max_batch_size=batch_bytes,
            request_timeout_ms=120_000,
            **aiokafka_options(),
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        return self._loop.call(coroutine, timeout_s)

    # sending

    def publish_validated(self, key: bytes, value: bytes, *, channel: str, event_type: str) -> None:
        """Send an event validated elsewhere as its key and value bytes; `channel` and
        `event_type` label the metrics (see `publisher.channel_of`)."""
        self._check_open()
        partition = self._hashes.partition(key, self._partitions)
        current = self._open.get(partition)
        if current is None:
            current = self._open[partition] = (self._producer.create_batch(), Counter())
        if current[0].append(key=key, value=value, timestamp=None) is None:  # full: send it, start another
            self._ship(partition)
            current = self._open[partition] = (self._producer.create_batch(), Counter())
            if current[0].append(key=key, value=value, timestamp=None) is None:
                raise PublishError(f"an event of {len(value)} bytes does not fit in a record batch")
        current[1][(channel, event_type)] += 1

    def reject(self, rejected: Rejected, *, source_kind: str = "file") -> None:
        """Count a rejected input and send its dead letter (no key; headers `reason` and `origin`)."""
        self._check_open()
        self.metrics.events_rejected.labels(source_kind=source_kind, reason=rejected.category).inc()
        letter = rejected.letter
        self._track(
            self._send_one(self.dead_letter_topic, letter.to_json(), letter.headers()),
            "dead_letter",
            Counter({(source_kind, ""): 1}),
        )

    async def _send_one(self, topic: str, value: bytes, headers: list[tuple[str, bytes]]) -> object:
        async with self._in_order:
            delivery = await self._producer.send(topic, value=value, headers=headers)
        return await delivery

    def _ship(self, partition: int) -> None:
        builder, labels = self._open.pop(partition)
        builder.close()
        self._track(self._send_batch(builder, partition), "events", labels)

    async def _send_batch(self, builder: Any, partition: int) -> object:
        async with self._in_order:  # batches enter the producer's queue in the order shipped
            delivery = await self._producer.send_batch(builder, self.events_topic, partition=partition)
        return await delivery

    def _track(self, coroutine: Coroutine[Any, Any, object], kind: Kind, labels: Counter[Labels]) -> None:
        self._unconfirmed.append((self._loop.submit(coroutine), kind, labels))
        self._settle(wait=len(self._unconfirmed) > self._window)

    # confirmation

    def _settle(self, *, wait: bool = False, everything: bool = False) -> None:
        """Account for the confirmed (or failed) sends at the head of the window; `wait` for
        the oldest one, or for `everything`."""
        unconfirmed = self._unconfirmed
        while unconfirmed and (everything or wait or unconfirmed[0][0].done()):
            future, kind, labels = unconfirmed.popleft()
            wait = False
            try:
                future.result()
            except (KafkaError, OSError, asyncio.CancelledError, concurrent.futures.CancelledError) as exc:
                self._failures += sum(labels.values())
                self._first_failure = self._first_failure or f"{type(exc).__name__}: {exc}"
                continue
            self._confirmed(kind, labels)

    def _confirmed(self, kind: Kind, labels: Counter[Labels]) -> None:
        if kind == "events":
            for (channel, event_type), count in labels.items():
                self.metrics.events_accepted.labels(channel=channel, type=event_type).inc(count)
            self._confirmed_events += sum(labels.values())
            return
        for (source_kind, _), count in labels.items():
            self.metrics.dead_letters.labels(source_kind=source_kind).inc(count)
        self._confirmed_dead_letters += sum(labels.values())

    def _check_open(self) -> None:
        if self._closed:
            raise PublishError("the publisher is closed")
        self._raise_failures()

    def _raise_failures(self) -> None:
        if self._failures:
            failures, reason = self._failures, self._first_failure
            self._failures, self._first_failure = 0, ""
            raise PublishError(f"{failures} send(s) to Kafka failed after retries; first: {reason}")

    @property
    def pending(self) -> int:
        """Records not yet accounted for as confirmed or failed (in open or unconfirmed batches)."""
        waiting = sum(sum(labels.values()) for _, _, labels in self._unconfirmed)
        return waiting + sum(sum(labels.values()) for _, labels in self._open.values())

    def flush(self, timeout_s: float | None = None) -> None:
        """Send the open batches and wait for every confirmation; raises PublishError on failure."""
        for partition in list(self._open):
            self._ship(partition)
        if timeout_s is not None:
            concurrent.futures.wait([future for future, _, _ in self._unconfirmed], timeout=timeout_s)
            if not all(future.done() for future, _, _ in self._unconfirmed):
                raise PublishError(f"flush did not finish within {timeout_s} s: {self.pending} send(s) unconfirmed")
        self._settle(everything=True)
        self._raise_failures()

    def _release(self, timeout_s: float | None) -> None:
        for future, _, _ in self._unconfirmed:
            future.cancel()
        self._stop_producer(timeout_s)

    def _stop_producer(self, timeout_s: float | None) -> None:
        try:
            self._call(self._producer.stop(), timeout_s)
        except (KafkaError, OSError, concurrent.futures.TimeoutError):
            pass  # what was not confirmed is reported by the flush
        self._loop.stop()

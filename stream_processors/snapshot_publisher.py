"""Sends the KPI snapshots of a `KpiBook` to Kafka, in producer batches, at the pace of a `SnapshotPacer`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer

from stream_processors.snapshots import SnapshotPacer, snapshot_messages
from tawasul.domain.kpi_book import KpiBook
from tawasul.domain.kpi_rows import Row
from tawasul.infra.kafka_security import aiokafka_options
from tawasul.infra.settings import Settings

log = logging.getLogger("stream_processors.kpi_agent")

__all__ = ["BATCH_BYTES", "SnapshotPublisher"]

BATCH_BYTES = 512 * 1024
"""Largest batch of snapshots sent at once (below the broker's 1 MB message limit)."""


class SnapshotPublisher:
    """Sends the figures its `SnapshotPacer` lets through, in producer batches.

    Snapshots go through a producer of their own (aiokafka batches: one future per batch
    instead of one per message); they are derived data, republished after a restart, so they
    need no tie to the input offsets.
    """

    def __init__(self, settings: Settings, topic: str, pacer: SnapshotPacer) -> None:
        self.settings, self.topic, self.pacer = settings, topic, pacer
        self._producer: AIOKafkaProducer | None = None
        self._sending = asyncio.Lock()
        """One publication at a time: a forced one (shutdown, a replay's end) waits for the one in flight."""
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._refused: BaseException | None = None
        """Why Kafka refused a batch since the last publication (then every figure goes out again)."""

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()  # sends what is buffered first

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.settings.kafka,
                linger_ms=0,
                max_batch_size=BATCH_BYTES,
                client_id="tawasul-kpi-snapshots",
                acks="all",
                **aiokafka_options(),
            )
            await producer.start()
            self._producer = producer
        return self._producer

    async def publish_due(self, book: KpiBook, *, force: bool = False) -> int:
        """Send the rows the pacer lets through; with `force`, every pending row, and return only
        once Kafka confirmed everything sent so far (raising why it refused any of it).

        The pacer takes rows as published when they are handed to the producer. So when Kafka
        refuses a batch, every figure is published again by the next call: a figure that does
        not change again would otherwise stay unsent. Delivery is confirmed in the background
        between forced calls, so waiting for acknowledgements never delays the next changes."""
        async with self._sending:
            if self._refused is not None:
                self._refused = None
                self._retake_all(book)
            changed = self.pacer.changed_rows(book, force=force)
            if changed:
                try:
                    await self._send(changed, book.as_of_us)
                except BaseException:
                    self._retake_all(book)
                    raise
            if force:
                await self._confirmed()
            return len(changed)

    def _retake_all(self, book: KpiBook) -> None:
        self.pacer.reset(book.scopes())
        book.now_dirty = True

    async def _confirmed(self) -> None:
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)
        if self._refused is not None:
            raise self._refused  # kept: the next call publishes everything again

    def _delivered(self, delivery: asyncio.Future[Any]) -> None:
        self._in_flight.discard(delivery)
        problem = asyncio.CancelledError() if delivery.cancelled() else delivery.exception()
        if problem is not None and self._refused is None:
            self._refused = problem
            log.warning(
                "kpi: Kafka refused a snapshot batch; every figure will be published again",
                extra={"error": repr(problem)[:200]},
            )

    async def _send(self, rows: list[Row], as_of_us: int) -> None:
        producer = await self._ensure_producer()
        batch = producer.create_batch()
        for key, value in snapshot_messages(rows, as_of_us):
            if batch.append(key=key, value=value, timestamp=None) is None:
                self._track(await producer.send_batch(batch, self.topic, partition=0))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        self._track(await producer.send_batch(batch, self.topic, partition=0))

    def _track(self, delivery: asyncio.Future[Any]) -> None:
        self._in_flight.add(delivery)
        delivery.add_done_callback(self._delivered)

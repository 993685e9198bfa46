"""A consumer of every partition of some topics, read through aiokafka, for the replay's sink.

`DbSink` was written against kafka-python's `KafkaConsumer`. kafka-python decodes each
fetched record in Python (about 10 us a record); aiokafka does it in compiled code. A replay
stores every event and output of a half-year, so its sink reads through `AssignedConsumer`:
the calls `DbSink` makes (`poll`, `pause`, `resume`, `seek`, `commit`, ...) with the same
arguments and results, run on an aiokafka consumer in an event loop of its own thread. The
consumer assigns itself every partition (no group rebalances; offsets are still committed
to its group), which is what the replay's sink does with kafka-python too. aiokafka's
errors are raised as kafka-python's `KafkaError`, which `DbSink` handles.

The live `tawasul sink` keeps kafka-python's group consumer (rebalances, membership while
the database is down).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError as AioKafkaError
from kafka.errors import KafkaError

T = TypeVar("T")


class AssignedConsumer:
    """`partitions` (topic, partition), consumed from the committed offsets of `group_id`
    (else from the earliest), read-committed; see the module docstring."""

    def __init__(self, bootstrap: str, partitions: Sequence[tuple[str, int]], *, group_id: str,
                 client_id: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"{client_id}-io", daemon=True)
        self._thread.start()
        self._consumer: AIOKafkaConsumer | None = None
        try:
            self._consumer = self._call(self._start(bootstrap, group_id, client_id))
            self._in_loop(lambda: self._require().assign([TopicPartition(*tp) for tp in partitions]))
        except BaseException:
            self.close()
            raise

    @staticmethod
    async def _start(bootstrap: str, group_id: str, client_id: str) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group_id, client_id=client_id, enable_auto_commit=False,
            auto_offset_reset="earliest", isolation_level="read_committed",
            max_partition_fetch_bytes=16 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024,
        )
        await consumer.start()
        return consumer

    def _require(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise KafkaError("the consumer is closed")
        return self._consumer

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()
        except AioKafkaError as exc:
            raise KafkaError(f"{type(exc).__name__}: {exc}") from exc

    def _in_loop(self, function: Callable[[], T]) -> T:
        async def run() -> T:
            return function()
        return self._call(run())

    # what DbSink calls, as kafka-python's KafkaConsumer

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[ConsumerRecord]]:
        return self._call(self._require().getmany(timeout_ms=timeout_ms, max_records=max_records))

    def assignment(self) -> set[TopicPartition]:
        return self._in_loop(lambda: set(self._require().assignment()))

    def pause(self, *partitions: TopicPartition) -> None:
        self._in_loop(lambda: self._require().pause(*partitions))

    def resume(self, *partitions: TopicPartition) -> None:
        self._in_loop(lambda: self._require().resume(*partitions))

    def paused(self) -> set[TopicPartition]:
        return self._in_loop(lambda: set(self._require().paused()))

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._in_loop(lambda: self._require().seek(partition, offset))

    def commit(self, offsets: Mapping[TopicPartition, Any]) -> None:
        """Commit `offsets` (kafka-python's `OffsetAndMetadata` values, or plain offsets)."""
        plain = {TopicPartition(tp.topic, tp.partition): getattr(value, "offset", value)
                 for tp, value in offsets.items()}
        self._call(self._require().commit(plain))

    def highwater(self, partition: TopicPartition) -> int | None:
        return self._in_loop(lambda: self._require().highwater(partition))

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int | None:
        """The next offset to read; None when it is not known within `timeout_ms`."""
        try:
            return self._call(asyncio.wait_for(self._require().position(partition),
                                               None if timeout_ms is None else timeout_ms / 1000))
        except TimeoutError:
            return None

    def close(self, autocommit: bool = False) -> None:
        """Stop the consumer (never commits: `autocommit` is accepted for kafka-python's signature)."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None and self._loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(consumer.stop(), self._loop).result(30)
            except (AioKafkaError, OSError, TimeoutError):
                pass    # nothing is committed on close: what was not committed is read again
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

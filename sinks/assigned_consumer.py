"""A consumer of every partition of some topics, read through aiokafka, for the replay's sink.

`DbSink` was written against kafka-python's `KafkaConsumer`. kafka-python decodes each
fetched record in Python (about 10 us a record); aiokafka does it in compiled code. A replay
stores every event and output of a half-year, so its sink reads through `AssignedConsumer`:
the calls `DbSink` makes (`poll`, `pause`, `resume`, `seek`, `commit`, `end_offsets`, ...) with the same
arguments and results, run on an aiokafka consumer in an event loop of its own thread
(`tawasul.infra.loop_thread`). The consumer is given every partition (no group rebalances; offsets
are still committed to its group), as the replay's sink was with kafka-python. aiokafka's
errors are raised as kafka-python's `KafkaError`, which `DbSink` handles.

The live `tawasul sink` keeps kafka-python's group consumer (rebalances, membership while
the database is down); `open_sink_consumer` opens the one or the other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError as AioKafkaError
from kafka import KafkaConsumer
from kafka.errors import KafkaError

from tawasul.infra.kafka_security import aiokafka_options, kafka_python_options
from tawasul.infra.loop_thread import LoopThread
from tawasul.infra.topics import assignable_partitions

T = TypeVar("T")


class AssignedConsumer:
    """`partitions` (topic, partition), consumed from the committed offsets of `group_id`
    (else from the earliest), read-committed; see the module docstring."""

    def __init__(self, bootstrap: str, partitions: Sequence[tuple[str, int]], *, group_id: str, client_id: str) -> None:
        self._loop = LoopThread(f"{client_id}-io")
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
            bootstrap_servers=bootstrap,
            group_id=group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_partition_fetch_bytes=16 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
            **aiokafka_options(),
        )
        await consumer.start()
        return consumer

    def _require(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise KafkaError("the consumer is closed")
        return self._consumer

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            return self._loop.call(coroutine)
        except AioKafkaError as exc:
            raise KafkaError(f"{type(exc).__name__}: {exc}") from exc

    def _in_loop(self, function: Callable[[], T]) -> T:
        try:
            return self._loop.run(function)
        except AioKafkaError as exc:
            raise KafkaError(f"{type(exc).__name__}: {exc}") from exc

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
        plain = {
            TopicPartition(tp.topic, tp.partition): getattr(value, "offset", value) for tp, value in offsets.items()
        }
        self._call(self._require().commit(plain))

    def highwater(self, partition: TopicPartition) -> int | None:
        highwater: int | None = self._in_loop(lambda: self._require().highwater(partition))
        return highwater

    def end_offsets(
        self, partitions: Sequence[TopicPartition], timeout_ms: int | None = None
    ) -> dict[TopicPartition, int]:
        """The partitions' end offsets, asked of the broker (read-committed: the last stable offsets)."""

        async def ask() -> dict[TopicPartition, int]:
            return dict(
                await asyncio.wait_for(
                    self._require().end_offsets(list(partitions)), None if timeout_ms is None else timeout_ms / 1000
                )
            )

        try:
            return self._call(ask())
        except TimeoutError as exc:
            raise KafkaError(f"end offsets not known within {timeout_ms} ms") from exc

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int | None:
        """The next offset to read; None when it is not known within `timeout_ms`."""
        try:
            position: int | None = self._call(
                asyncio.wait_for(self._require().position(partition), None if timeout_ms is None else timeout_ms / 1000)
            )
            return position
        except TimeoutError:
            return None

    def close(self, autocommit: bool = False) -> None:
        """Stop the consumer (never commits: `autocommit` is accepted for kafka-python's signature)."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None and self._loop.running:
            try:
                self._loop.call(consumer.stop(), 30)
            except (AioKafkaError, OSError, TimeoutError):
                pass  # nothing is committed on close: what was not committed is read again
        self._loop.stop()


def _every_partition(bootstrap: str, topics: list[str]) -> list[tuple[str, int]]:
    """Every partition of `topics`, once the metadata knows them all."""
    probe = KafkaConsumer(bootstrap_servers=bootstrap, client_id="tawasul-sink-metadata", **kafka_python_options())
    try:
        return assignable_partitions(probe, topics)
    finally:
        probe.close()


def open_sink_consumer(
    bootstrap: str, topics: list[str], *, group_id: str, batch_max: int, assign: bool
) -> KafkaConsumer | AssignedConsumer:
    """The sink's consumer of `topics`: with `assign`, an `AssignedConsumer` of every partition;
    else a member of `group_id` (kafka-python), read-committed, offsets committed by the sink."""
    if assign:
        return AssignedConsumer(
            bootstrap, _every_partition(bootstrap, topics), group_id=group_id, client_id=f"{group_id}-db"
        )
    return KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=f"{group_id}-db",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=batch_max,
        **kafka_python_options(),
    )

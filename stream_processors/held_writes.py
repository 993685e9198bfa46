"""Table writes held back until the outcomes they record are acknowledged by the broker.

A live SLA worker writes its table to RocksDB at once, while the outcome messages of the same
change are still in the producer's buffer. Were that write kept after a kill -9 that lost those
messages, the input message processed again at restart would be a duplicate, and the outcome
would be lost. So a change that decides outcomes is *held*: its new value lives here (the
agent reads it as the ticket's state), its input message is not acknowledged to faust (the
committed offset cannot pass it), and both happen only once every delivery of its messages has
succeeded. A later change of a held key is held behind it, so writes reach the table in order.

No faust or Kafka here: deliveries are asyncio futures, messages are opaque tokens.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Token = TypeVar("Token")
Resend = tuple[bytes, bytes]
"""An outcome message to send again if its delivery failed: (key, value)."""


@dataclass(slots=True)
class Held(Generic[Token]):
    """The held changes of one input message (event or tick)."""

    token: Token
    writes: list[tuple[bytes, bytes]] = field(default_factory=list)
    deliveries: list[asyncio.Future[object]] = field(default_factory=list)
    messages: list[Resend] = field(default_factory=list)

    def delivered(self) -> bool:
        return all(d.done() for d in self.deliveries)

    def failed(self) -> list[Resend]:
        """The messages whose delivery failed (only meaningful once `delivered`)."""
        return [m for d, m in zip(self.deliveries, self.messages, strict=True) if _failed(d)]

    def retrying(self, resent: list[asyncio.Future[object]]) -> None:
        """Replace the failed deliveries, in the order of `failed()`, by those of their resends."""
        again = iter(resent)
        self.deliveries = [next(again) if _failed(d) else d for d in self.deliveries]


def _failed(delivery: asyncio.Future[object]) -> bool:
    return delivery.cancelled() or delivery.exception() is not None


class HeldWrites(Generic[Token]):
    """Per partition, the input messages whose changes wait for their deliveries, in order."""

    __slots__ = ("_queues", "_newest")

    def __init__(self) -> None:
        self._queues: dict[int, deque[Held[Token]]] = {}
        self._newest: dict[bytes, tuple[int, bytes]] = {}

    def value(self, key: bytes) -> bytes | None:
        """The newest held value of `key` (None: nothing held, read the table)."""
        newest = self._newest.get(key)
        return None if newest is None else newest[1]

    def holds(self, key: bytes) -> bool:
        return key in self._newest

    def add(self, partition: int, held: Held[Token]) -> None:
        """Queue the changes of one message (does nothing when it has none)."""
        if not held.writes:
            return
        self._queues.setdefault(partition, deque()).append(held)
        for key, value in held.writes:
            self._newest[key] = (partition, value)

    def pending(self, partition: int) -> int:
        return len(self._queues.get(partition, ()))

    def ready(self, partition: int) -> bool:
        """True when the oldest held message of the partition has all its deliveries done."""
        queue = self._queues.get(partition)
        return queue is not None and len(queue) > 0 and queue[0].delivered()

    def partitions(self) -> Iterator[int]:
        return (p for p, q in self._queues.items() if q)

    def release(self, partition: int) -> Iterator[Held[Token]]:
        """Take the oldest held messages whose deliveries are all done, in order; stops at the
        first one still in flight. The caller writes each one's values, then acknowledges it.
        A message with a failed delivery is yielded last, still held: the caller sends its
        `failed()` messages again and passes their deliveries to `retrying`."""
        queue = self._queues.get(partition)
        while queue and queue[0].delivered():
            held = queue[0]
            if held.failed():
                yield held
                return
            queue.popleft()
            for key, value in held.writes:
                if self._newest.get(key) == (partition, value):
                    del self._newest[key]
            yield held

    def discard(self) -> list[tuple[int, bytes]]:
        """Forget everything held (after a rebalance the consumer seeks back to the committed
        offsets, so the held messages are processed again); returns the (partition, key) pairs
        whose table value is older than what the agent last saw."""
        dropped = [(partition, key) for key, (partition, _) in self._newest.items()]
        self._queues.clear()
        self._newest.clear()
        return dropped

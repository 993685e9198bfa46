"""Per-partition deadline index: which tickets need the SLA engine next, and when.

Each partition has a min-heap of `(instant, key)` and a dict `key -> instant` holding the
current instant of every key. Changing or removing a key only updates the dict; heap entries
that no longer match it are skipped when they reach the top (lazy deletion) and the heap is
rebuilt when stale entries outnumber live ones. Instants are microseconds since the epoch.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field

_COMPACT_FLOOR = 1024


@dataclass(slots=True)
class _Partition:
    heap: list[tuple[int, bytes]] = field(default_factory=list)
    when: dict[bytes, int] = field(default_factory=dict)

    def compact_if_stale(self) -> None:
        if len(self.heap) > _COMPACT_FLOOR and len(self.heap) > 2 * len(self.when):
            self.heap = [(at, key) for key, at in self.when.items()]
            heapq.heapify(self.heap)

    def top(self) -> tuple[int, bytes] | None:
        heap, when = self.heap, self.when
        while heap:
            at, key = heap[0]
            if when.get(key) == at:
                return at, key
            heapq.heappop(heap)
        return None


class DeadlineIndex:
    """Ticket key -> next instant, grouped by partition, with cheap "what is due" queries."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: dict[int, _Partition] = {}

    def set(self, partition: int, key: bytes, at: int | None) -> None:
        """Schedule `key` at `at` (replacing its previous instant), or unschedule it (None)."""
        part = self._parts.get(partition)
        if at is None:
            if part is not None:
                part.when.pop(key, None)
            return
        if part is None:
            part = self._parts[partition] = _Partition()
        if part.when.get(key) == at:
            return
        part.when[key] = at
        heapq.heappush(part.heap, (at, key))
        part.compact_if_stale()

    def get(self, partition: int, key: bytes) -> int | None:
        part = self._parts.get(partition)
        return None if part is None else part.when.get(key)

    def earliest(self, partition: int) -> int | None:
        """The earliest instant scheduled in the partition."""
        part = self._parts.get(partition)
        top = None if part is None else part.top()
        return None if top is None else top[0]

    def pop_due(self, partition: int, now: int, limit: int | None = None) -> list[bytes]:
        """Remove and return the keys scheduled at or before `now`, earliest first."""
        part = self._parts.get(partition)
        if part is None:
            return []
        due: list[bytes] = []
        while limit is None or len(due) < limit:
            top = part.top()
            if top is None or top[0] > now:
                break
            heapq.heappop(part.heap)
            del part.when[top[1]]
            due.append(top[1])
        return due

    def drop(self, partition: int) -> None:
        """Forget a partition entirely."""
        self._parts.pop(partition, None)

    def partitions(self) -> Iterator[int]:
        return iter(sorted(self._parts))

    def count(self, partition: int) -> int:
        part = self._parts.get(partition)
        return 0 if part is None else len(part.when)

    def __len__(self) -> int:
        return sum(len(p.when) for p in self._parts.values())

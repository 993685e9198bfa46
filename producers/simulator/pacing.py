"""Real-time and accelerated playback of an event stream, and bounded shuffling."""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Protocol, TypeVar

from .params import DUBAI, SimulatorError

T = TypeVar("T")


class Clock(Protocol):
    """What `pace` needs of a clock: the `time` module fits."""

    def time(self) -> float: ...

    def sleep(self, seconds: float, /) -> None: ...


def event_epoch(event: dict[str, object]) -> float:
    """Epoch seconds of an event's `time`."""
    return datetime.fromisoformat(str(event["time"])).timestamp()


def pace(
    events: Iterable[dict[str, object]],
    speed: float = 1.0,
    clock: Clock = time,
    rebase: bool = False,
) -> Iterator[dict[str, object]]:
    """Yield each event when its time comes: `speed` 1 is real time, 60 a minute per second.

    The first event is yielded at once. With `rebase`, an event's `time` is replaced by the
    wall-clock instant it is yielded at (millisecond precision, +04:00), so live processors
    see current times; durations then shrink by `speed`.
    """
    if not speed > 0:
        raise SimulatorError("speed must be positive")
    first: float | None = None
    wall_start = 0.0
    for event in events:
        moment = event_epoch(event)
        if first is None:
            first = moment
            wall_start = clock.time()
        due = wall_start + (moment - first) / speed
        delay = due - clock.time()
        if delay > 0:
            clock.sleep(delay)
        if rebase:
            stamp = datetime.fromtimestamp(due, DUBAI).isoformat(timespec="milliseconds")
            event = {**event, "time": stamp}
        yield event


def shuffle_within(
    items: Iterable[T], seconds: float, rng: random.Random, time_of: Callable[[T], float]
) -> Iterator[T]:
    """Reorder a time-sorted stream so that no item comes after one more than `seconds` older.

    Each item gets a key `time + U(0, seconds)` and leaves in key order as soon as no later
    item can have a smaller key; memory is bounded by the items within `seconds`.
    """
    if seconds < 0:
        raise SimulatorError("disorder must not be negative")
    if seconds == 0:
        yield from items
        return
    heap: list[tuple[float, int, T]] = []
    order = itertools.count()
    for item in items:
        moment = time_of(item)
        while heap and heap[0][0] <= moment:
            yield heapq.heappop(heap)[2]
        heapq.heappush(heap, (moment + rng.uniform(0.0, seconds), next(order), item))
    while heap:
        yield heapq.heappop(heap)[2]


def disorder(events: Iterable[dict[str, object]], seconds: float, seed: int = 0) -> Iterator[dict[str, object]]:
    """Shuffle time-sorted events within `seconds` (deterministic for a seed)."""
    return shuffle_within(events, seconds, random.Random(f"disorder|{seed}"), event_epoch)

"""Subject-free plans of one call, ticket or visit: its events in causal order."""

from __future__ import annotations

from typing import NamedTuple


class Step(NamedTuple):
    """One planned event; `time` is epoch seconds."""

    time: int
    type: str
    source: str
    data: dict[str, object]


class Plan(NamedTuple):
    """The events of one subject; `prefix` is `C`, `T` or `V`."""

    start: int
    prefix: str
    steps: tuple[Step, ...]


class PlanBuilder:
    """Collects steps and keeps their times strictly increasing (one second apart at least)."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._steps: list[Step] = []

    @property
    def last_time(self) -> int:
        return self._steps[-1].time if self._steps else 0

    def add(self, time: float, type_: str, source: str, data: dict[str, object]) -> int:
        """Append an event; returns the second it was placed at."""
        second = int(time)
        if self._steps and second <= self._steps[-1].time:
            second = self._steps[-1].time + 1
        self._steps.append(Step(second, type_, source, data))
        return second

    def build(self) -> Plan:
        return Plan(self._steps[0].time, self._prefix, tuple(self._steps))

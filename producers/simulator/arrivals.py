"""Calibrated arrival streams: non-homogeneous Poisson processes with day-to-day noise."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from .days import Almanac, DayInfo
from .profiles import segments

RateSegment = tuple[float, float, float]
"""(start epoch, end epoch, expected arrivals per second)."""


@dataclass(frozen=True)
class Stream:
    """Arrivals of one kind through one channel, calibrated to `count` over the reference."""

    name: str
    profile: str
    count: float
    month_factors: tuple[float, ...] = (1.0,) * 12
    ramadan_factor: float = 1.0

    def factor(self, info: DayInfo) -> float:
        ramadan = self.ramadan_factor if info.ramadan else 1.0
        return self.month_factors[info.month - 1] * ramadan

    def day_weight(self, info: DayInfo) -> float:
        """Level-minutes of the day: the calibration unit."""
        total = sum(level * (end - start) for start, end, level in segments(self.profile, info))
        return total * self.factor(info)


def reference_weight(stream: Stream, almanac: Almanac, first: date, end: date) -> float:
    """Sum of the stream's day weights over the reference days [first, end)."""
    total = 0.0
    day = first
    while day < end:
        total += stream.day_weight(almanac.info(day))
        day += timedelta(days=1)
    return total


def rate_segments(stream: Stream, info: DayInfo, per_level_minute: float) -> list[RateSegment]:
    """Expected arrival rate of the stream on a day, by segment."""
    factor = stream.factor(info) * per_level_minute / 60.0
    return [
        (info.start + start * 60.0, info.start + end * 60.0, level * factor)
        for start, end, level in segments(stream.profile, info)
    ]


def day_multiplier(rng: random.Random, cv: float) -> float:
    """Gamma noise with mean 1 and coefficient of variation `cv` (busy and quiet days)."""
    if cv <= 0:
        return 1.0
    shape = 1.0 / (cv * cv)
    return rng.gammavariate(shape, 1.0 / shape)


def draw_arrivals(rng: random.Random, rates: list[RateSegment], multiplier: float) -> list[float]:
    """Arrival instants of a Poisson process with piecewise-constant rate, ascending."""
    out: list[float] = []
    for start, end, rate in rates:
        lam = rate * multiplier
        if lam <= 0:
            continue
        moment = start + rng.expovariate(lam)
        while moment < end:
            out.append(moment)
            moment += rng.expovariate(lam)
    return out

"""The KPI formulas of Tawasul, shared by the live KPI processor and the period report.

Every figure is computed here so that the wall display and `tawasul report` agree. The rules
are the contract's (section 6):

* ratios lie in 0..1, averages are in seconds;
* every figure is rounded to 4 decimals (`round4`);
* a ratio or an average whose denominator is 0 is `None` (JSON `null`), never 0.

Durations may be passed as seconds (`float`) or as `timedelta`. Sum durations as `timedelta`
(exact integer microseconds) when the order of summation may vary: the result then does not
depend on the order in which calls or visits were seen.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = [
    "DECIMALS",
    "DEFAULT_THRESHOLD_SECONDS",
    "Duration",
    "abandon_ratio",
    "answered_within",
    "average",
    "average_handle_seconds",
    "average_speed_of_answer",
    "average_wait_seconds",
    "compliance",
    "handle_time",
    "is_satisfied",
    "ratio",
    "round4",
    "satisfaction",
    "seconds",
    "service_level",
]

DECIMALS = 4
"""Figures are rounded to this many decimals."""
DEFAULT_THRESHOLD_SECONDS = 20
"""The service-level threshold of the report unless told otherwise (answered within 20 s)."""

Duration = float | int | timedelta
"""A duration: seconds, or a `timedelta`."""


def seconds(value: Duration) -> float:
    """A duration in seconds (a `timedelta` is converted exactly to microsecond precision)."""
    if isinstance(value, timedelta):
        return (value // timedelta(microseconds=1)) / 1_000_000
    return float(value)


def round4(value: float | None) -> float | None:
    """`value` rounded to 4 decimals; `None` stays `None`."""
    if value is None:
        return None
    return round(float(value), DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def ratio(numerator: int, denominator: int) -> float | None:
    """`numerator / denominator` rounded to 4 decimals, `None` when the denominator is 0."""
    if denominator == 0:
        return None
    return round4(numerator / denominator)


def average(total: Duration, count: int) -> float | None:
    """The mean of `count` durations summing to `total`, in seconds, rounded; `None` when count is 0."""
    if count == 0:
        return None
    if isinstance(total, timedelta):
        return round4((total // timedelta(microseconds=1)) / count / 1_000_000)
    return round4(float(total) / count)


def answered_within(
    offered_at: datetime, answered_at: datetime, threshold_seconds: float = DEFAULT_THRESHOLD_SECONDS
) -> bool:
    """True when a call was answered at most `threshold_seconds` after it was offered.

    A call answered exactly at the threshold counts as within it.
    """
    return answered_at - offered_at <= timedelta(seconds=threshold_seconds)


def service_level(answered_within_threshold: int, answered: int, abandoned: int) -> float | None:
    """Calls answered within the threshold / (calls answered + calls abandoned).

    The default formula of Genesys Cloud: every abandoned call, short ones included, is in the
    denominator; a call still waiting is in neither. `None` when no call was answered or abandoned.
    """
    return ratio(answered_within_threshold, answered + abandoned)


def abandon_ratio(abandoned: int, answered: int) -> float | None:
    """Calls abandoned / (calls answered + calls abandoned): the share of decided calls lost.

    Same denominator as `service_level`, so calls still waiting do not count; `None` when no
    call was answered or abandoned.
    """
    return ratio(abandoned, answered + abandoned)


def average_speed_of_answer(total_wait: Duration, answered: int) -> float | None:
    """ASA: the mean offered-to-answered time of answered calls, in seconds; `None` with no answer."""
    return average(total_wait, answered)


def handle_time(answered_at: datetime, ended_at: datetime, wrap_up_seconds: float | None) -> timedelta:
    """The handle time of one call: answered-to-ended plus its wrap-up (none = 0 s).

    An end timed before the answer counts as 0 talk time.
    """
    talk = max(ended_at - answered_at, timedelta(0))
    return talk + timedelta(seconds=wrap_up_seconds or 0.0)


def average_handle_seconds(total_handle: Duration, ended: int) -> float | None:
    """AHT: the mean `handle_time` of ended (answered) calls, in seconds; `None` with no ended call."""
    return average(total_handle, ended)


def is_satisfied(score: int, scale: int = 5) -> bool:
    """A survey answer is satisfied when its score is 4 or 5 on the 5-point scale, or 3 on the 3-point one."""
    return score >= (3 if scale == 3 else 4)


def satisfaction(satisfied: int, surveys: int) -> float | None:
    """Satisfied answers / survey answers; `None` with no answer."""
    return ratio(satisfied, surveys)


def compliance(met: int, breached: int) -> float | None:
    """SLA compliance of a target: met / (met + breached); undecided targets are left out."""
    return ratio(met, met + breached)


def average_wait_seconds(total_wait: Duration, called: int) -> float | None:
    """The mean checked-in-to-called time of called walk-in visits, in seconds; `None` with none called."""
    return average(total_wait, called)

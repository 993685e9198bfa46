"""Erlang C: the M/M/c queue (Poisson arrivals, exponential handle times, c agents, no abandonment).

With offered load `A = arrival rate x AHT` (in erlangs) and `c > A` agents:

* `erlang_c(c, A)` = P(wait > 0), the probability that a call has to queue;
* `service_level(c, A, t, aht)` = P(wait <= t) = 1 - C(c, A) * exp(-(c - A) * t / AHT);
* `average_speed_of_answer(c, A, aht)` = C(c, A) * AHT / (c - A), the mean wait of all calls.

Erlang B is computed with the stable recursion B(0) = 1, B(k) = A B(k-1) / (k + A B(k-1)),
then C = c B / (c - A (1 - B)); no factorials, so it is exact enough for hundreds of agents.
"""

from __future__ import annotations

import math

from tawasul.domain.errors import DomainError

__all__ = ["ErlangError", "agents_for", "average_speed_of_answer", "erlang_b", "erlang_c", "service_level"]


class ErlangError(DomainError, ValueError):
    """The queue is unstable (c <= A) or an argument is out of range."""


def _check(agents: int, load: float) -> None:
    if agents < 1:
        raise ErlangError("agents must be at least 1")
    if load < 0 or not math.isfinite(load):
        raise ErlangError("offered load must be a finite number >= 0")


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability of M/M/c/c (Erlang B) for `agents` servers and `load` erlangs."""
    _check(agents, load)
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = load * blocking / (k + load * blocking)
    return blocking


def erlang_c(agents: int, load: float) -> float:
    """P(wait > 0) in M/M/c with `agents` servers and `load` erlangs; needs agents > load."""
    _check(agents, load)
    if agents <= load:
        raise ErlangError(f"unstable queue: {agents} agents for {load:g} erlangs (need more agents than erlangs)")
    blocking = erlang_b(agents, load)
    return agents * blocking / (agents - load * (1.0 - blocking))


def service_level(agents: int, load: float, threshold_seconds: float, aht_seconds: float) -> float:
    """P(wait <= threshold): 1 - C(c, A) * exp(-(c - A) * t / AHT)."""
    if aht_seconds <= 0 or threshold_seconds < 0:
        raise ErlangError("AHT must be > 0 and the threshold >= 0")
    return 1.0 - erlang_c(agents, load) * math.exp(-(agents - load) * threshold_seconds / aht_seconds)


def average_speed_of_answer(agents: int, load: float, aht_seconds: float) -> float:
    """Mean wait over all calls, in seconds: C(c, A) * AHT / (c - A)."""
    if aht_seconds <= 0:
        raise ErlangError("AHT must be > 0")
    return erlang_c(agents, load) * aht_seconds / (agents - load)


def agents_for(
    load: float, target: float, threshold_seconds: float, aht_seconds: float, max_agents: int = 10_000
) -> int:
    """The fewest agents whose service level reaches `target` (0..1) for `load` erlangs."""
    if not 0.0 < target < 1.0:
        raise ErlangError("target must lie strictly between 0 and 1")
    agents = max(1, math.floor(load) + 1)
    while agents <= max_agents:
        if service_level(agents, load, threshold_seconds, aht_seconds) >= target:
            return agents
        agents += 1
    raise ErlangError(f"no staffing up to {max_agents} agents reaches the target")

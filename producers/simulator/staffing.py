"""Erlang C staffing: the fewest servers that reach a service level on a forecast load."""

from __future__ import annotations

import math


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits (M/M/N), `load` in Erlangs; 1.0 when overloaded."""
    if servers <= load:
        return 1.0
    blocking = 1.0
    for n in range(1, servers + 1):
        blocking = load * blocking / (n + load * blocking)
    return servers * blocking / (servers - load * (1.0 - blocking))


def service_level(servers: int, load: float, handle_seconds: float, threshold: float) -> float:
    """Share of arrivals answered within `threshold` seconds."""
    if servers <= load:
        return 0.0
    waiting = erlang_c(servers, load)
    return 1.0 - waiting * math.exp(-(servers - load) * threshold / handle_seconds)


def required_servers(rate_per_second: float, handle_seconds: float, threshold: float, target: float, cap: int) -> int:
    """Servers needed for `target` service level (at least 1, at most `cap`)."""
    load = rate_per_second * handle_seconds
    servers = max(1, math.floor(load) + 1)
    while servers < cap and service_level(servers, load, handle_seconds, threshold) < target:
        servers += 1
    return min(servers, cap)

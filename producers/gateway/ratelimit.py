"""Per-credential request rate limits: one token bucket per adapter (in this gateway process).

```yaml
rate_limit: {per_second: 50, burst: 100}        # default of every adapter (optional)
adapters:
  - name: pbx-main
    rate_limit: {per_second: 200, burst: 400}   # this adapter's own (optional)
```

A request takes one token; a bucket holds at most `burst` tokens and refills at `per_second`.
An empty bucket answers 429 with `Retry-After` = the seconds until the next token.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

RATE_LIMIT_KEYS: Final = frozenset({"per_second", "burst"})


class RateLimitConfigError(ValueError):
    """A `rate_limit` mapping is malformed; the message names the key."""


@dataclass(frozen=True)
class RateLimit:
    """Requests per second (sustained) and burst (bucket size) of one credential."""

    per_second: float = 50.0
    burst: int = 100

    def __post_init__(self) -> None:
        if not (self.per_second > 0 and math.isfinite(self.per_second)) or self.burst < 1:
            raise RateLimitConfigError("rate_limit: per_second must be a positive number and burst at least 1")


DEFAULT_RATE_LIMIT: Final = RateLimit()


def parse_rate_limit(value: object, key: str, default: RateLimit = DEFAULT_RATE_LIMIT) -> RateLimit:
    """A `rate_limit` mapping of the secrets file (`key`: its place, for errors); missing keys come from `default`."""
    if value is None:
        return default
    if not isinstance(value, Mapping):
        raise RateLimitConfigError(f"{key}: must be a mapping with per_second and/or burst")
    unknown = sorted(set(map(str, value)) - RATE_LIMIT_KEYS)
    if unknown:
        raise RateLimitConfigError(f"{key}: unknown keys {', '.join(unknown)} (allowed: burst, per_second)")
    per_second, burst = value.get("per_second", default.per_second), value.get("burst", default.burst)
    if isinstance(per_second, bool) or not isinstance(per_second, int | float) or not per_second > 0:
        raise RateLimitConfigError(f"{key}.per_second: must be a positive number")
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise RateLimitConfigError(f"{key}.burst: must be a whole number, at least 1")
    return RateLimit(float(per_second), burst)


class TokenBucket:
    """`burst` tokens refilled at `per_second`; thread-safe."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._tokens = float(limit.burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """0.0 when a token was taken; else the seconds until one will be available (nothing taken)."""
        with self._lock:
            now = self._clock()
            elapsed = max(now - self._updated, 0.0)
            self._tokens = min(self.limit.burst, self._tokens + elapsed * self.limit.per_second)
            self._updated = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.limit.per_second

    def refund(self) -> None:
        """Give back a token taken by a request that was then refused (a replay)."""
        with self._lock:
            self._tokens = min(float(self.limit.burst), self._tokens + 1.0)


class RateLimiter:
    """One bucket per adapter name (the names come from the secrets file, so the set is bounded)."""

    def __init__(self, limits: Iterable[tuple[str, RateLimit]], clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets = {name: TokenBucket(limit, clock) for name, limit in limits}

    def take(self, adapter: str) -> float:
        """0.0 when the request may go on; else the seconds to wait (for `Retry-After`)."""
        return self._buckets[adapter].take()

    def refund(self, adapter: str) -> None:
        self._buckets[adapter].refund()


def retry_after_header(wait_s: float) -> str:
    """Whole seconds, rounded up, at least 1 (HTTP `Retry-After` takes integers)."""
    return str(max(1, math.ceil(wait_s)))

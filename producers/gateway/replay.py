"""Replay protection kept in the database: shared by every gateway instance, kept across restarts.

```python
store = DatabaseReplayStore(make_engine(settings.database_url))   # table gateway_nonces (migration 0002)
store.claim(key, expires_at=stamp + tolerance_s, now=time.time())  # False: already used (a replay)
store.release(key)                                                  # the request was not processed
```

Each accepted signature is one row (`key` = SHA-256 of adapter and signature, `expires_at` =
its timestamp + the signature's maximum age), inserted with `ON CONFLICT DO NOTHING RETURNING`: of two
instances claiming one key at once, exactly one inserts it. Rows are purged `grace_s` after
they expire (room for clocks of several instances that differ a little), at most every
`purge_every_s`; when more than `max_entries` live rows are held, claims fail closed
(`ReplayStoreFull`, answered 503) instead of letting anything be forgotten early.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from sinks.db.models import GatewayNonce

logger = logging.getLogger("tawasul.gateway.replay")

DEFAULT_MAX_ENTRIES: Final = 1_000_000
DEFAULT_PURGE_EVERY_S: Final = 30.0
DEFAULT_GRACE_S: Final = 60.0
RECENT_KEYS: Final = 10_000
"""Keys this instance claimed lately, answered as replays without a database round trip (a key
claimed by another instance is always looked up: that instance may release it)."""


class ReplayStoreError(Exception):
    """The replay store cannot decide: the request is refused with 503 (fail closed)."""


class ReplayStoreFull(ReplayStoreError):
    """More than `max_entries` live signatures are held: refuse until some expire."""


class ReplayStoreUnavailable(ReplayStoreError):
    """The database cannot be reached."""


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class DatabaseReplayStore:
    """Signatures seen recently, in the `gateway_nonces` table (thread-safe; blocking calls)."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        purge_every_s: float = DEFAULT_PURGE_EVERY_S,
        grace_s: float = DEFAULT_GRACE_S,
        owns_engine: bool = False,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.engine = engine
        self.max_entries = max_entries
        self.purge_every_s = purge_every_s
        self.grace_s = grace_s
        self._owns_engine = owns_engine
        self._insert: Callable[..., Any] = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._lock = threading.Lock()
        self._purged_at = float("-inf")
        self._full = False
        self._recent: OrderedDict[str, float] = OrderedDict()

    def claim(self, key: str, expires_at: float, now: float) -> bool:
        """Record `key` until `expires_at`; False when it is already held (a replay).

        Raises ReplayStoreFull or ReplayStoreUnavailable.
        """
        with self._lock:
            known = self._recent.get(key)
        if known is not None and known >= now:
            return False
        try:
            self._maybe_purge(now)
            if self._full:
                raise ReplayStoreFull("too many recent signatures; retry shortly")
            statement = (
                self._insert(GatewayNonce)
                .values(key=key, expires_at=_utc(expires_at))
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(GatewayNonce.key)
            )
            with self.engine.begin() as connection:
                inserted = connection.execute(statement).first() is not None
        except SQLAlchemyError as exc:
            raise ReplayStoreUnavailable(
                f"the replay-protection database is not reachable: {type(exc).__name__}"
            ) from None
        if not inserted:
            return False
        with self._lock:  # only this instance's own claims: it also sees their releases
            self._recent[key] = expires_at
            while len(self._recent) > RECENT_KEYS:
                self._recent.popitem(last=False)
        return True

    def release(self, key: str) -> None:
        """Forget `key` (a request refused before processing may be sent again with its signature)."""
        with self._lock:
            self._recent.pop(key, None)
        try:
            with self.engine.begin() as connection:
                connection.execute(delete(GatewayNonce).where(GatewayNonce.key == key))
        except SQLAlchemyError as exc:
            logger.warning("could not release a signature", extra={"error": type(exc).__name__})

    def _maybe_purge(self, now: float) -> None:
        with self._lock:
            if now - self._purged_at < self.purge_every_s:
                return
            self._purged_at = now
        self.purge(now)

    def purge(self, now: float) -> int:
        """Delete rows expired more than `grace_s` ago; update the full flag. Returns rows deleted."""
        cutoff = _utc(now - self.grace_s)
        with self.engine.begin() as connection:
            deleted = connection.execute(delete(GatewayNonce).where(GatewayNonce.expires_at < cutoff)).rowcount
            held = connection.execute(select(func.count()).select_from(GatewayNonce)).scalar_one()
        with self._lock:
            self._recent = OrderedDict((k, e) for k, e in self._recent.items() if e >= now)
            self._full = held >= self.max_entries
        if self._full:
            logger.warning("replay store full", extra={"held": held, "max_entries": self.max_entries})
        return int(deleted or 0)

    def __len__(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(GatewayNonce)).scalar_one())

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

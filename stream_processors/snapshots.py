"""KPI snapshots: which figures go out and when (`SnapshotPacer`), and their CloudEvents.

No Kafka here: the faust KPI processor (`kpi_agent.SnapshotPublisher`) and the batch engine of
replays (`batch_engine`) both ask a pacer for the rows to publish and send them their own way.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable

from schemas import dataschema_uri
from schemas.fields import format_number, format_timestamp
from tawasul.domain.kpi_book import KpiBook
from tawasul.domain.kpi_contributions import Scope
from tawasul.domain.kpi_rows import Row
from tawasul.domain.windows import WINDOW_NAMES, from_us

KPI_SOURCE = "/stream-processors/kpi"
SNAPSHOT_SCHEMA = dataschema_uri("kpi.snapshot")
MIN_INTERVAL_S = 1.0
SLOW_INTERVAL_S = 5.0
FAST_WINDOWS: tuple[str, ...] = ("15m", "1h")
SLOW_WINDOWS: tuple[str, ...] = ("24h", "7d", "30d", "today", "month", "half_year")
"""Windows whose keys are published at most every `SLOW_INTERVAL_S` (they move slowly; fewer messages)."""


def plans(where: Scope) -> tuple[tuple[str, ...], ...]:
    """The groups of windows of a scope that are evaluated together, each with its own pace.

    The operational scopes (everything, a queue, a centre) get their short windows every second
    and the long ones every 5 s; the analytical ones (agent, channel, kind, ...) every 5 s.
    """
    if not where or (len(where) == 1 and where[0][0] in ("queue", "centre")):
        return FAST_WINDOWS, SLOW_WINDOWS
    return (WINDOW_NAMES,)


class SnapshotPacer:
    """Evaluates the changed scopes of a `KpiBook` at their pace and lets through the figures
    whose value or count changed since they were last let through.

    A scope's pace counts from its last *publication*: an evaluation that let nothing through
    (a window sliding over unchanged counts at a minute boundary) holds no later change back.
    """

    def __init__(
        self,
        *,
        min_interval_s: float = MIN_INTERVAL_S,
        slow_interval_s: float = SLOW_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.intervals = {FAST_WINDOWS: min_interval_s, SLOW_WINDOWS: slow_interval_s, WINDOW_NAMES: slow_interval_s}
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._pending: set[tuple[tuple[str, ...], Scope]] = set()
        self._published: dict[tuple[tuple[str, ...], Scope], float] = {}
        self._now_published = float("-inf")
        self._last: dict[str, tuple[float | None, int | None]] = {}
        self._sent_as_of = 0
        self._clock_sent = float("-inf")

    def reset(self, scopes: Iterable[Scope]) -> None:
        """After a rebuild: every scope is due, and every key is published once more (another
        worker may have owned the figures meanwhile)."""
        self._pending = {(windows, where) for where in scopes for windows in plans(where)}
        self._published.clear()
        self._last.clear()
        self._now_published = float("-inf")
        self._sent_as_of = 0

    def changed_rows(self, book: KpiBook, *, force: bool = False) -> list[Row]:
        """The rows of the scopes whose turn has come (all pending ones with `force`) whose value
        or count changed since they were last taken (with the clock row when only the clock
        moved); taking them marks them as published."""
        if book.as_of_us == 0:
            return []
        now = self._clock()
        for where in book.take_dirty():
            self._pending.update((windows, where) for windows in plans(where))
        changed: list[Row] = []
        for item in list(self._pending):
            if force or now - self._published.get(item, float("-inf")) >= self.intervals[item[0]]:
                self._pending.discard(item)
                fresh = self._fresh(book.window_rows(item[1], item[0]))
                if fresh:
                    self._published[item] = now
                    changed += fresh
        if book.now_dirty and (force or now - self._now_published >= self.min_interval_s):
            book.now_dirty = False
            fresh = self._fresh(book.now_rows())
            if fresh:
                self._now_published = now
                changed += fresh
        if (
            not changed
            and book.as_of_us > self._sent_as_of
            and (force or now - self._clock_sent >= self.min_interval_s)
        ):
            changed.append(book.clock_row())  # nothing changed, but the clock moved: say so
        if changed:
            self._sent_as_of, self._clock_sent = book.as_of_us, now
        return changed

    def _fresh(self, rows: list[Row]) -> list[Row]:
        """The rows whose (value, count) differs from what was last taken; marks them taken."""
        fresh = []
        for row in rows:
            signature = (row.value, row.count)
            if self._last.get(row.key) != signature:
                self._last[row.key] = signature
                fresh.append(row)
        return fresh


def snapshot_event(row: Row, as_of_us: int, as_of_text: str | None = None) -> bytes:
    """The `kpi.snapshot` CloudEvent of one row (subject = its key), as compact UTF-8 JSON.

    Built directly (hundreds a second must stay cheap); `parse_event` accepts it, which the
    tests check. `as_of_text` is `as_of_us` already formatted, when known.
    """
    as_of = as_of_text or format_timestamp(from_us(as_of_us))
    value = None if row.value is None else format_number(row.value)
    body = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": KPI_SOURCE,
        "type": "kpi.snapshot",
        "time": as_of,
        "subject": row.key,
        "datacontenttype": "application/json",
        "dataschema": SNAPSHOT_SCHEMA,
        "data": {
            "figure": row.figure,
            "window": row.window,
            "scope": dict(row.scope),
            "value": value,
            "count": row.count,
            "as_of": as_of,
        },
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def snapshot_messages(rows: Iterable[Row], as_of_us: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of the snapshot of each row, all as of `as_of_us`."""
    as_of = format_timestamp(from_us(as_of_us))
    return [(row.key.encode(), snapshot_event(row, as_of_us, as_of)) for row in rows]

"""The book of one KPI aggregator: every scope's windows and the instantaneous figures.

`KpiBook` sums the contributions (`kpi_contributions`) per scope over the windows of
`tawasul.domain.windows` and turns them into figures (`kpi_rows`) with the formulas of
`tawasul.domain.kpis`.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable

from tawasul.domain import kpis
from tawasul.domain.kpi_contributions import (
    Contribution,
    Live,
    Scope,
    contributions,
    expiry_us,
    live_status,
    pending_deadline_us,
    scope,
)
from tawasul.domain.kpi_records import SubjectRecord
from tawasul.domain.kpi_rows import Row, _count, families, tally_rows
from tawasul.domain.kpi_tallies import _US, ZERO, KpiConfig, Tally
from tawasul.domain.windows import (
    DAY_US,
    MINUTE_US,
    NOW,
    WINDOW_NAMES,
    WindowedSums,
    bucket_ids,
    retention_floors,
    window_ranges,
)

__all__ = ["KpiBook", "Lookup", "rebuild"]


Lookup = Callable[[str], SubjectRecord | None]
BacklogClass = tuple[str, str, str, str]
"""(channel, kind, priority, sla_state) of an open ticket."""
_BACKLOG_NAMES = ("channel", "kind", "priority", "sla_state")


class KpiBook:
    """All figures of one aggregator: per-scope window totals, live statuses, the ticket backlog.

    Feed it every changed record with `update(subject, record)` (None forgets the subject) and
    move its clock with `advance(as_of_us, lookup)`; both are idempotent. It only keeps what the
    records imply, so rebuilding it from the stored records after a restart gives the same
    figures. `take_dirty()` names the scopes whose window figures may have changed since.
    """

    def __init__(self, config: KpiConfig, as_of_us: int = 0) -> None:
        self.config = config
        self._as_of = as_of_us
        self._minute = as_of_us // MINUTE_US
        self._sums: dict[Scope, WindowedSums[Tally]] = {(): WindowedSums(ZERO, as_of_us)}
        self._applied: dict[str, tuple[Contribution, ...]] = {}
        self._live: dict[str, Live] = {}
        self._backlog: dict[str, BacklogClass] = {}
        self._backlog_counts: Counter[BacklogClass] = Counter()
        self._backlog_seen: set[BacklogClass] = set()
        self._pending: dict[str, int] = {}
        self._pending_heap: list[tuple[int, str]] = []
        self._expiry: dict[str, int] = {}
        self._next_sweep = 0
        self._dirty: set[Scope] = set()
        self.now_dirty = False

    @property
    def as_of_us(self) -> int:
        return self._as_of

    def __len__(self) -> int:
        """How many subjects the book holds."""
        return len(self._expiry)

    def scopes(self) -> list[Scope]:
        return list(self._sums)

    def take_dirty(self) -> set[Scope]:
        dirty, self._dirty = self._dirty, set()
        return dirty

    def update(self, subject: str, record: SubjectRecord | None) -> None:
        """Take the subject's current record into account (None: the subject is gone)."""
        new = contributions(record, self.config, self._as_of) if record is not None else ()
        old = self._applied.get(subject, ())
        if new != old:
            deltas: dict[tuple[Scope, int], Tally] = {}
            for c in old:
                deltas[(c.scope, c.time_us)] = deltas.get((c.scope, c.time_us), ZERO) - c.tally
            for c in new:
                deltas[(c.scope, c.time_us)] = deltas.get((c.scope, c.time_us), ZERO) + c.tally
            ids: dict[int, tuple[int, int, int]] = {}
            for (where, at), delta in deltas.items():
                if delta:
                    if at not in ids:
                        ids[at] = bucket_ids(at)
                    self._scope(where).add(at, delta, ids[at])
                    self._dirty.add(where)
            if new:
                self._applied[subject] = new
            else:
                self._applied.pop(subject, None)
        self._set_live(subject, live_status(record) if record is not None else None)
        backlog = record.backlog if record is not None else None
        cls = (backlog.channel, backlog.kind, backlog.priority, backlog.sla_state) if backlog and backlog.open else None
        self._set_backlog(subject, cls)
        self._set_pending(subject, record)
        if record is None:
            self._expiry.pop(subject, None)
        else:
            self._expiry[subject] = expiry_us(record, self.config)

    def _scope(self, where: Scope) -> WindowedSums[Tally]:
        sums = self._sums.get(where)
        if sums is None:
            sums = self._sums[where] = WindowedSums(ZERO, self._as_of)
        return sums

    def _set_live(self, subject: str, status: Live | None) -> None:
        if self._live.get(subject) != status:
            self.now_dirty = True
            if status is None:
                del self._live[subject]
            else:
                self._live[subject] = status

    def _set_backlog(self, subject: str, cls: BacklogClass | None) -> None:
        old = self._backlog.get(subject)
        if old == cls:
            return
        self.now_dirty = True
        if old is not None:
            self._backlog_counts[old] -= 1
            del self._backlog[subject]
        if cls is not None:
            self._backlog[subject] = cls
            self._backlog_counts[cls] += 1
            self._backlog_seen.add(cls)

    def _set_pending(self, subject: str, record: SubjectRecord | None) -> None:
        held = 0
        if record is not None and record.section is None:
            hold = self.config.survey_hold // _US
            held = sum(1 for s in record.surveys if s.time_us + hold > self._as_of)
        if self._pending.get(subject, 0) != held:
            self.now_dirty = True
            if held:
                self._pending[subject] = held
            else:
                self._pending.pop(subject, None)
        deadline = pending_deadline_us(record, self.config, self._as_of) if record is not None else None
        if deadline is not None:
            heapq.heappush(self._pending_heap, (deadline, subject))

    def advance(self, as_of_us: int, lookup: Lookup) -> None:
        """Move the clock forward (never back); held surveys whose time is up become unmatched."""
        if as_of_us <= self._as_of:
            return
        self._as_of = as_of_us
        if self._live or self._backlog_counts:
            self.now_dirty = True
        minute = as_of_us // MINUTE_US
        if minute != self._minute:
            self._minute = minute
            ranges, floors = window_ranges(as_of_us), retention_floors(as_of_us)
            for where, sums in self._sums.items():
                if sums.advance(as_of_us, ranges, floors):
                    self._dirty.add(where)
        while self._pending_heap and self._pending_heap[0][0] <= as_of_us:
            _, subject = heapq.heappop(self._pending_heap)
            self.update(subject, lookup(subject))

    def expired(self) -> list[str]:
        """Subjects whose records may be deleted now (looked for at most once per day of clock)."""
        if self._as_of < self._next_sweep:
            return []
        self._next_sweep = self._as_of + DAY_US
        return [subject for subject, at in self._expiry.items() if at <= self._as_of]

    def window_rows(self, where: Scope, windows: Iterable[str] = WINDOW_NAMES) -> list[Row]:
        """The figures of one scope over `windows` (all of them by default)."""
        sums = self._sums.get(where)
        if sums is None:
            return []
        kinds = families(where)
        rows: list[Row] = []
        for name in windows:
            rows += tally_rows(sums.total(name), name, where, kinds)
        return rows

    def tally(self, where: Scope, window: str) -> Tally:
        """The counters of one scope over one window (zero for an unknown scope)."""
        sums = self._sums.get(where)
        return ZERO if sums is None else sums.total(window)

    def now_rows(self) -> list[Row]:
        """The instantaneous figures: calls and visitors waiting, agents on a call, open tickets."""
        now = self._as_of
        call_stale = now - self.config.call_stale_after // _US
        visit_stale = now - self.config.visit_stale_after // _US
        waiting: dict[str, list[int]] = {}
        agents: dict[str, set[str]] = {}
        visitors: dict[str, list[int]] = {}
        for where in self._sums:
            if len(where) == 1 and where[0][0] == "queue":
                waiting.setdefault(where[0][1], [])
                agents.setdefault(where[0][1], set())
            elif len(where) == 1 and where[0][0] == "centre":
                visitors.setdefault(where[0][1], [])
        for status in self._live.values():
            if status.kind == "visit_waiting":
                if status.since_us >= visit_stale:
                    visitors.setdefault(status.group, []).append(status.since_us)
            elif status.since_us >= call_stale:
                if status.kind == "call_waiting":
                    waiting.setdefault(status.group, []).append(status.since_us)
                    agents.setdefault(status.group, set())
                else:
                    agents.setdefault(status.group, set()).add(status.agent)
                    waiting.setdefault(status.group, [])
        rows = _wait_rows("calls", waiting, now) + _wait_rows("visits", visitors, now)
        everyone = set().union(*agents.values()) if agents else set()
        rows.append(_count("calls.agents_on_call", NOW, (), len(everyone)))
        rows += [_count("calls.agents_on_call", NOW, scope(queue=q), len(a)) for q, a in sorted(agents.items())]
        rows += self._backlog_rows()
        rows.append(_count("surveys.pending", NOW, (), sum(self._pending.values())))
        return rows

    def clock_row(self) -> Row:
        """The total of open tickets: republished with the new `as_of` when the clock moved but no
        figure changed, so the newest snapshot always tells how current the figures are."""
        return _count("tickets.open", NOW, (), sum(self._backlog_counts.values()))

    def _backlog_rows(self) -> list[Row]:
        groups: Counter[Scope] = Counter({(): 0})
        for cls in self._backlog_seen:
            n = self._backlog_counts[cls]
            full = tuple(sorted(zip(_BACKLOG_NAMES, cls, strict=True)))
            groups[()] += n
            groups[full] += n
            for pair in full:
                groups[(pair,)] += n
        return [_count("tickets.open", NOW, where, n) for where, n in sorted(groups.items())]


def _wait_rows(family: str, waits: dict[str, list[int]], now: int) -> list[Row]:
    everything = [since for values in waits.values() for since in values]
    rows: list[Row] = []
    for where, values in [((), everything), *((scope(**{_GROUP[family]: g}), v) for g, v in sorted(waits.items()))]:
        longest = kpis.round4(max(now - min(values), 0) / 1_000_000) if values else None
        rows.append(_count(f"{family}.waiting", NOW, where, len(values)))
        rows.append(Row(f"{family}.longest_wait_seconds", NOW, where, longest, len(values)))
    return rows


_GROUP = {"calls": "queue", "visits": "centre"}


def rebuild(config: KpiConfig, records: Iterable[SubjectRecord], as_of_us: int | None = None) -> KpiBook:
    """A book holding these stored records (after a restart); the clock at `as_of_us`, by default
    the latest event time of the records (the event-time clock of a replay)."""
    items = list(records)
    start = max((r.seen_us for r in items), default=0) if as_of_us is None else as_of_us
    book = KpiBook(config, start)
    for record in items:
        book.update(record.subject, record)
    return book

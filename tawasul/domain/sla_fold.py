"""Bounded memory of a ticket's SLA state: fold what no longer matters into a fixed-size digest.

A ticket's state keeps its events as marks (`sla_state.TicketSla`); without a bound a ticket
with many events outgrows a Kafka message. `fold` keeps it bounded once a ticket holds more than
`FOLD_FROM` events:

* a mark older than the allowed lateness (its time before the ticket's newest event time minus
  the lateness) that moves no clock is dropped: an assignment, a second opening, a pause while
  paused, a resumption while running, an acknowledgement of a stopped clock, a reopening of a
  running one (the rules of `sla_timeline.build_timeline`). Any event that arrives
  within the lateness sorts after it, so the clocks, outcomes and figures are those of the full
  history; marks that do move a clock are kept, with their ids;
* the ids of the dropped marks, and those of events ignored after `ticket.closed` beyond
  `IGNORED_KEPT`, go into a Bloom filter of `DIGEST_BITS` bits (`DIGEST_HASHES` hashes). An event
  that is not among the kept ids is a duplicate when the filter holds its id and it is older
  than the folding cutoff (or the ticket is closed). A false positive only drops an event later
  than the allowed lateness, with a rate of `false_positive_rate(folded ids)`: 0.2 % at 4,000
  folded ids, 1 % at 6,300, 4.4 % at 10,000, 25 % at 20,000 (such an event, beyond the allowed
  lateness, is then counted as a duplicate).

The counts of dropped marks and folded ignored ids are kept, so the state's version and its
`ignored_after_close` never go back.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from tawasul.domain.sla_timeline import (
    ACKNOWLEDGED,
    ASSIGNED,
    CLOSED,
    OPENED,
    PAUSED,
    REOPENED,
    RESOLVED,
    RESUMED,
    Mark,
)

if TYPE_CHECKING:
    from tawasul.domain.sla_state import TicketSla

FOLD_FROM = 256
"""Events (marks and ignored ids) a ticket holds before its state is folded."""
IGNORED_KEPT = 64
"""Ids of events ignored after closing kept as they are; more are folded all at once."""
DIGEST_BITS = 65_536
"""Size of the Bloom filter of folded ids: 8 KiB."""
DIGEST_HASHES = 4


def _positions(event_id: str) -> tuple[int, ...]:
    raw = hashlib.blake2b(event_id.encode(), digest_size=4 * DIGEST_HASHES).digest()
    return tuple(int.from_bytes(raw[4 * i : 4 * i + 4], "big") % DIGEST_BITS for i in range(DIGEST_HASHES))


def digest_add(digest: bytes, event_ids: Iterable[str]) -> bytes:
    """The filter `digest` (empty: a new one) with `event_ids` added."""
    bits = bytearray(digest or bytes(DIGEST_BITS // 8))
    for event_id in event_ids:
        for position in _positions(event_id):
            bits[position >> 3] |= 1 << (position & 7)
    return bytes(bits)


def digest_has(digest: bytes, event_id: str) -> bool:
    """True when `event_id` may have been added (false positives, never false negatives)."""
    if not digest:
        return False
    return all(digest[p >> 3] & (1 << (p & 7)) for p in _positions(event_id))


def false_positive_rate(folded_ids: int) -> float:
    """The filter's false-positive rate after `folded_ids` ids: (1 - e^(-k n / m))^k."""
    return (1.0 - math.exp(-DIGEST_HASHES * folded_ids / DIGEST_BITS)) ** DIGEST_HASHES


def neutral(marks: tuple[Mark, ...]) -> list[bool]:
    """For each mark, True when it moves no clock (the state machine of `build_timeline`)."""
    out: list[bool] = []
    opened = paused = first_done = res_done = False
    for _time, rank, _id, _payload in marks:
        still = False
        if rank == ASSIGNED:
            still = True
        elif rank == OPENED:
            still, opened = opened, True
        elif rank == PAUSED:
            still, paused = paused, True
        elif rank == RESUMED:
            still, paused = not paused, False
        elif rank == ACKNOWLEDGED:
            still, first_done = first_done, True
        elif rank == RESOLVED:  # kept: a second resolution moves the ticket's `resolved_at`
            first_done = res_done = True
        elif rank == REOPENED:
            still, res_done = not res_done, False
        elif rank == CLOSED:
            first_done = res_done = True
        out.append(still)
    return out


def fold(state: TicketSla, lateness_us: int) -> TicketSla:
    """`state` with its clock-neutral marks older than `lateness_us` before its newest event, and
    its ignored ids beyond `IGNORED_KEPT`, folded into the digest; `state` itself when it holds
    no more than `FOLD_FROM` events, is not opened, or has nothing to fold."""
    marks = state.marks
    if len(marks) + len(state.ignored) <= FOLD_FROM or not any(m.rank == OPENED for m in marks):
        return state
    cutoff = marks[-1].at - lateness_us
    kept: list[Mark] = []
    gone: list[str] = []
    for mark, still in zip(marks, neutral(marks), strict=True):
        if still and mark.at < cutoff:
            gone.append(mark.id)
        else:
            kept.append(mark)
    ignored, gone_ignored = state.ignored, ()
    if len(ignored) > IGNORED_KEPT:
        ignored, gone_ignored = (), ignored
    if not gone and not gone_ignored:
        return state
    before = cutoff if state.folded_before is None else max(state.folded_before, cutoff)
    return replace(
        state,
        marks=tuple(kept),
        ignored=ignored,
        digest=digest_add(state.digest, (*gone, *gone_ignored)),
        folded_marks=state.folded_marks + len(gone),
        folded_ignored=state.folded_ignored + len(gone_ignored),
        folded_before=before,
    )

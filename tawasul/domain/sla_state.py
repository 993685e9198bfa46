"""Records of the SLA engine: the stored state of a ticket, outcomes and statuses."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tawasul.domain.errors import DomainError
from tawasul.domain.sla_fold import digest_has
from tawasul.domain.sla_timeline import CLOSED, OPENED, Mark, Payload, Profile

WARNING, BREACHED, MET = "sla.warning", "sla.breached", "sla.met"
BREACH_WITHDRAWN, WARNING_WITHDRAWN = "sla.breach_withdrawn", "sla.warning_withdrawn"
WITHDRAWS = {BREACH_WITHDRAWN: BREACHED, WARNING_WITHDRAWN: WARNING}
"""Withdrawal type -> the type of the outcome it withdraws."""
OUTCOME_ORDER = {BREACHED: 0, BREACH_WITHDRAWN: 1, WARNING_WITHDRAWN: 2, MET: 3, WARNING: 4}
"""Order of outcomes decided at one instant for one target: a withdrawal precedes the `sla.met`
that replaces it (the first, third and last keep their former alphabetical order)."""
RUNNING, UNDECIDED = "running", "undecided"
STATUS_MET, STATUS_BREACHED = "met", "breached"


class SlaError(DomainError, ValueError):
    """A stored SLA state could not be read back."""


def fired_bit(target: str, kind: str, cycle: int = 0) -> int:
    """The bit of `TicketSla.fired` recording an emitted outcome.

    Warnings and breaches fire at most once per ticket and target; `sla.met` once per
    resolution cycle (a reopened ticket can be met again by its next resolution).
    """
    base = 0 if target == "first_response" else 3
    if kind == WARNING:
        return 1 << base
    if kind == BREACHED:
        return 1 << (base + 1)
    return 1 << (2 if target == "first_response" else 5 + cycle)


@dataclass(frozen=True, slots=True)
class TicketSla:
    """The SLA state of one ticket, compact and JSON-serialisable.

    `marks` are the ticket's deduplicated events sorted by (time, type rank, id); everything
    else is derived from them, so the order of arrival does not matter. `fired` is a bit set
    of emitted outcomes (`fired_bit`), `ignored` the ids of events after `ticket.closed`, and
    `next_fire` the earliest instant (us since the epoch) at which `due` emits something.

    A ticket with many events is folded (`sla_fold.fold`): marks that move no clock and are
    older than the allowed lateness leave `marks`, ids ignored after closing leave `ignored`;
    their ids go into `digest` (a Bloom filter), their counts into `folded_marks` and
    `folded_ignored`; `folded_before` is the latest folding cutoff (us).
    """

    ticket_id: str
    marks: tuple[Mark, ...] = ()
    fired: int = 0
    ignored: tuple[str, ...] = ()
    next_fire: int | None = None
    digest: bytes = b""
    folded_marks: int = 0
    folded_ignored: int = 0
    folded_before: int | None = None

    @property
    def opened(self) -> bool:
        """True once `ticket.opened` is stored."""
        return any(m.rank == OPENED for m in self.marks)

    @property
    def closed(self) -> bool:
        """True once `ticket.closed` is stored."""
        return bool(self.marks) and self.marks[-1].rank == CLOSED

    @property
    def ignored_after_close(self) -> int:
        """How many distinct events were dropped because they came after `ticket.closed`."""
        return len(self.ignored) + self.folded_ignored

    @property
    def events(self) -> int:
        """Distinct events applied (stored, folded or ignored after closing); never decreases."""
        return len(self.marks) + len(self.ignored) + self.folded_marks + self.folded_ignored

    @property
    def profile(self) -> Profile | None:
        """(channel, kind, category, priority at opening, department), once opened."""
        mark = next((m for m in self.marks if m.rank == OPENED), None)
        return mark.payload if mark is not None and isinstance(mark.payload, tuple) else None

    def has_event(self, event_id: str) -> bool:
        """True when an event with this id was seen (stored or ignored after closing)."""
        if event_id in self.ignored:
            return True
        for mark in self.marks:  # a plain loop: cheaper than any() over a generator here
            if mark.id == event_id:
                return True
        return False

    def seen(self, event_id: str, time_us: int) -> bool:
        """`has_event`, or the id is in the digest of folded ids and the event is older than the
        folding cutoff or not before the ticket's closing (`sla_fold`: false positives possible)."""
        if self.has_event(event_id):
            return True
        if not self.digest:
            return False
        folded_era = self.folded_before is not None and time_us < self.folded_before
        after_close = self.closed and time_us >= self.marks[-1].at
        return (folded_era or after_close) and digest_has(self.digest, event_id)

    def to_dict(self) -> dict[str, Any]:
        """A compact JSON-ready dict; `from_dict(to_dict(s)) == s`."""
        out: dict[str, Any] = {
            "ticket_id": self.ticket_id,
            "marks": [[t, r, i, list(p) if isinstance(p, tuple) else p] for t, r, i, p in self.marks],
        }
        if self.fired:
            out["fired"] = self.fired
        if self.ignored:
            out["ignored"] = list(self.ignored)
        if self.next_fire is not None:
            out["next_fire"] = self.next_fire
        if self.digest:
            out["folded"] = [self.folded_marks, self.folded_ignored, self.folded_before]
            out["digest"] = base64.b64encode(self.digest).decode()
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TicketSla:
        """Read back `to_dict` output; raises SlaError on anything else."""
        try:
            marks = tuple(Mark(int(t), int(r), str(i), _payload(p)) for t, r, i, p in raw["marks"])
            next_fire = raw.get("next_fire")
            folded_marks, folded_ignored, folded_before = raw.get("folded", (0, 0, None))
            return cls(
                ticket_id=str(raw["ticket_id"]),
                marks=marks,
                fired=int(raw.get("fired", 0)),
                ignored=tuple(str(i) for i in raw.get("ignored", ())),
                next_fire=None if next_fire is None else int(next_fire),
                digest=base64.b64decode(raw.get("digest", ""), validate=True),
                folded_marks=int(folded_marks),
                folded_ignored=int(folded_ignored),
                folded_before=None if folded_before is None else int(folded_before),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise SlaError(f"not a stored ticket SLA state: {exc!r}") from exc


def _payload(raw: object) -> Payload:
    if raw is None or isinstance(raw, str):
        return raw
    if isinstance(raw, list) and len(raw) == 5:
        channel, kind, category, priority, department = raw
        return str(channel), str(kind), str(category), str(priority), (None if department is None else str(department))
    raise SlaError(f"bad mark payload {raw!r}")


@dataclass(frozen=True, slots=True)
class SlaOutcome:
    """An `sla.warning`, `sla.breached`, `sla.met`, or a withdrawal, of one ticket and target.

    `at` is when it happened: the warning instant, the instant the limit was exceeded from,
    or the stopping event's time for `sla.met`. `id` is deterministic so that consumers can
    drop repeats after a restart.

    A withdrawal (`sla.breach_withdrawn`, `sla.warning_withdrawn`) corrects an outcome fired
    live that a late event proved wrong: `at` is the late event's time and `withdrawn_id` the
    id of the withdrawn outcome (same ticket, target and cycle).
    """

    type: str
    ticket_id: str
    target: str
    policy: str
    deadline: datetime
    at: datetime
    channel: str
    kind: str
    category: str
    priority: str
    cycle: int = 0

    @property
    def id(self) -> str:
        """`{ticket_id}:{target}:{type}:{cycle}`, the same after a restart or a replay."""
        return f"{self.ticket_id}:{self.target}:{self.type}:{self.cycle}"

    @property
    def withdrawn_id(self) -> str | None:
        """The id of the outcome a withdrawal withdraws; None for other outcomes."""
        withdrawn = WITHDRAWS.get(self.type)
        return None if withdrawn is None else f"{self.ticket_id}:{self.target}:{withdrawn}:{self.cycle}"

    def to_data(self) -> dict[str, str]:
        """The `data` of the outcome's CloudEvent (contract section 3)."""
        data = {
            "ticket_id": self.ticket_id,
            "target": self.target,
            "policy": self.policy,
            "deadline": self.deadline.isoformat(),
            "channel": self.channel,
            "kind": self.kind,
            "category": self.category,
            "priority": self.priority,
        }
        withdrawn = self.withdrawn_id
        if withdrawn is not None:
            data["withdrawn_id"] = withdrawn
        return data


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """A target as of an instant: `met`, `breached`, `running` (clock running within the
    limit) or `undecided` (clock paused within the limit). `deadline` is None while paused."""

    target: str
    policy: str
    status: str
    elapsed: timedelta
    limit: timedelta
    deadline: datetime | None

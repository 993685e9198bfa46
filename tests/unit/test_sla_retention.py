"""When a closed ticket leaves the SLA table (`TAWASUL_CLOSED_RETENTION`), also after a restart."""

from __future__ import annotations

import pytest

from stream_processors.retention import RetentionSettingError, closed_retention_us
from stream_processors.sla_step import decode, encode, expires_at, live_event, next_at_of, next_due
from tawasul.domain.calendars import to_us
from tawasul.domain.policies import PolicyBook
from tests.unit.test_sla_step import book, ev  # noqa: F401  (the policy book fixture)

DAY_US = 86_400_000_000


def test_retention_setting() -> None:
    assert closed_retention_us({}) == 35 * DAY_US
    assert closed_retention_us({"TAWASUL_CLOSED_RETENTION": "2d"}) == 2 * DAY_US
    assert closed_retention_us({"TAWASUL_CLOSED_RETENTION": "90m"}) == 90 * 60_000_000
    assert closed_retention_us({"TAWASUL_CLOSED_RETENTION": "30"}) == 30_000_000
    assert closed_retention_us({"TAWASUL_CLOSED_RETENTION": "none"}) is None
    for bad in ("soon", "0", "-3s"):
        with pytest.raises(RetentionSettingError, match="TAWASUL_CLOSED_RETENTION"):
            closed_retention_us({"TAWASUL_CLOSED_RETENTION": bad})


def test_a_closed_ticket_expires_its_retention_after_closing(book: PolicyBook) -> None:  # noqa: F811
    stored = decode(None, "T-1")
    for event in (ev("ticket.opened", 0), ev("ticket.acknowledged", 5), ev("ticket.resolved", 20)):
        stored = live_event(stored, event, to_us(event.time), book).stored
    assert expires_at(stored, DAY_US) is None  # resolved, not closed
    assert next_at_of(encode(stored), DAY_US) == stored.next_at == next_due(stored, DAY_US)
    closing = ev("ticket.closed", 30)
    stored = live_event(stored, closing, to_us(closing.time), book).stored
    assert stored.next_at is None
    assert expires_at(stored, DAY_US) == to_us(closing.time) + DAY_US == next_due(stored, DAY_US)
    assert next_at_of(encode(stored), DAY_US) == to_us(closing.time) + DAY_US  # index rebuilt on recovery
    assert next_at_of(encode(stored)) is None and expires_at(stored, None) is None

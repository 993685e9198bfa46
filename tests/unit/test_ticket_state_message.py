"""The typed `tawasul.tickets.state` message: same bytes as the dict it replaces, schema, readers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from schemas.generate import SCHEMA_DIR
from schemas.ticket_state import (
    TICKET_STATE_SCHEMA_FILE,
    BadTicketState,
    TicketStateMessage,
    TicketTarget,
    decode_ticket_state,
    encode_ticket_state,
    state_as_dict,
    ticket_state_from,
)
from sinks.db.decoding import decode_ticket_state as sink_decode
from sinks.db.records import BadRecord, TicketState
from sinks.metrics_feed import MetricsFeed
from stream_processors.sla_step import Stored, decode, live_event
from stream_processors.ticket_state import build_ticket_state, encode_state, ticket_state
from tawasul.domain.calendars import to_us
from tawasul.domain.policies import PolicyBook
from tawasul.infra.metrics import Metrics
from tests.unit.test_sla_step import POLICIES, T0, ev

SCHEMA = Draft202012Validator(json.loads((SCHEMA_DIR / TICKET_STATE_SCHEMA_FILE).read_text(encoding="utf-8")))
texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
names = texts.filter(lambda s: s.strip() != "")
instants = st.datetimes(datetime(2025, 1, 1), datetime(2025, 12, 31, 23, 59, 59), timezones=st.just(UTC)).map(
    lambda d: d.isoformat()
)
targets = st.builds(
    TicketTarget,
    deadline=st.none() | instants,
    state=st.sampled_from(["running", "paused", "met", "breached"]),
    warned=st.booleans(),
    breached=st.booleans(),
)
messages = st.builds(
    TicketStateMessage,
    ticket_id=names,
    channel=names,
    kind=names,
    category=names,
    priority=names,
    department=st.none() | texts,
    status=st.sampled_from(["open", "resolved", "closed"]),
    policy=st.none() | texts,
    opened_at=st.none() | instants,
    resolved_at=st.none() | instants,
    closed_at=st.none() | instants,
    updated_at=st.none() | instants,
    version=st.integers(0, 2**31 - 1),
    targets=st.dictionaries(st.sampled_from(["first_response", "resolution"]), targets),
    policies_sha256=st.none() | st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)


def old_encoding(view: dict[str, Any]) -> bytes:
    """How `stream_processors.ticket_state.encode_state` wrote the message before the struct."""
    return json.dumps(view, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> PolicyBook:
    from tawasul.domain.policies import load_policies

    path = tmp_path_factory.mktemp("policies") / "p.yaml"
    path.write_text(POLICIES)
    return load_policies(path)


@settings(max_examples=300, deadline=None)
@given(messages)
def test_the_message_encodes_to_the_bytes_of_its_dict_and_decodes_back(message: TicketStateMessage) -> None:
    body = encode_ticket_state(message)
    assert body == old_encoding(state_as_dict(message)) == encode_ticket_state(state_as_dict(message))
    assert decode_ticket_state(body) == message
    assert ticket_state_from(json.loads(body)) == message
    assert SCHEMA.is_valid(json.loads(body))


def test_the_engine_builds_the_message_its_dict_view_and_the_sink_read_agree(book: PolicyBook) -> None:
    stored = Stored(decode(None, "T-1").sla)
    for event in (ev("ticket.opened", 0), ev("ticket.acknowledged", 2), ev("ticket.resolved", 70)):
        stored = live_event(stored, event, to_us(event.time), book).stored
    now = to_us(T0 + timedelta(minutes=71))
    message = build_ticket_state(stored, now, book)
    view = ticket_state(stored, now, book)
    assert message is not None and view is not None
    assert view == state_as_dict(message)
    assert list(view) == [  # the wire order of docs/architecture.md
        "ticket_id",
        "channel",
        "kind",
        "category",
        "priority",
        "department",
        "status",
        "policy",
        "opened_at",
        "resolved_at",
        "closed_at",
        "updated_at",
        "version",
        "targets",
        "policies_sha256",
    ]
    body = encode_state(message)
    assert body == encode_state(view) == old_encoding(view)
    SCHEMA.validate(json.loads(body))
    record = sink_decode(body)
    assert record == TicketState.from_dict(json.loads(body))
    assert record.status == "resolved" and record.version == 3 and record.policy == "fast"
    assert [t.target for t in record.targets] == ["first_response", "resolution"]
    assert record.targets[1].breached and record.resolved_at == T0 + timedelta(minutes=70)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"version": -1}, "version"),
        ({"version": 2**31}, "version"),
        ({"version": True}, "version"),
        ({"ticket_id": "  "}, "ticket_id"),
        ({"category": None}, "category"),
        ({"updated_at": "2025-03-04T09:00:00"}, "updated_at"),
        ({"opened_at": "yesterday"}, "opened_at"),
        ({"targets": {"resolution": {"state": "late"}}}, "targets[...].state"),
        ({"targets": {"resolution": {"state": "met", "deadline": "soon"}}}, "targets.resolution.deadline"),
        ({"targets": []}, "targets"),
    ],
)
def test_a_malformed_message_is_refused_naming_the_field_not_the_value(change: dict[str, Any], field: str) -> None:
    raw = {
        "ticket_id": "T-1",
        "channel": "crm",
        "kind": "request",
        "category": "x.y",
        "priority": "normal",
        "status": "open",
        "version": 1,
    }
    raw.update(change)
    with pytest.raises(BadTicketState) as caught:
        decode_ticket_state(json.dumps(raw).encode())
    assert f"ticket state: {field}" in str(caught.value)
    assert "lost" not in str(caught.value) and "late" not in str(caught.value) and "soon" not in str(caught.value)
    with pytest.raises(BadRecord, match=re.escape(f"ticket state: {field}")):
        sink_decode(json.dumps(raw).encode())


def test_the_metrics_feed_reads_the_message_its_json_and_the_sink_record_alike(book: PolicyBook) -> None:
    stored = Stored(decode(None, "T-1").sla)
    event = ev("ticket.opened", 0)
    stored = live_event(stored, event, to_us(event.time), book).stored
    message = build_ticket_state(stored, to_us(T0 + timedelta(minutes=6)), book)
    assert message is not None
    counts = []
    for given_as in (message, json.loads(encode_state(message)), sink_decode(encode_state(message))):
        feed = MetricsFeed(Metrics(), zero_breaches=False)
        if isinstance(given_as, TicketState):
            assert feed.observe_record(given_as)
        else:
            feed.observe_ticket_state(given_as)
        counts.append(feed.open_tickets())
    assert counts[0] == counts[1] == counts[2] == {("crm", "request", "normal", "on_track"): 1}

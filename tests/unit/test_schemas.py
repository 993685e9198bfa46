"""The event contract (CONTRACT.md section 2): valid and invalid events, table-driven."""

from __future__ import annotations

import copy
import json
import pickle
import uuid
from collections.abc import Callable
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

import schemas
from schemas import (
    CHANNELS,
    EVENT_TYPES,
    KINDS,
    PRIORITIES,
    Event,
    FieldError,
    InvalidEvent,
    decode_event,
    new_event,
    parse_event,
)
from schemas.examples import example_data, example_event

CONTRACT_TYPES = {
    "ticket.opened": schemas.TicketOpenedData,
    "ticket.acknowledged": schemas.TicketAcknowledgedData,
    "ticket.assigned": schemas.TicketAssignedData,
    "ticket.paused": schemas.TicketPausedData,
    "ticket.resumed": schemas.TicketResumedData,
    "ticket.priority_changed": schemas.TicketPriorityChangedData,
    "ticket.resolved": schemas.TicketResolvedData,
    "ticket.reopened": schemas.TicketReopenedData,
    "ticket.closed": schemas.TicketClosedData,
    "call.offered": schemas.CallOfferedData,
    "call.answered": schemas.CallAnsweredData,
    "call.abandoned": schemas.CallAbandonedData,
    "call.ended": schemas.CallEndedData,
    "visit.checked_in": schemas.VisitCheckedInData,
    "visit.called": schemas.VisitCalledData,
    "visit.completed": schemas.VisitCompletedData,
    "visit.no_show": schemas.VisitNoShowData,
    "survey.submitted": schemas.SurveySubmittedData,
    "sla.warning": schemas.SlaWarningData,
    "sla.breached": schemas.SlaBreachedData,
    "sla.met": schemas.SlaMetData,
    "sla.breach_withdrawn": schemas.SlaBreachWithdrawnData,
    "sla.warning_withdrawn": schemas.SlaWarningWithdrawnData,
    "kpi.snapshot": schemas.KpiSnapshotData,
}

# The smallest valid `data` of each type: only the required fields.
MINIMAL_DATA: dict[str, dict[str, Any]] = {
    "ticket.opened": {"channel": "crm", "kind": "request", "category": "mosque.cleaning", "priority": "normal"},
    "ticket.acknowledged": {},
    "ticket.assigned": {},
    "ticket.paused": {"reason": "waiting_on_customer"},
    "ticket.resumed": {},
    "ticket.priority_changed": {"priority": "urgent"},
    "ticket.resolved": {},
    "ticket.reopened": {},
    "ticket.closed": {},
    "call.offered": {"queue": "general"},
    "call.answered": {"queue": "general", "agent": "a-1"},
    "call.abandoned": {"queue": "general"},
    "call.ended": {},
    "visit.checked_in": {"centre": "main", "service": "fatwa"},
    "visit.called": {"centre": "main", "counter": "3"},
    "visit.completed": {"centre": "main"},
    "visit.no_show": {"centre": "main"},
    "survey.submitted": {"channel": "call", "score": 4},
    "sla.warning": {
        "ticket_id": "T-1",
        "target": "first_response",
        "policy": "crm-standard",
        "deadline": "2025-03-04T11:30:00+04:00",
        "channel": "crm",
        "kind": "request",
        "category": "mosque.cleaning",
        "priority": "normal",
    },
    "kpi.snapshot": {
        "figure": "tickets.open",
        "window": "today",
        "scope": {},
        "value": None,
        "as_of": "2025-03-04T10:00:00Z",
    },
}
MINIMAL_DATA["sla.breached"] = {**MINIMAL_DATA["sla.warning"], "target": "resolution"}
MINIMAL_DATA["sla.met"] = MINIMAL_DATA["sla.warning"]
MINIMAL_DATA["sla.breach_withdrawn"] = {**MINIMAL_DATA["sla.breached"], "withdrawn_id": "T-1:resolution:sla.breached:0"}
MINIMAL_DATA["sla.warning_withdrawn"] = {
    **MINIMAL_DATA["sla.warning"],
    "withdrawn_id": "T-1:first_response:sla.warning:0",
}


def envelope(event_type: str = "ticket.opened", data: Any = None, **attributes: Any) -> dict[str, Any]:
    """A raw valid event (without dataschema) of a type; attributes override."""
    raw: dict[str, Any] = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "/channels/crm",
        "type": event_type,
        "time": "2025-03-04T09:00:00+04:00",
        "subject": "T-1",
        "data": copy.deepcopy(MINIMAL_DATA[event_type]) if data is None else data,
    }
    raw.update(attributes)
    return raw


def reject(raw: object) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw)
    return caught.value


# ----------------------------------------------------------------------------- catalogue


def test_event_types_are_the_contract_types() -> None:
    assert EVENT_TYPES == frozenset(CONTRACT_TYPES)
    assert isinstance(EVENT_TYPES, frozenset)


def test_closed_value_sets_match_the_contract() -> None:
    assert set(CHANNELS) == {"call", "crm", "complaints_platform", "walk_in", "email", "web", "app", "social"}
    assert set(KINDS) == {"request", "complaint", "suggestion", "inquiry", "compliment", "facility_report"}
    assert list(PRIORITIES) == ["low", "normal", "high", "urgent"]
    assert set(schemas.LANGUAGES) == {"ar", "en"}
    assert set(schemas.SLA_TARGETS) == {"first_response", "resolution"}
    assert set(schemas.SURVEY_SCALES) == {3, 5}


# ----------------------------------------------------------------------------- valid events


@pytest.mark.parametrize("event_type", sorted(CONTRACT_TYPES))
def test_minimal_event_of_every_type_parses(event_type: str) -> None:
    raw = envelope(event_type)
    ev = parse_event(raw)
    assert type(ev.data) is CONTRACT_TYPES[event_type]
    assert (ev.type, ev.subject, ev.id, ev.source) == (event_type, "T-1", "evt-1", "/channels/crm")
    assert ev.time == datetime(2025, 3, 4, 5, 0, tzinfo=UTC)
    assert ev.time.utcoffset() == timedelta(hours=4)
    assert ev.dataschema is None and ev.schema_version == 1
    assert ev.to_dict() == raw


@pytest.mark.parametrize("event_type", sorted(CONTRACT_TYPES))
def test_full_example_of_every_type_round_trips(event_type: str) -> None:
    ev = example_event(event_type)
    assert ev.to_dict()["data"] == example_data(event_type) | (
        {"wrap_up_seconds": 35} if event_type == "call.ended" else {}
    )
    assert parse_event(json.loads(ev.to_json())) == ev
    assert decode_event(ev.to_json()) == ev


def test_typed_attribute_access() -> None:
    ev = parse_event(envelope("ticket.opened", example_data("ticket.opened")))
    data = ev.data
    assert isinstance(data, schemas.TicketOpenedData)
    assert data.priority == "urgent" and data.priority is schemas.Priority.URGENT
    assert data.channel == "complaints_platform"
    assert data.location is not None and data.location.mosque_id == "MSQ-0412"
    sla = parse_event(envelope("sla.breached")).data
    assert isinstance(sla, schemas.SlaBreachedData)
    assert sla.deadline == datetime(2025, 3, 4, 11, 30, tzinfo=timezone(timedelta(hours=4)))
    kpi = parse_event(envelope("kpi.snapshot")).data
    assert isinstance(kpi, schemas.KpiSnapshotData)
    assert kpi.value is None and kpi.count is None and kpi.scope == {}


@pytest.mark.parametrize(
    ("sent", "rendered"),
    [
        ("2025-03-04T09:00:00+04:00", "2025-03-04T09:00:00+04:00"),
        ("2025-03-04T05:00:00Z", "2025-03-04T05:00:00Z"),
        ("2025-03-04t05:00:00z", "2025-03-04T05:00:00Z"),
        ("2025-03-04T05:00:00+00:00", "2025-03-04T05:00:00Z"),
        ("2025-03-04T00:30:00-05:30", "2025-03-04T00:30:00-05:30"),
        ("2025-03-04T09:00:00.25+04:00", "2025-03-04T09:00:00.250000+04:00"),
        ("2025-03-04T09:00:00.123456789+04:00", "2025-03-04T09:00:00.123456+04:00"),
    ],
)
def test_time_keeps_its_offset(sent: str, rendered: str) -> None:
    ev = parse_event(envelope(time=sent))
    assert ev.to_dict()["time"] == rendered
    assert parse_event(ev.to_dict()) == ev


@pytest.mark.parametrize(
    "source", ["/channels/pbx/main", "urn:tawasul:crm", "https://crm.example/api?x=1#a", "crm", "./a%20b"]
)
def test_source_accepts_uri_references(source: str) -> None:
    assert parse_event(envelope(source=source)).source == source


def test_optional_attributes_and_extensions_are_kept() -> None:
    raw = envelope(
        datacontenttype="application/json",
        dataschema="urn:tawasul:schema:ticket.opened:1",
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        retries=2,
        replayed=True,
    )
    ev = parse_event(raw)
    assert ev.datacontenttype == "application/json"
    assert ev.schema_version == 1
    assert dict(ev.extensions) == {
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "retries": 2,
        "replayed": True,
    }
    assert ev.to_dict() == raw


def test_unknown_data_fields_are_kept_and_round_trip() -> None:
    data = {**MINIMAL_DATA["ticket.opened"], "sub_category": "split_unit", "tags": ["a", {"b": None}]}
    data["location"] = {"mosque_id": "M-1", "floor": 2}
    ev = parse_event(envelope(data=data))
    assert ev.data.model_extra == {"sub_category": "split_unit", "tags": ["a", {"b": None}]}
    assert ev.to_dict()["data"] == data
    assert decode_event(ev.to_json()) == ev


def test_absent_optional_fields_stay_absent_and_explicit_null_is_kept() -> None:
    ev = parse_event(envelope("call.ended", {"queue": None}))
    assert ev.to_dict()["data"] == {"queue": None}
    assert "agent" not in ev.to_dict()["data"]


def test_to_json_is_compact_utf8() -> None:
    ev = parse_event(envelope("survey.submitted", {"channel": "crm", "score": 5, "comment": "شكرا جزيلا"}))
    body = ev.to_json()
    assert isinstance(body, bytes)
    assert "شكرا جزيلا".encode() in body
    assert b", " not in body and b": " not in body
    assert json.loads(body) == ev.to_dict()


def test_events_pickle() -> None:
    ev = parse_event(envelope(traceparent="00-ab-cd-01", data={**MINIMAL_DATA["ticket.opened"], "x": [1]}))
    copy_ = pickle.loads(pickle.dumps(ev))
    assert copy_ == ev and copy_.to_json() == ev.to_json()
    assert copy.deepcopy(ev) == ev
    assert isinstance(copy_.data, schemas.TicketOpenedData)


def test_events_are_frozen_and_hashable() -> None:
    ev = parse_event(envelope())
    with pytest.raises(ValidationError):
        ev.subject = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ev.data.priority = "low"  # type: ignore[misc]
    assert ev == parse_event(envelope())
    assert hash(ev) == hash(parse_event(envelope()))
    assert ev != parse_event(envelope(subject="T-2"))


# ----------------------------------------------------------------------------- survey rule


@pytest.mark.parametrize(
    ("data", "satisfied"),
    [
        ({"score": 5}, True),
        ({"score": 4}, True),
        ({"score": 3}, False),
        ({"score": 1}, False),
        ({"score": 5, "scale": 5}, True),
        ({"score": 3, "scale": 5}, False),
        ({"score": 3, "scale": 3}, True),
        ({"score": 2, "scale": 3}, False),
        ({"score": 1, "scale": 3}, False),
    ],
)
def test_survey_satisfaction(data: dict[str, Any], satisfied: bool) -> None:
    ev = parse_event(envelope("survey.submitted", {"channel": "crm", **data}))
    assert isinstance(ev.data, schemas.SurveySubmittedData)
    assert ev.data.satisfied is satisfied
    assert ev.data.scale == data.get("scale", 5)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"score": 4, "scale": 3}, "must be between 1 and 3"),
        ({"score": 6}, "must be between 1 and 5"),
        ({"score": 0, "scale": 3}, "must be between 1 and 3"),
        ({"score": -1}, "must be between 1 and 5"),
        ({"score": 4.0}, "must be an integer"),
        ({"score": "4"}, "must be an integer"),
        ({"score": True}, "must be an integer"),
    ],
)
def test_survey_score_outside_its_scale_is_rejected(data: dict[str, Any], message: str) -> None:
    exc = reject(envelope("survey.submitted", {"channel": "crm", **data}))
    assert exc.errors == (FieldError("data.score", message),)


def test_survey_scale_must_be_3_or_5() -> None:
    exc = reject(envelope("survey.submitted", {"channel": "crm", "score": 2, "scale": 4}))
    assert exc.errors == (FieldError("data.scale", "must be one of 3, 5"),)


# ----------------------------------------------------------------------------- invalid events


def _without(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw.pop(name)


def _set(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw.__setitem__(name, value)


def _set_data(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw["data"].__setitem__(name, value)


def _drop_data(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw["data"].pop(name)


INVALID: list[tuple[str, str, Callable[[dict[str, Any]], None], str, str]] = [
    # (case, event type, mutation, field, message)
    *[
        (f"missing {name}", "ticket.opened", _without(name), name, "required")
        for name in ("specversion", "id", "source", "type", "time", "subject", "data")
    ],
    ("specversion 0.3", "ticket.opened", _set("specversion", "0.3"), "specversion", "must be 1.0"),
    ("specversion number", "ticket.opened", _set("specversion", 1.0), "specversion", "must be 1.0"),
    ("empty id", "ticket.opened", _set("id", ""), "id", "must not be empty or blank"),
    ("id number", "ticket.opened", _set("id", 7), "id", "must be a string"),
    (
        "empty subject",
        "ticket.opened",
        _set("subject", ""),
        "subject",
        "must not be empty or blank",
    ),
    (
        "blank subject",
        "call.offered",
        _set("subject", "  \t"),
        "subject",
        "must not be empty or blank",
    ),
    ("subject null", "call.offered", _set("subject", None), "subject", "must be a string"),
    ("empty source", "ticket.opened", _set("source", ""), "source", "must not be empty"),
    (
        "source with space",
        "ticket.opened",
        _set("source", "/pbx main"),
        "source",
        "must be a URI-reference",
    ),
    (
        "source bad scheme",
        "ticket.opened",
        _set("source", "1x:y"),
        "source",
        "must be a URI-reference",
    ),
    ("unknown type", "ticket.opened", _set("type", "ticket.deleted"), "type", "unknown event type"),
    ("type number", "ticket.opened", _set("type", 3), "type", "must be a string"),
    (
        "time without offset",
        "ticket.opened",
        _set("time", "2025-03-04T09:00:00"),
        "time",
        "has no UTC offset",
    ),
    (
        "time with space, no offset",
        "call.offered",
        _set("time", "2025-03-04 09:00"),
        "time",
        "has no UTC offset",
    ),
    (
        "time a date",
        "ticket.opened",
        _set("time", "2025-03-04"),
        "time",
        "must be an RFC 3339 timestamp",
    ),
    (
        "time epoch",
        "ticket.opened",
        _set("time", 1741064400),
        "time",
        "must be an RFC 3339 timestamp",
    ),
    (
        "time 30 Feb",
        "ticket.opened",
        _set("time", "2025-02-30T09:00:00Z"),
        "time",
        "not a valid calendar date",
    ),
    (
        "time words",
        "ticket.opened",
        _set("time", "yesterday"),
        "time",
        "must be an RFC 3339 timestamp",
    ),
    (
        "content type",
        "ticket.opened",
        _set("datacontenttype", "text/xml"),
        "datacontenttype",
        "must be application/json",
    ),
    (
        "dataschema v2",
        "ticket.opened",
        _set("dataschema", "urn:tawasul:schema:ticket.opened:2"),
        "dataschema",
        "unknown version 2 of ticket.opened",
    ),
    (
        "dataschema other type",
        "ticket.opened",
        _set("dataschema", "urn:tawasul:schema:ticket.closed:1"),
        "dataschema",
        "names ticket.closed",
    ),
    (
        "dataschema foreign",
        "ticket.opened",
        _set("dataschema", "https://example.org/s.json"),
        "dataschema",
        "must be urn:tawasul:schema",
    ),
    (
        "extension upper case",
        "ticket.opened",
        _set("TraceParent", "x"),
        "TraceParent",
        "extension names are lowercase",
    ),
    (
        "extension object",
        "ticket.opened",
        _set("trace", {"a": 1}),
        "trace",
        "extension value must be",
    ),
    ("extension float", "ticket.opened", _set("weight", 1.5), "weight", "extension value must be"),
    ("extension 64-bit", "ticket.opened", _set("big", 2**40), "big", "extension value must be"),
    (
        "binary data",
        "ticket.opened",
        _set("data_base64", "AAAA"),
        "data_base64",
        "binary data is not accepted",
    ),
    ("data array", "ticket.acknowledged", _set("data", []), "data", "must be a JSON object"),
    ("data null", "ticket.closed", _set("data", None), "data", "must be a JSON object"),
    (
        "wrong priority",
        "ticket.opened",
        _set_data("priority", "critical"),
        "data.priority",
        "must be one of low, normal, high, urgent",
    ),
    (
        "wrong channel",
        "ticket.opened",
        _set_data("channel", "fax"),
        "data.channel",
        "must be one of call, crm, complaints_platform",
    ),
    (
        "wrong kind",
        "ticket.opened",
        _set_data("kind", "praise"),
        "data.kind",
        "must be one of request, complaint",
    ),
    ("missing category", "ticket.opened", _drop_data("category"), "data.category", "required"),
    (
        "empty category",
        "ticket.opened",
        _set_data("category", ""),
        "data.category",
        "must not be empty or blank",
    ),
    (
        "location string",
        "ticket.opened",
        _set_data("location", "Deira"),
        "data.location",
        "must be a JSON object",
    ),
    (
        "mosque id number",
        "ticket.opened",
        _set_data("location", {"mosque_id": 12}),
        "data.location.mosque_id",
        "must be a string",
    ),
    ("pause without reason", "ticket.paused", _drop_data("reason"), "data.reason", "required"),
    (
        "priority change none",
        "ticket.priority_changed",
        _set_data("priority", None),
        "data.priority",
        "must be one of",
    ),
    ("answered without agent", "call.answered", _drop_data("agent"), "data.agent", "required"),
    (
        "language fr",
        "call.offered",
        _set_data("language", "fr"),
        "data.language",
        "must be one of ar, en",
    ),
    (
        "negative wrap-up",
        "call.ended",
        _set_data("wrap_up_seconds", -3),
        "data.wrap_up_seconds",
        "must be at least 0",
    ),
    (
        "wrap-up text",
        "call.ended",
        _set_data("wrap_up_seconds", "30"),
        "data.wrap_up_seconds",
        "must be a number",
    ),
    (
        "wrap-up infinite",
        "call.ended",
        _set_data("wrap_up_seconds", float("inf")),
        "data.wrap_up_seconds",
        "must be a finite number",
    ),
    ("visit without centre", "visit.completed", _drop_data("centre"), "data.centre", "required"),
    ("counter number", "visit.called", _set_data("counter", 3), "data.counter", "must be a string"),
    (
        "survey channel",
        "survey.submitted",
        _set_data("channel", "pigeon"),
        "data.channel",
        "must be one of",
    ),
    ("survey without score", "survey.submitted", _drop_data("score"), "data.score", "required"),
    (
        "sla target",
        "sla.breached",
        _set_data("target", "closure"),
        "data.target",
        "must be one of first_response, resolution",
    ),
    (
        "sla deadline no offset",
        "sla.met",
        _set_data("deadline", "2025-03-04T11:30:00"),
        "data.deadline",
        "has no UTC offset",
    ),
    ("sla without policy", "sla.warning", _drop_data("policy"), "data.policy", "required"),
    (
        "withdrawal without the withdrawn id",
        "sla.breach_withdrawn",
        _drop_data("withdrawn_id"),
        "data.withdrawn_id",
        "required",
    ),
    (
        "kpi value text",
        "kpi.snapshot",
        _set_data("value", "high"),
        "data.value",
        "must be a number",
    ),
    ("kpi value missing", "kpi.snapshot", _drop_data("value"), "data.value", "required"),
    (
        "kpi scope value",
        "kpi.snapshot",
        _set_data("scope", {"channel": 1}),
        "data.scope.channel",
        "must be a string",
    ),
    (
        "kpi negative count",
        "kpi.snapshot",
        _set_data("count", -1),
        "data.count",
        "must be at least 0",
    ),
    ("kpi as_of missing", "kpi.snapshot", _drop_data("as_of"), "data.as_of", "required"),
    (
        "unknown data field not JSON",
        "ticket.closed",
        _set_data("when", datetime(2025, 1, 1)),
        "data.when",
        "must be a JSON value",
    ),
]


@pytest.mark.parametrize(
    ("event_type", "mutate", "field", "message"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_event_is_rejected_naming_the_field(
    event_type: str, mutate: Callable[[dict[str, Any]], None], field: str, message: str
) -> None:
    raw = envelope(event_type)
    mutate(raw)
    exc = reject(raw)
    assert [error.field for error in exc.errors] == [field], str(exc)
    assert message in exc.errors[0].message
    assert str(exc).startswith(f"{field}: ")


def test_error_string_for_a_wrong_enum() -> None:
    raw = envelope()
    raw["data"]["priority"] = "critical"
    assert str(reject(raw)) == "data.priority: must be one of low, normal, high, urgent"


def test_every_broken_field_is_reported() -> None:
    raw = envelope(time="2025-03-04T09:00:00", subject="")
    del raw["source"]
    raw["data"]["kind"] = "praise"
    raw["X-Trace"] = "1"
    exc = reject(raw)
    assert {error.field for error in exc.errors} == {"time", "subject", "source", "data.kind", "X-Trace"}
    assert str(exc).count("; ") == 4


def test_messages_never_echo_field_values() -> None:
    raw = envelope("survey.submitted", {"channel": "crm", "score": "secret-person-name"})
    raw["subject"] = 12345
    assert "secret-person-name" not in str(reject(raw))


@pytest.mark.parametrize("raw", [[], "event", 42, None, True, [envelope()]])
def test_not_an_object_is_rejected(raw: object) -> None:
    exc = reject(raw)
    assert exc.errors[0].field == "event"
    assert exc.errors[0].message.startswith("must be a JSON object")


# ----------------------------------------------------------------------------- bytes


def _body(**attributes: Any) -> bytes:
    return json.dumps(envelope(**attributes), ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("value", "max_bytes", "message"),
    [
        (b"\xff\xfe{}", 1024, "not valid UTF-8"),
        (_body(subject="Z\u00fcrich").replace("\u00fc".encode(), b"\xfc"), 1024, "not valid UTF-8"),
        (b"", 1024, "not valid JSON"),
        (b"{'id': 1}", 1024, "not valid JSON"),
        (b'{"id": "1",}', 1024, "not valid JSON"),
        (b'{"id": NaN}', 1024, "not valid JSON"),
        (b"[1, 2]", 1024, "must be a JSON object, not an array"),
        (b'"ticket.opened"', 1024, "must be a JSON object, not a string"),
        (b"null", 1024, "must be a JSON object, not null"),
        (_body(), 100, "too large"),
    ],
)
def test_decode_rejects_bad_bytes(value: bytes, max_bytes: int, message: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_event(value, max_bytes=max_bytes)
    assert caught.value.errors[0].field == "event"
    assert message in caught.value.errors[0].message


def test_decode_limit_is_256_kib_by_default() -> None:
    padding = "x" * (256 * 1024)
    with pytest.raises(InvalidEvent, match="too large"):
        decode_event(_body(data={**MINIMAL_DATA["ticket.opened"], "note": padding}))
    small = _body(data={**MINIMAL_DATA["ticket.opened"], "note": "x" * 1000})
    assert decode_event(small).data.model_extra == {"note": "x" * 1000}


def test_decode_accepts_bytearray_and_rejects_none() -> None:
    assert decode_event(bytearray(_body())) == parse_event(envelope())
    with pytest.raises(InvalidEvent, match="must be UTF-8 JSON bytes"):
        decode_event(None)  # type: ignore[arg-type]


def test_decode_reports_field_errors_of_valid_json() -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_event(_body(time="2025-03-04T09:00:00"))
    assert [e.field for e in caught.value.errors] == ["time"]


# ----------------------------------------------------------------------------- new_event


def test_new_event_fills_id_version_and_content_type() -> None:
    ev = new_event("call.offered", "C-1", "2025-03-04T09:00:00+04:00", {"queue": "general"}, "/channels/pbx/main")
    assert uuid.UUID(ev.id).version == 4
    assert ev.dataschema == "urn:tawasul:schema:call.offered:1"
    assert ev.schema_version == 1
    assert ev.datacontenttype == "application/json"
    assert ev.specversion == "1.0"
    other = new_event("call.offered", "C-1", "2025-03-04T09:00:00+04:00", {"queue": "general"}, "/x")
    assert other.id != ev.id


def test_new_event_takes_aware_datetimes_and_typed_data() -> None:
    when = datetime(2025, 3, 4, 9, 0, tzinfo=ZoneInfo("Asia/Dubai"))
    data = schemas.TicketPriorityChangedData(priority=schemas.Priority.HIGH)
    ev = new_event(schemas.EventType.TICKET_PRIORITY_CHANGED, "T-9", when, data, "/channels/crm", id="x-1")
    assert ev.to_dict()["time"] == "2025-03-04T09:00:00+04:00"
    assert ev.to_dict()["type"] == "ticket.priority_changed"
    assert ev.to_dict()["data"] == {"priority": "high"}
    assert json.loads(ev.to_json())["type"] == "ticket.priority_changed"
    assert ev.id == "x-1"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"time": datetime(2025, 3, 4, 9, 0)}, "time"),
        ({"time": datetime(1900, 1, 1, tzinfo=ZoneInfo("Asia/Dubai"))}, "time"),  # LMT +03:41:12
        ({"type": "ticket.lost"}, "type"),
        ({"subject": ""}, "subject"),
        ({"source": ""}, "source"),
        ({"data": {"queue": ""}}, "data.queue"),
        ({"id": ""}, "id"),
    ],
)
def test_new_event_validates(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {
        "type": "call.abandoned",
        "subject": "C-1",
        "time": "2025-03-04T09:00:00+04:00",
        "data": {"queue": "general"},
        "source": "/channels/pbx/main",
    }
    args.update(kwargs)
    with pytest.raises(InvalidEvent) as caught:
        new_event(**args)
    assert [e.field for e in caught.value.errors] == [field]


# ----------------------------------------------------------------------------- errors, Event


def test_field_error_and_invalid_event_types() -> None:
    error = FieldError("data.score", "must be between 1 and 3")
    assert str(error) == "data.score: must be between 1 and 3"
    with pytest.raises(FrozenInstanceError):
        error.field = "x"  # type: ignore[misc]
    exc = InvalidEvent([error, FieldError("time", "has no UTC offset")])
    assert isinstance(exc, Exception)
    assert exc.errors == (error, FieldError("time", "has no UTC offset"))
    assert str(exc) == "data.score: must be between 1 and 3; time: has no UTC offset"
    copy_ = pickle.loads(pickle.dumps(exc))
    assert copy_.errors == exc.errors and str(copy_) == str(exc)


def test_event_constructed_directly_must_match_its_type() -> None:
    ev = parse_event(envelope())
    assert Event(**{**ev.__dict__, "extensions": {}}) == ev
    with pytest.raises(ValidationError, match="must be a TicketClosedData"):
        Event(**{**ev.__dict__, "type": "ticket.closed"})
    with pytest.raises(ValidationError, match="extension names are lowercase"):
        Event(**{**ev.__dict__, "extensions": {"Bad": "x"}})


def test_data_model_lookup() -> None:
    assert schemas.data_model("ticket.opened") is schemas.TicketOpenedData
    assert schemas.data_model("ticket.opened", 1) is schemas.TicketOpenedData
    assert schemas.dataschema_uri("sla.met") == "urn:tawasul:schema:sla.met:1"
    assert schemas.parse_dataschema("urn:tawasul:schema:visit.no_show:12") == ("visit.no_show", 12)
    assert schemas.parse_dataschema("urn:tawasul:schema:visit.no_show") is None
    with pytest.raises(KeyError):
        schemas.data_model("ticket.opened", 9)

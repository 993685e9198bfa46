"""Fast accept, detailed reject: the msgspec path accepts exactly what pydantic accepts.

The reference is the pydantic path alone (`explain_event`, `explain_decode`: today's rules);
generated events, valid and mutated, must get from the fast path the same `Event` (same values,
same set fields, same JSON) or a refusal exactly when the reference refuses, and from the public
API (`parse_event`, `decode_event`) the same event or the same reasons.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas import EVENT_TYPES, Event, InvalidEvent, Location, decode_event, parse_event
from schemas.examples import example_event
from schemas.fast import check_event, fast_decode, fast_parse
from schemas.fast_types import FAST_TYPES
from schemas.parsing import explain_decode, explain_event
from tests.unit.test_schemas_properties import (
    ANY_JSON,
    KNOWN_ATTRIBUTES,
    SPEC,
    WRONG_STRATEGIES,
    raw_events,
)

EXAMPLES = int(os.environ.get("TAWASUL_PROPERTY_EXAMPLES", "250"))
"""More locally (e.g. 5000) for a deeper search; CI keeps the default."""
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BLANKS = st.text(alphabet="\t\n\x0b\x0c\r \x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u200a\u2028\u202f\u3000", max_size=4)
BOUNDARY_TIMES = st.sampled_from(
    [
        "1999-12-31T23:59:59.999999Z",
        "2000-01-01T00:00:00Z",
        "1999-12-31T20:30:00-03:30",
        "1999-12-31T20:29:59-03:30",
        "2000-01-01T03:00:00+03:01",
        "2099-12-31T23:59:59.999999Z",
        "2100-01-01T00:00:00Z",
        "2100-01-01T00:30:00+00:31",
        "2100-01-01T00:30:00+00:30",
        "2099-12-31T20:00:00-04:00",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2025-02-29T10:00:00Z",
        "2025-03-01 10:00:00Z",
        "2025-03-01T10:00:00+0400",
        "2025-03-01T10:00:00.1234567+04:00",
        "2025-03-01T10:00Z",
        "2025-03-01T10:00:60Z",
    ]
)
NOT_ENUMS = st.sampled_from(["CALL", "Crm", "", " urgent", "urgent ", "first-response", "fr", "AR"]) | st.text(
    max_size=6
)
SCALES = st.sampled_from([3, 5, 3.0, 5.0, 4, True, "5", None, 3.5])
SCORES = st.sampled_from([1, 2, 3, 4, 5, 0, 6, 3.0, True, "4", None, 2**70])
DATASCHEMAS = st.sampled_from(
    ["urn:tawasul:schema:{t}:1", "urn:tawasul:schema:{t}:2", "urn:tawasul:schema:ticket.opened:1", "urn:x:{t}", ""]
)


def outcome(call: Any, value: Any) -> Event | tuple[str, ...]:
    """The event, or the reasons (`field: message`) of the refusal."""
    try:
        return call(value)
    except InvalidEvent as exc:
        return tuple(str(error) for error in exc.errors)


def same_event(fast: Event, reference: Event) -> None:
    assert fast == reference
    assert fast.to_json() == reference.to_json()
    assert fast.__pydantic_fields_set__ == reference.__pydantic_fields_set__
    assert fast.data.__pydantic_fields_set__ == reference.data.__pydantic_fields_set__
    assert fast.data.__pydantic_extra__ == reference.data.__pydantic_extra__
    assert fast.time.utcoffset() == reference.time.utcoffset()
    location = getattr(reference.data, "location", None)
    if isinstance(location, Location):
        assert fast.data.location.__pydantic_fields_set__ == location.__pydantic_fields_set__  # type: ignore[attr-defined]
        assert fast.data.location.__pydantic_extra__ == location.__pydantic_extra__  # type: ignore[attr-defined]


def check_agreement(raw: dict[str, Any]) -> None:
    """Fast path and reference agree on `raw`, as a mapping and as JSON bytes."""
    reference = outcome(explain_event, raw)
    fast = fast_parse(raw)
    if isinstance(reference, Event):
        assert fast is not None, f"fast path refused a valid event: {raw!r}"
        same_event(fast, reference)
    else:
        assert fast is None, f"fast path accepted what the contract refuses ({reference}): {raw!r}"
    public = outcome(parse_event, raw)
    assert public == reference
    try:
        body = json.dumps(raw, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        return  # not JSON-serialisable (a datetime given to parse_event): mappings only
    reference_bytes = outcome(explain_decode, body)
    assert outcome(decode_event, body) == reference_bytes
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return
    fast_bytes = fast_decode(text)
    if isinstance(reference_bytes, Event):
        assert fast_bytes is not None
        same_event(fast_bytes, reference_bytes)
    else:
        assert fast_bytes is None
    checked = check_event(text)
    if checked is None:
        assert fast_bytes is None or has_extras(fast_bytes)
    else:
        assert fast_bytes is not None and not has_extras(fast_bytes)
        assert (checked.type, checked.id, checked.source, checked.subject) == (
            fast_bytes.type,
            fast_bytes.id,
            fast_bytes.source,
            fast_bytes.subject,
        )
        assert checked.time == fast_bytes.time and checked.time.utcoffset() == fast_bytes.time.utcoffset()
        assert checked.data == fast_bytes.data.model_dump(exclude_unset=True)


def has_extras(event: Event) -> bool:
    """Extension attributes or unknown `data` fields (which `check_event` leaves to the full path)."""
    location = getattr(event.data, "location", None)
    nested = isinstance(location, Location) and bool(location.__pydantic_extra__)
    return bool(event.extensions) or bool(event.data.__pydantic_extra__) or nested


def test_every_contract_type_has_a_fast_twin() -> None:
    assert set(FAST_TYPES) == set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_example_is_accepted_by_the_fast_path_unchanged(event_type: str) -> None:
    event = example_event(event_type)
    fast = fast_decode(event.to_json().decode())
    assert fast is not None
    same_event(fast, explain_decode(event.to_json()))


@PROPERTY
@given(raw_events())
def test_valid_events_are_accepted_by_the_fast_path_as_the_contract_reads_them(raw: dict[str, Any]) -> None:
    assert fast_parse(raw) is not None
    check_agreement(raw)


@pytest.mark.parametrize("where", ["subject", "id", "data"])
def test_a_lone_surrogate_in_a_decoded_object_is_refused_with_the_contracts_reason(where: str) -> None:
    """json.loads turns the escape \\ud800 into a lone surrogate, which UTF-8 cannot carry."""
    raw = json.loads(example_event("call.offered").to_json())
    if where == "data":
        raw["data"]["queue"] = "general\ud800"
    else:
        raw[where] = raw[where] + "\ud800"
    assert fast_parse(raw) is None
    with pytest.raises(InvalidEvent) as fast:
        parse_event(raw)
    with pytest.raises(InvalidEvent) as detailed:
        explain_event(raw)
    assert fast.value.errors == detailed.value.errors and fast.value.errors


@PROPERTY
@given(raw_events(), st.data())
def test_a_mutated_field_gets_the_same_verdict_and_reasons(raw: dict[str, Any], data: st.DataObject) -> None:
    required, optional = SPEC[raw["type"]]
    kinds = {**required, **optional}
    name = data.draw(st.sampled_from([*kinds, "score", "scale", "location"]))
    mutation = data.draw(st.sampled_from(["wrong", "any", "drop", "blank", "enum", "null", "big"]))
    target = raw["data"]
    if mutation == "wrong" and name in kinds:
        target[name] = data.draw(WRONG_STRATEGIES[kinds[name]])
    elif mutation == "any":
        target[name] = data.draw(ANY_JSON)
    elif mutation == "drop":
        target.pop(name, None)
    elif mutation == "blank":
        target[name] = data.draw(BLANKS)
    elif mutation == "enum":
        target[name] = data.draw(NOT_ENUMS)
    elif mutation == "null":
        target[name] = None
    elif mutation == "big":
        target[name] = data.draw(st.sampled_from([2**63 - 1, 2**64, -(2**63), 10**30, 1e308, 0.1]))
    check_agreement(raw)


@PROPERTY
@given(raw_events(), st.data())
def test_a_mutated_attribute_gets_the_same_verdict_and_reasons(raw: dict[str, Any], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from([*KNOWN_ATTRIBUTES, "extension", "data_base64", "Upper", "x1"]))
    mutation = data.draw(st.sampled_from(["any", "drop", "blank", "time", "dataschema"]))
    if mutation == "any":
        raw[name] = data.draw(st.none() | ANY_JSON)
    elif mutation == "drop":
        raw.pop(name, None)
    elif mutation == "blank":
        raw[name] = data.draw(BLANKS)
    elif mutation == "time":
        raw["time"] = data.draw(BOUNDARY_TIMES)
    else:
        raw["dataschema"] = data.draw(DATASCHEMAS).format(t=raw["type"])
    check_agreement(raw)


@PROPERTY
@given(raw_events(), SCALES, SCORES, st.booleans())
def test_survey_scores_get_the_same_verdict(raw: dict[str, Any], scale: Any, score: Any, with_scale: bool) -> None:
    raw["type"] = "survey.submitted"
    raw.pop("dataschema", None)
    raw["data"] = {"channel": "crm", "score": score, **({"scale": scale} if with_scale else {})}
    check_agreement(raw)


@PROPERTY
@given(raw_events(), BOUNDARY_TIMES)
def test_times_in_data_at_the_bounds_get_the_same_verdict(raw: dict[str, Any], time: str) -> None:
    raw["type"] = "kpi.snapshot"
    raw.pop("dataschema", None)
    raw["data"] = {"figure": "f", "window": "15m", "scope": {}, "value": None, "as_of": time}
    check_agreement(raw)


@PROPERTY
@given(raw_events(), st.data())
@example(raw=json.loads(example_event("call.ended").to_json()), data=None)
def test_damaged_bytes_get_the_same_verdict_and_reasons(raw: dict[str, Any], data: st.DataObject | None) -> None:
    body = json.dumps(raw, ensure_ascii=False).encode()
    damage = "none" if data is None else data.draw(st.sampled_from(["cut", "byte", "bom", "dup", "nan", "size"]))
    limit = 256 * 1024
    if damage == "cut" and data is not None:
        body = body[: data.draw(st.integers(0, len(body) - 1))]
    elif damage == "byte" and data is not None:
        at = data.draw(st.integers(0, len(body) - 1))
        body = body[:at] + data.draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\\"])) + body[at:]
    elif damage == "bom":
        body = b"\xef\xbb\xbf" + body
    elif damage == "dup":
        body = body[:-1] + b',"id":"again","time":"2025-01-01T00:00:00Z"}'
    elif damage == "nan":
        body = body.replace(b'"specversion"', b'"nan":NaN,"specversion"', 1)
    elif damage == "size":
        limit = len(body) - 1
    reference = outcome(lambda b: explain_decode(b, limit), body)
    assert outcome(lambda b: decode_event(b, limit), body) == reference
    if damage == "size":
        assert reference == (f"event: too large: {len(body)} bytes (limit {limit})",)


def test_large_integers_other_versions_and_datetimes_are_read_as_before() -> None:
    """Integers over 64 bits stay on the fast path; another schema version is left to pydantic."""
    raw = json.loads(example_event("kpi.snapshot").to_json())
    raw["data"]["count"] = 2**70
    assert parse_event(raw).data.count == 2**70  # type: ignore[attr-defined]
    body = json.dumps(raw).encode()
    assert decode_event(body) == explain_decode(body)
    raw["dataschema"] = "urn:tawasul:schema:kpi.snapshot:2"
    assert fast_parse(raw) is None
    assert outcome(parse_event, raw) == outcome(explain_event, raw)
    raw["data"]["count"] = 3
    del raw["dataschema"]
    raw["time"] = datetime.fromisoformat("2025-03-04T09:12:30+04:00")  # new_event takes a datetime
    assert parse_event(raw) == explain_event(raw)

"""Property tests of the event contract: generated events round-trip, mutated ones fail."""

from __future__ import annotations

import json
import string
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import InvalidEvent, decode_event, parse_event
from schemas.parsing import _explained, _valid_event

# ----------------------------------------------------------------- field kinds (the contract)

NAME, TEXT, CHANNEL, KIND, PRIORITY = "name", "text", "channel", "kind", "priority"
LANGUAGE, TARGET, SECONDS, NUMBER_OR_NULL = "language", "target", "seconds", "number?"
COUNT, TIMESTAMP, SCOPE, LOCATION = "count", "timestamp", "scope", "location"

# type -> (required fields, optional fields); each field -> its kind
SPEC: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "ticket.opened": (
        {"channel": CHANNEL, "kind": KIND, "category": NAME, "priority": PRIORITY},
        {"department": NAME, "location": LOCATION, "customer_ref": NAME},
    ),
    "ticket.acknowledged": ({}, {}),
    "ticket.assigned": ({}, {"team": NAME, "agent": NAME}),
    "ticket.paused": ({"reason": NAME}, {}),
    "ticket.resumed": ({}, {}),
    "ticket.priority_changed": ({"priority": PRIORITY}, {}),
    "ticket.resolved": ({}, {"resolution": TEXT}),
    "ticket.reopened": ({}, {}),
    "ticket.closed": ({}, {}),
    "call.offered": ({"queue": NAME}, {"language": LANGUAGE, "caller_ref": NAME}),
    "call.answered": ({"queue": NAME, "agent": NAME}, {}),
    "call.abandoned": ({"queue": NAME}, {}),
    "call.ended": ({}, {"queue": NAME, "agent": NAME, "wrap_up_seconds": SECONDS}),
    "visit.checked_in": ({"centre": NAME, "service": NAME}, {}),
    "visit.called": ({"centre": NAME, "counter": NAME}, {}),
    "visit.completed": ({"centre": NAME}, {}),
    "visit.no_show": ({"centre": NAME}, {}),
    "survey.submitted": ({"channel": CHANNEL}, {"comment": TEXT}),  # score/scale drawn together
    "kpi.snapshot": (
        {"figure": NAME, "window": NAME, "scope": SCOPE, "value": NUMBER_OR_NULL, "as_of": TIMESTAMP},
        {"count": COUNT},
    ),
}
_SLA = {
    "ticket_id": NAME,
    "target": TARGET,
    "policy": NAME,
    "deadline": TIMESTAMP,
    "channel": CHANNEL,
    "kind": KIND,
    "category": NAME,
    "priority": PRIORITY,
}
for _sla_type in ("sla.warning", "sla.breached", "sla.met"):
    SPEC[_sla_type] = (_SLA, {})
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type", "time", "subject", "data")
KNOWN_ATTRIBUTES = {*REQUIRED_ATTRIBUTES, "datacontenttype", "dataschema"}

# ----------------------------------------------------------------------------- strategies

names = st.text(min_size=1, max_size=20).filter(lambda s: not s.isspace() and s.strip() != "")
texts = st.text(max_size=30)
offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
datetimes = st.datetimes(
    min_value=datetime(2000, 1, 2),
    max_value=datetime(2099, 12, 30),
    timezones=offsets,  # the contract's range
)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """RFC 3339 text in the shapes producers send: Z or offset, with or without fraction."""
    moment = draw(datetimes)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = draw(st.sampled_from(["", f".{moment.microsecond // 1000:03d}", f".{moment.microsecond:06d}"]))
    offset = moment.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds() // 60)
    if minutes == 0 and draw(st.booleans()):
        suffix = draw(st.sampled_from(["Z", "z"]))
    else:
        sign = "+" if minutes >= 0 else "-"
        suffix = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    separator = draw(st.sampled_from(["T", "t"]))
    return base.replace("T", separator) + fraction + suffix


finite_floats = st.floats(allow_nan=False, allow_infinity=False)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite_floats | texts
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)

KIND_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    NAME: names,
    TEXT: texts,
    CHANNEL: st.sampled_from(["call", "crm", "complaints_platform", "walk_in", "email", "web", "app", "social"]),
    KIND: st.sampled_from(["request", "complaint", "suggestion", "inquiry", "compliment", "facility_report"]),
    PRIORITY: st.sampled_from(["low", "normal", "high", "urgent"]),
    LANGUAGE: st.sampled_from(["ar", "en"]),
    TARGET: st.sampled_from(["first_response", "resolution"]),
    SECONDS: st.integers(0, 3600) | st.floats(0, 3600, allow_nan=False),
    NUMBER_OR_NULL: st.none() | st.integers(-(10**6), 10**6) | finite_floats,
    COUNT: st.integers(0, 10**9),
    TIMESTAMP: timestamps(),
    SCOPE: st.dictionaries(names, texts, max_size=3),
    LOCATION: st.fixed_dictionaries({}, optional={"mosque_id": names, "area": names}),
}

# a value of the wrong JSON type for each kind (null is fine for optional fields, so never null here)
WRONG_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    NAME: st.integers() | st.lists(st.integers(), max_size=2) | st.booleans(),
    TEXT: st.integers() | st.dictionaries(names, st.integers(), max_size=2) | st.booleans(),
    CHANNEL: st.integers() | st.lists(names, max_size=2),
    KIND: st.integers() | st.booleans(),
    PRIORITY: st.integers() | st.lists(names, max_size=2),
    LANGUAGE: st.integers() | st.booleans(),
    TARGET: st.integers() | st.dictionaries(names, names, max_size=1),
    SECONDS: texts | st.booleans() | st.lists(st.integers(), max_size=2),
    NUMBER_OR_NULL: texts | st.booleans() | st.dictionaries(names, st.integers(), max_size=1),
    COUNT: texts | st.booleans() | st.floats(0.5, 10.5).filter(lambda f: not f.is_integer()),
    TIMESTAMP: st.integers() | st.booleans() | st.lists(texts, max_size=1),
    SCOPE: texts | st.integers() | st.lists(texts, max_size=2),
    LOCATION: texts | st.integers() | st.lists(texts, max_size=2),
}
ATTRIBUTE_KINDS = {"id": NAME, "source": NAME, "subject": NAME, "time": TIMESTAMP, "type": NAME}

sources = st.sampled_from(
    ["/channels/pbx/main", "/channels/crm", "urn:tawasul:crm", "https://crm.example/v1?x=1#y", "crm"]
) | st.text(alphabet=string.ascii_letters + string.digits + "-._~", min_size=1, max_size=12).map(
    lambda s: f"/channels/{s}"
)
extension_names = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=12).filter(
    lambda s: s not in KNOWN_ATTRIBUTES
)
extension_values = texts | st.booleans() | st.integers(-(2**31), 2**31 - 1)
extra_names = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=12)


@st.composite
def data_for(draw: st.DrawFn, event_type: str) -> dict[str, Any]:
    required, optional = SPEC[event_type]
    data = draw(
        st.fixed_dictionaries(
            {k: KIND_STRATEGIES[v] for k, v in required.items()},
            optional={k: KIND_STRATEGIES[v] for k, v in optional.items()},
        )
    )
    if event_type == "survey.submitted":
        scale = draw(st.sampled_from([3, 5, None]))
        data["score"] = draw(st.integers(1, scale or 5))
        if scale is not None:
            data["scale"] = scale
    extras = draw(st.dictionaries(extra_names, json_values, max_size=2))
    for key, value in extras.items():
        if key not in required and key not in optional and key not in ("score", "scale"):
            data[key] = value
    return data


@st.composite
def raw_events(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(sorted(SPEC)))
    raw: dict[str, Any] = {
        "specversion": "1.0",
        "id": draw(names),
        "source": draw(sources),
        "type": event_type,
        "time": draw(timestamps()),
        "subject": draw(names),
    }
    if draw(st.booleans()):
        raw["datacontenttype"] = "application/json"
    if draw(st.booleans()):
        raw["dataschema"] = f"urn:tawasul:schema:{event_type}:1"
    raw.update(draw(st.dictionaries(extension_names, extension_values, max_size=2)))
    raw["data"] = draw(data_for(event_type))
    return raw


def fields_of(exc: InvalidEvent) -> list[str]:
    return [error.field for error in exc.errors]


def rejected_fields(raw: dict[str, Any]) -> list[str]:
    try:
        parse_event(raw)
    except InvalidEvent as exc:
        return fields_of(exc)
    raise AssertionError(f"accepted an invalid event: {raw!r}")


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ----------------------------------------------------------------------------- properties


@PROPERTY
@given(raw_events())
def test_valid_events_round_trip(raw: dict[str, Any]) -> None:
    ev = parse_event(raw)
    assert parse_event(json.loads(ev.to_json())) == ev
    assert decode_event(ev.to_json()) == ev
    again = parse_event(ev.to_dict())
    assert again.to_dict() == ev.to_dict()
    kinds = {**SPEC[raw["type"]][0], **SPEC[raw["type"]][1]}
    stamps = [name for name, kind in kinds.items() if kind == TIMESTAMP]
    sent = {k: v for k, v in raw["data"].items() if k not in stamps}
    assert {k: v for k, v in ev.to_dict()["data"].items() if k not in stamps} == json.loads(json.dumps(sent))
    for name in stamps:
        assert getattr(ev.data, name) == datetime.fromisoformat(raw["data"][name].upper())
    assert {k: v for k, v in ev.to_dict().items() if k not in ("time", "data")} == {
        k: v for k, v in raw.items() if k not in ("time", "data")
    }


@PROPERTY
@given(raw_events())
def test_time_keeps_instant_and_offset(raw: dict[str, Any]) -> None:
    ev = parse_event(raw)
    sent = datetime.fromisoformat(raw["time"].upper())
    assert ev.time == sent
    assert ev.time.utcoffset() == sent.utcoffset()


@PROPERTY
@given(raw_events(), st.sampled_from(REQUIRED_ATTRIBUTES))
def test_dropping_a_required_attribute_is_rejected(raw: dict[str, Any], name: str) -> None:
    del raw[name]
    assert name in rejected_fields(raw)


@PROPERTY
@given(raw_events(), st.data())
def test_dropping_a_required_data_field_is_rejected(raw: dict[str, Any], data: st.DataObject) -> None:
    required = [*SPEC[raw["type"]][0], *(["score"] if raw["type"] == "survey.submitted" else [])]
    if not required:
        return
    name = data.draw(st.sampled_from(required))
    del raw["data"][name]
    assert rejected_fields(raw) == [f"data.{name}"]


@PROPERTY
@given(raw_events())
def test_time_without_offset_is_rejected(raw: dict[str, Any]) -> None:
    text: str = raw["time"]
    raw["time"] = text[:-1] if text[-1] in "Zz" else text[:-6]
    assert rejected_fields(raw) == ["time"]


@PROPERTY
@given(raw_events(), st.data())
def test_wrong_type_in_a_field_is_rejected_naming_it(raw: dict[str, Any], data: st.DataObject) -> None:
    required, optional = SPEC[raw["type"]]
    data_fields = {**required, **optional}
    targets = [*(f"data.{name}" for name in data_fields), *ATTRIBUTE_KINDS]
    target = data.draw(st.sampled_from(targets))
    if target.startswith("data."):
        name = target.removeprefix("data.")
        raw["data"][name] = data.draw(WRONG_STRATEGIES[data_fields[name]])
    else:
        raw[target] = data.draw(WRONG_STRATEGIES[ATTRIBUTE_KINDS[target]])
    assert target in rejected_fields(raw)


@PROPERTY
@given(raw_events(), st.integers(6, 100) | st.integers(-100, 0))
def test_survey_score_outside_the_scale_is_rejected(raw: dict[str, Any], score: int) -> None:
    raw["type"] = "survey.submitted"
    raw.pop("dataschema", None)
    raw["data"] = {"channel": "crm", "score": score}
    assert rejected_fields(raw) == ["data.score"]
    raw["data"] = {"channel": "crm", "score": min(max(score, 4), 5), "scale": 3}
    assert rejected_fields(raw) == ["data.score"]


ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(texts, inner, max_size=2),
    max_leaves=4,
)


@PROPERTY
@given(raw_events(), st.data())
def test_the_one_pass_validation_agrees_with_the_attribute_by_attribute_one(
    raw: dict[str, Any],
    data: st.DataObject,
) -> None:
    """`parse_event` validates a valid event in one pass and explains an invalid one attribute
    by attribute: both must accept exactly the same events, with the same result."""
    assert _valid_event(raw) == _explained(raw)
    name = data.draw(st.sampled_from([*KNOWN_ATTRIBUTES, "extension", "data_base64", "Upper"]))
    raw[name] = data.draw(st.none() | ANY_JSON)
    try:
        expected = _explained(raw)
    except InvalidEvent:
        assert _valid_event(raw) is None, f"accepted what the contract refuses: {name}={raw[name]!r}"
    else:
        assert _valid_event(raw) == expected


@PROPERTY
@given(raw_events(), st.sampled_from(["datacontenttype", "dataschema"]))
def test_null_for_an_optional_attribute_is_rejected(raw: dict[str, Any], name: str) -> None:
    raw[name] = None
    assert rejected_fields(raw) == [name]

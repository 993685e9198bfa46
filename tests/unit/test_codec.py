"""`schemas.codec.encode_json` writes the bytes the standard library wrote, faster."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import parse_event
from schemas.codec import encode_json
from tests.unit.test_schemas_properties import raw_events

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from([1e-05, 1e16, 1e-4, 9999999999999998.0, 0.0, -0.0, 5e-324, 1.7976931348623157e308])
)
bodies = st.dictionaries(
    st.text(),
    st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3)),
    max_size=6,
)


def standard(body: Any) -> bytes:
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(body, separators=(",", ":")).encode("ascii")


@settings(max_examples=500, deadline=None)
@given(bodies)
def test_any_json_body_is_written_as_the_standard_library_writes_it(body: dict[str, Any]) -> None:
    assert encode_json(body) == standard(body)


@settings(max_examples=200, deadline=None)
@given(raw_events())
def test_event_to_json_is_unchanged(raw: dict[str, Any]) -> None:
    event = parse_event(raw)
    assert event.to_json() == standard(event.to_dict())


def test_lone_surrogates_and_exponents_take_the_standard_path() -> None:
    body = {"a": "\ud800", "b": [1e-05, {"c": 1e16}]}
    assert encode_json(body) == standard(body) == b'{"a":"\\ud800","b":[1e-05,{"c":1e+16}]}'

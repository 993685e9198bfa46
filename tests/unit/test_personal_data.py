"""Personal data anywhere in an event: phone numbers, e-mail addresses and Emirates ID numbers are
redacted from every string before anything is published, ids are pseudonymised, and nothing else
(ids, timestamps, numbers, categories, mosque ids) is touched."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.intake import Accepted, Rejected, accept_line, accept_object
from producers.simulator import Params, iter_events, parse_when
from tawasul.infra.privacy import might_hold_personal_data, personal_data_fields, redact, redact_text
from tawasul.infra.pseudonymise import Pseudonymiser

PS = Pseudonymiser(b"unit-test-key-0123456789abcdef")

PHONES = [
    "050 123 4567",
    "0501234567",
    "050-123-4567",
    "(050) 123-4567",
    "+971 50 123 4567",
    "+971501234567",
    "+971-50-123-4567",
    "00971501234567",
    "00971 50 123 4567",
    "971501234567",
    "+971 (0)50 123 4567",
    "04 123 4567",
    "04-1234567",
    "+971 4 123 4567",
    "+44 20 7946 0958",
    "+1 (202) 555-0143",
    "0044 20 7946 0958",
    "٠٥٠١٢٣٤٥٦٧",
    "+٩٧١٥٠١٢٣٤٥٦٧",
]
EMAILS = ["ali.k@example.ae", "Fatima_77+crm@mail.gov.ae", "محمد@مثال.امارات"]
EMIRATES_IDS = ["784-1985-1234567-1", "784198512345671", "784 1985 1234567 1"]
NOT_PERSONAL = [
    "5e17a06b-47e9-5387-87bf-96f10780affd",
    "02466588-3f60-5ab0-b661-f11b1e649a2d",
    "T-20250304-00012",
    "C-20250304-00135",
    "2025-03-04T06:39:42+04:00",
    "2025-03-04T06:39:42.123Z",
    "mosque.air_conditioning",
    "MSQ-1279",
    "agent-002",
    "/channels/04-platform",
    "/channels/pbx/main",
    "18f92a413bf231c4",
    "3600",
    "12345678",
    "04/03/2025",
    "ticket T-0501234567",
    "call 1800",
    "urn:tawasul:schema:ticket.opened:1",
    "Jebel Ali",
    "ساحة 12",
]


def event(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "specversion": "1.0",
        "id": "ev-1",
        "source": "/channels/surveys",
        "type": "survey.submitted",
        "time": "2025-05-13T08:10:00+04:00",
        "subject": "CRM-1",
        "data": {"channel": "crm", "score": 2, "scale": 5},
    }
    base.update(changes)
    return base


@pytest.mark.parametrize(
    ("value", "marker"),
    [(v, "[phone]") for v in PHONES] + [(v, "[email]") for v in EMAILS] + [(v, "[emirates-id]") for v in EMIRATES_IDS],
)
def test_each_format_is_redacted_inside_text(value: str, marker: str) -> None:
    assert redact_text(f"please call me on {value} after 5") == f"please call me on {marker} after 5"
    assert redact_text(value) == marker
    assert redact_text(f"رقمي {value}") == f"رقمي {marker}"


@pytest.mark.parametrize("value", NOT_PERSONAL)
def test_ids_timestamps_numbers_and_names_are_left_alone(value: str) -> None:
    assert redact_text(value) == value
    assert personal_data_fields({"a": value}) == []


def test_a_simulated_half_day_passes_through_intake_unchanged() -> None:
    start = parse_when("2025-03-04T06:00:00+04:00")
    lines = [
        json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode()
        for raw in iter_events(Params(start, start + timedelta(hours=12), seed=11, scale=1.0, tail=True))
    ]
    assert len(lines) > 1500
    for body in lines:
        outcome = accept_line(body, "sim", PS, None)
        assert isinstance(outcome, Accepted), outcome
        assert outcome.value == body


def test_a_comment_nested_fields_and_extensions_are_redacted() -> None:
    raw = event(
        data={
            "channel": "crm",
            "score": 2,
            "scale": 5,
            "comment": "please call me on 050 123 4567 or ali@x.ae",
            "extra": {"notes": ["EID 784-1985-1234567-1", {"alt": "+971 4 123 4567"}]},
        },
        contactline="0501112233",
        myfield="x",
    )
    for outcome in (accept_object(raw, "http:1#0", None), accept_line(json.dumps(raw).encode(), "f:1", None)):
        assert isinstance(outcome, Accepted), outcome
        published = json.loads(outcome.value)
        assert published["data"]["comment"] == "please call me on [phone] or [email]"
        assert published["data"]["extra"] == {"notes": ["EID [emirates-id]", {"alt": "[phone]"}]}
        assert published["contactline"] == "[phone]"
        for raw_value in ("4567", "ali@x.ae", "1234567", "1112233"):
            assert raw_value.encode() not in outcome.value


def test_identity_attributes_are_pseudonymised_so_distinct_ids_stay_distinct() -> None:
    a = accept_object(event(subject="call from 0501234567", id="0501234567-1"), "x", PS)
    b = accept_object(event(subject="call from 0509999999"), "x", PS)
    assert isinstance(a, Accepted) and isinstance(b, Accepted)
    assert a.event.subject == f"call from [phone-{PS.ref('0501234567')}]"
    assert a.event.subject != b.event.subject and "0501234567" not in a.value.decode()
    refused = accept_object(event(subject="call from 0501234567"), "x", None)
    assert isinstance(refused, Rejected) and refused.category == "personal_data"
    assert refused.reason.startswith("subject: a phone number is not accepted without the pseudonymisation key")
    assert b"0501234567" not in refused.letter.original


def test_a_ref_holding_an_email_is_pseudonymised() -> None:
    raw = event(
        type="ticket.opened",
        data={
            "channel": "crm",
            "kind": "request",
            "category": "c",
            "priority": "low",
            "customer_ref": "ali@example.ae",
        },
    )
    outcome = accept_object(raw, "x", PS)
    assert isinstance(outcome, Accepted)
    assert outcome.event.data.customer_ref == PS.ref("ali@example.ae")  # type: ignore[attr-defined]


def test_dead_letters_and_reasons_hold_no_personal_data() -> None:
    bad = [
        b"call me 050 123 4567 {not json",
        json.dumps(event(type="ticket 0501234567")).encode(),
        json.dumps(event(time="yesterday", data={"comment": "ali@example.ae"})).encode(),
        b'{"comment":"\\u0030\\u0035\\u0030 123 4567","x":"a\\n0501234567"}',
    ]
    for body in bad:
        outcome = accept_line(body, "f:1", None)
        assert isinstance(outcome, Rejected)
        letter = outcome.letter.to_json().decode()
        for raw_value in ("123 4567", "0501234567", "ali@example.ae"):
            assert raw_value not in letter and raw_value not in outcome.reason
    assert redact(b"\xff\xfe 0501234567 \xff") == b"\xff\xfe [phone] \xff"


values = st.sampled_from(PHONES + EMAILS + EMIRATES_IDS)
text_around = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="0123456789+-.()@"), max_size=8
).map(lambda s: f" {s} ")
keys = st.sampled_from(["comment", "notes", "x1", "remark", "extra"])


@st.composite
def events_with_personal_data(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """An event with one personal value placed in a random string: free text, nested data,
    an extension attribute or the subject."""
    value = draw(values)
    text = draw(text_around) + value + draw(text_around)
    raw = event()
    where = draw(st.sampled_from(["comment", "nested", "list", "extension", "subject", "id"]))
    if where == "comment":
        raw["data"] = {**raw["data"], "comment": text}
    elif where == "nested":
        raw["data"] = {**raw["data"], draw(keys): {draw(keys): text}}
    elif where == "list":
        raw["data"] = {**raw["data"], draw(keys): [1, "a", text]}
    elif where == "extension":
        raw["remark"] = text
    else:
        raw[where] = text
    return raw, value


_ASCII_DIGITS = {c: 48 + (c - b) % 10 for b in (0x660, 0x6F0) for c in range(b, b + 10)}


def squeezed(text: str) -> str:
    """`text` with Arabic-Indic digits as ASCII and no separators: a number in any spelling."""
    return "".join(ch for ch in text.translate(_ASCII_DIGITS) if ch not in " -.()+")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events_with_personal_data(), st.booleans())
def test_property_no_raw_value_is_accepted_anywhere(case: tuple[dict[str, Any], str], as_line: bool) -> None:
    raw, value = case
    body = json.dumps(raw, ensure_ascii=bool(as_line and len(value) % 2)).encode()
    outcome = accept_line(body, "f:1", PS) if as_line else accept_object(raw, "h:1#0", PS)
    if isinstance(outcome, Accepted):
        text = json.dumps(json.loads(outcome.value), ensure_ascii=False)
    else:
        text = f"{outcome.letter.original.decode('utf-8', 'replace')} {outcome.reason}"
    assert value not in text
    assert squeezed(value)[-7:] not in squeezed(text)
    if isinstance(outcome, Accepted):
        assert personal_data_fields(json.loads(outcome.value)) == []


number_like = st.text(alphabet="0123456789 -.()+@x٠٥٧", max_size=40)


@settings(max_examples=500, deadline=None)
@given(st.one_of(number_like, text_around.map(str.strip)), values, st.booleans())
def test_property_the_fast_scan_never_misses_what_redaction_finds(noise: str, value: str, place: bool) -> None:
    """`might_hold_personal_data` (intake's and the sink's fast path) is True for every body
    holding a string that redaction would change."""
    for text in (f"{noise}{value}" if place else noise, f"{noise} {value} {noise}"):
        body = json.dumps({"data": {"comment": text}}, ensure_ascii=False).encode()
        if redact_text(text) != text:
            assert might_hold_personal_data(body)
    assert personal_data_fields({"comment": f"{noise} {value} {noise}"})  # set apart, always found

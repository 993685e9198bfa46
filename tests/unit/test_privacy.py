"""No raw phone number reaches Kafka: scrubbing before publishing, redaction in dead letters."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tawasul.infra.privacy import (
    REDACTED,
    PrivacyError,
    looks_like_phone_number,
    needs_scrub,
    redact,
    redact_delimited,
    scrub,
)
from tawasul.infra.pseudonymise import Pseudonymiser

PS = Pseudonymiser(b"unit-test-key-0123456789abcdef")


def call(data: dict[str, Any], event_type: str = "call.offered") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/channels/pbx/main",
        "type": event_type,
        "time": "2025-05-13T08:03:43+04:00",
        "subject": "pbx-main-1.1",
        "data": data,
    }


@pytest.mark.parametrize("field", ["caller_number", "caller_id", "phone", "msisdn", "mobile"])
def test_raw_number_of_a_call_becomes_caller_ref(field: str) -> None:
    raw = call({"queue": "customer-care-ar", field: "+971 50 123 4567"})
    clean = scrub(raw, PS)
    assert clean["data"] == {"queue": "customer-care-ar", "caller_ref": PS.ref("+971501234567")}
    assert raw["data"][field] == "+971 50 123 4567"  # the input is not changed


def test_ticket_number_becomes_customer_ref_and_an_existing_ref_is_kept() -> None:
    ticket = {**call({"channel": "crm", "phone": "0501234567"}), "type": "ticket.opened"}
    assert scrub(ticket, PS)["data"] == {"channel": "crm", "customer_ref": PS.ref("0501234567")}
    both = call({"queue": "q", "caller_ref": "a" * 32, "msisdn": 971501234567})
    assert scrub(both, PS)["data"] == {"queue": "q", "caller_ref": "a" * 32}


def test_a_ref_holding_a_phone_number_is_pseudonymised() -> None:
    raw = call({"queue": "q", "caller_ref": "00971 50 123 4567"})
    assert scrub(raw, PS)["data"]["caller_ref"] == PS.ref("+971501234567")


@pytest.mark.parametrize("value", ["", "anonymous", "Unknown", None, ["0501234567"]])
def test_fields_without_a_usable_number_are_dropped_without_a_key(value: object) -> None:
    assert scrub(call({"queue": "q", "caller_id": value}), None)["data"] == {"queue": "q"}


def test_without_a_pseudonymiser_a_number_is_refused_naming_the_field_only() -> None:
    with pytest.raises(PrivacyError) as caught:
        scrub(call({"queue": "q", "caller_number": "0501234567"}), None)
    assert caught.value.field == "data.caller_number"
    assert "0501234567" not in str(caught.value) and "TAWASUL_PSEUDONYM_KEY" in str(caught.value)


def test_events_without_numbers_are_returned_as_they_are() -> None:
    raw = call({"queue": "q", "caller_ref": "9c5bfa5d0123456789abcdef01234567"})
    assert scrub(raw, None) is raw
    assert scrub({"data": "not an object"}, None) == {"data": "not an object"}
    assert not needs_scrub({"queue": "q", "customer_ref": "6a529085acb4d7ab"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+971501234567", True),
        ("050 123 4567", True),
        ("00971-50-123-4567", True),
        (971501234567, False),
        ("0123456789abcdef", False),
        ("6a529085acb4d7ab", False),
        ("123456789", False),
        ("+97", False),
        ("04123", False),
        (True, False),
        (None, False),
    ],
)
def test_looks_like_phone_number(value: object, expected: bool) -> None:
    assert looks_like_phone_number(value) is expected


def test_redact_blanks_numbers_in_valid_and_cut_json() -> None:
    line = json.dumps(call({"queue": "q", "caller_number": "+971501234567", "caller_ref": "0501112222"})).encode()
    cleaned = json.loads(redact(line))
    assert cleaned["data"] == {"queue": "q", "caller_number": REDACTED, "caller_ref": REDACTED}
    cut = b'{"type":"call.offered","data":{"msisdn": 971501234567, "phone": "+9715'
    assert redact(cut) == b'{"type":"call.offered","data":{"msisdn": "[redacted]", "phone": "[redacted]"'
    assert b"9715" not in redact(cut)


def test_redact_blanks_arrays_objects_and_escaped_quotes() -> None:
    line = (
        b'{"data":{"phone":["0501234567", 971501234567],"caller_id":{"n":"0501234567"},'
        b'"msisdn":"050\\"1234567","caller_ref":971501234567,"customer_ref":["0501234567"],"q":1}}'
    )
    assert json.loads(redact(line))["data"] == {
        "phone": REDACTED,
        "caller_id": REDACTED,
        "msisdn": REDACTED,
        "caller_ref": REDACTED,
        "customer_ref": REDACTED,
        "q": 1,
    }


def test_redact_decodes_escaped_field_names() -> None:
    line = b'{"data":{"queue":"q","caller\\u005fnumber":"0501234567","nested":{"phone":"x"}}}'
    assert json.loads(redact(line)) == {
        "data": {"queue": "q", "caller_number": REDACTED, "nested": {"phone": REDACTED}}
    }


def test_every_field_name_is_caught_by_the_intake_fast_path() -> None:
    from producers.intake import _FIELD_WORDS
    from tawasul.infra.privacy import PHONE_FIELDS, REF_FIELDS

    for name in PHONE_FIELDS + REF_FIELDS:
        assert any(word in name.encode() for word in _FIELD_WORDS)


def test_redact_keeps_pseudonyms_and_lines_without_such_fields() -> None:
    line = b'{"data":{"caller_ref":"9c5bfa5d0123456789abcdef01234567","queue":"q"}}'
    assert redact(line) == line
    assert redact(b"\xff\xfe not text") == b"\xff\xfe not text"


def test_redact_delimited_queue_log_line() -> None:
    line = b"2025-05-13 09:40:00|1747112400.300|customer-care-en|NONE|ENTERQUEUE||0509990009|1"
    assert redact_delimited(line, b"|", 5) == (
        b"2025-05-13 09:40:00|1747112400.300|customer-care-en|NONE|ENTERQUEUE||[redacted]|1"
    )
    connect = b"1747115000|1747114990.400|customer-care-ar|PJSIP/1001|CONNECT|abc|1747114999.401|3"
    assert redact_delimited(connect, b"|", 5) == connect


@given(st.from_regex(r"\A(\+9715|05|009715)[0-9]{7,8}\Z"), st.sampled_from(["caller_number", "phone", "msisdn"]))
def test_no_number_survives_redaction_or_scrubbing(number: str, field: str) -> None:
    raw = call({"queue": "q", field: number})
    line = json.dumps(raw).encode()
    digits = number.lstrip("+0")
    assert digits.encode() not in redact(line)
    assert digits not in json.dumps(scrub(raw, PS))

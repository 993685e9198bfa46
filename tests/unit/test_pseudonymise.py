from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from tawasul.infra.pseudonymise import (
    ENV_PSEUDONYM_KEY,
    PseudonymiseError,
    Pseudonymiser,
    from_env,
    normalise,
)

KEY = b"unit-test-key-0123456789abcdef"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+971501234567", "+971501234567"),
        ("00971 50 123 4567", "+971501234567"),
        ("00971-50-123-4567", "+971501234567"),
        (" +971 (50) 123.4567 ", "+971501234567"),
        ("050 123 4567", "0501234567"),
        ("CUST-00123", "CUST-00123"),
        ("  CUST-00123\t", "CUST-00123"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_same_number_in_any_format_gives_the_same_ref() -> None:
    ps = Pseudonymiser(KEY)
    refs = {ps.ref(v) for v in ("+971501234567", "00971 50 123 4567", "00971-50-123-4567", "+971 50 1234567")}
    assert len(refs) == 1


def test_ref_is_the_truncated_hmac_of_the_normalised_value() -> None:
    ref = Pseudonymiser(KEY).ref("00971 50 123 4567")
    expected = hmac.new(KEY, b"+971501234567", hashlib.sha256).hexdigest()[:32]
    assert ref == expected
    assert re.fullmatch(r"[0-9a-f]{32}", ref)


def test_refs_differ_by_value_and_by_key() -> None:
    ps = Pseudonymiser(KEY)
    other = Pseudonymiser(b"another-key-with-enough-bytes!!")
    assert ps.ref("+971501234567") != ps.ref("+971501234568")
    assert ps.ref("+971501234567") != other.ref("+971501234567")
    assert ps.ref("CUST-00123") != ps.ref("CUST00123")


def test_length_is_configurable() -> None:
    assert len(Pseudonymiser(KEY, length=64).ref("x-1")) == 64


def test_key_never_in_repr() -> None:
    assert "unit-test-key" not in repr(Pseudonymiser(KEY))


@pytest.mark.parametrize("key", [b"", b"short"])
def test_short_key_is_refused(key: bytes) -> None:
    with pytest.raises(PseudonymiseError, match="too short"):
        Pseudonymiser(key)


def test_empty_value_is_refused() -> None:
    with pytest.raises(PseudonymiseError, match="empty"):
        Pseudonymiser(KEY).ref("   ")


def test_from_env_reads_the_key() -> None:
    ps = from_env({ENV_PSEUDONYM_KEY: KEY.decode()})
    assert ps is not None
    assert ps.ref("+971501234567") == Pseudonymiser(KEY).ref("+971501234567")


def test_from_env_missing_key_is_a_clear_error() -> None:
    with pytest.raises(PseudonymiseError, match=ENV_PSEUDONYM_KEY):
        from_env({})
    assert from_env({}, required=False) is None


def test_from_env_short_key_names_the_variable() -> None:
    with pytest.raises(PseudonymiseError, match=f"{ENV_PSEUDONYM_KEY}: .*too short"):
        from_env({ENV_PSEUDONYM_KEY: "abc"})

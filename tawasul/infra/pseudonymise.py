"""Keyed-hash pseudonymisation of caller numbers and customer references.

`Pseudonymiser(key).ref(value)` is HMAC-SHA256 of the normalised value under a secret key,
as a truncated lowercase hex string. The same value under the same key always gives the same
ref, so one caller can be followed across channels, while the raw number cannot be recovered
without the key (and cannot be found by hashing every phone number, as an unkeyed hash can).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

ENV_PSEUDONYM_KEY = "TAWASUL_PSEUDONYM_KEY"
MIN_KEY_BYTES = 16
DEFAULT_REF_HEX_CHARS = 32

_PHONE_LIKE = re.compile(r"^\+?[0-9][0-9 \-.()/]*$")
_PHONE_SEPARATORS = re.compile(r"[ \-.()/]")


class PseudonymiseError(Exception):
    """The pseudonymisation key is missing or unusable, or a value cannot be pseudonymised."""


def normalise(value: str) -> str:
    """The canonical form of `value` that is hashed.

    Phone numbers (digits with spaces, dashes, dots, brackets or slashes, optionally a leading
    `+`) lose their separators and a leading international `00` becomes `+`, so
    `00971 4-123 4567` and `+97141234567` are the same number. Any other value is only
    trimmed of surrounding white space.
    """
    text = value.strip()
    if not _PHONE_LIKE.match(text):
        return text
    digits = _PHONE_SEPARATORS.sub("", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    return digits


@dataclass(frozen=True)
class Pseudonymiser:
    """HMAC-SHA256 pseudonyms under one secret key (the key never appears in `repr`)."""

    key: bytes = field(repr=False)
    length: int = DEFAULT_REF_HEX_CHARS

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes | bytearray):
            raise PseudonymiseError("the pseudonymisation key must be bytes")
        if len(self.key) < MIN_KEY_BYTES:
            raise PseudonymiseError(f"the pseudonymisation key is too short: at least {MIN_KEY_BYTES} bytes are needed")
        if not 16 <= self.length <= 64:
            raise PseudonymiseError("the ref length must be between 16 and 64 hex characters")

    def ref(self, value: str) -> str:
        """The opaque pseudonym of `value` (normalised first; see `normalise`)."""
        canonical = normalise(value)
        if not canonical:
            raise PseudonymiseError("cannot pseudonymise an empty value")
        digest = hmac.new(bytes(self.key), canonical.encode("utf-8"), hashlib.sha256).hexdigest()
        return digest[: self.length]


def from_env(
    environ: Mapping[str, str] | None = None,
    *,
    variable: str = ENV_PSEUDONYM_KEY,
    required: bool = True,
) -> Pseudonymiser | None:
    """The pseudonymiser keyed by the environment variable (UTF-8 bytes of its value).

    Raises `PseudonymiseError` naming the variable when it is missing or empty and `required`;
    returns None in that case otherwise.
    """
    env = os.environ if environ is None else environ
    value = env.get(variable, "")
    if not value:
        if required:
            raise PseudonymiseError(
                f"{variable} is not set: set it to a secret of at least {MIN_KEY_BYTES} characters "
                '(for example the output of `python -c "import secrets; print(secrets.token_hex(32))"`)'
            )
        return None
    try:
        return Pseudonymiser(value.encode("utf-8"))
    except PseudonymiseError as exc:
        raise PseudonymiseError(f"{variable}: {exc}") from None

"""Fast JSON encoding of the pipeline's messages, byte for byte what the standard library wrote.

`encode_json(body)` is `json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()`
(lone surrogates as `\\u` escapes, as `Event.to_json` does) at msgspec's speed. msgspec writes
every string, integer, boolean and null as the standard library does, and every float the same
except those Python writes with an exponent (`1e-05`, `1e+16`); a body holding such a float
is written by the standard library. The SLA outcomes and KPI snapshots the processors publish,
and `Event.to_json`, go through it; `tests/unit/test_codec.py` holds the bytes equal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import msgspec

_ENCODER: Final = msgspec.json.Encoder()
_FIXED_LOW: Final = 1e-4
_FIXED_HIGH: Final = 1e16


def encode_json(body: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON of a JSON-ready mapping (str keys; str, int, float, bool, None,
    lists and mappings as values), the bytes `json.dumps` writes."""
    if _has_exponent_float(body.values()):
        return _standard(body)
    try:
        return _ENCODER.encode(body)
    except UnicodeEncodeError:  # a lone surrogate: the standard library escapes it
        return _standard(body)


def _standard(body: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(body, separators=(",", ":")).encode("ascii")


def _has_exponent_float(values: Any) -> bool:
    """Whether a float Python writes with an exponent (or a non-finite one) is among `values`."""
    for value in values:
        kind = type(value)
        if kind is float:
            size = abs(value)
            if size != 0.0 and not _FIXED_LOW <= size < _FIXED_HIGH:
                return True
        elif kind is dict:
            if _has_exponent_float(value.values()):
                return True
        elif kind is list or kind is tuple:
            if _has_exponent_float(value):
                return True
        elif kind not in (str, int, bool, type(None)):
            return True  # anything else (a float subclass, a datetime, ...): the standard path decides
    return False

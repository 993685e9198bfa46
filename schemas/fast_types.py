"""msgspec twins of the `data` models, generated from them (one source of truth).

Each pydantic model of `schemas.registry.DATA_MODELS` at version 1 gets a `msgspec.Struct`
whose field types say what the model's annotated types say, as far as msgspec can check in C;
what it cannot (timestamps, `Literal` numbers, the survey's score in its scale) is listed per
struct for `schemas.fast` to check in Python with the contract's own functions. A model with a
type or validator this module does not know gets no twin: its events always take the pydantic
path (correct, only slower), and `FAST_TYPES` does not list it.
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, Union

import msgspec
from pydantic import BaseModel, Strict
from pydantic.fields import FieldInfo

from schemas import fields
from schemas.registry import DATA_MODELS, DEFAULT_VERSION
from schemas.survey import SurveySubmittedData
from schemas.ticket import Location
from schemas.values import Channel, Kind, Language, Priority, SlaTarget

UNSET: Final = msgspec.UNSET
_MAX: Final = sys.float_info.max
_WHITESPACE: Final = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NON_BLANK_FAST: Final = f"[^{_WHITESPACE}]"
"""`Name`'s rule as pydantic applies it (its regex engine's `\\S`: Unicode White_Space, which
unlike Python's `\\s` leaves U+001C..U+001F as non-blank)."""

_SCALARS: Final[dict[object, Any]] = {
    fields.Name: str,  # non-blank: checked in Python (a msgspec pattern costs 0.3 µs a field)
    fields.Text: str,
    fields.Seconds: Annotated[float, msgspec.Meta(ge=0, le=_MAX)],
    fields.Number: Annotated[float, msgspec.Meta(ge=-_MAX, le=_MAX)],
    fields.Count: Annotated[int, msgspec.Meta(ge=0)],
    fields.Timestamp: Any,  # checked by `fields.parse_timestamp`, the contract's own function
    dict[str, fields.Text]: dict[str, str],
    **{enum: enum for enum in (Channel, Kind, Priority, Language, SlaTarget)},
}


_NEEDS: Final[dict[object, str]] = {fields.Timestamp: "timestamp", fields.Name: "name"}


class Unsupported(TypeError):
    """A model field type without a msgspec twin (the model stays on the pydantic path)."""


@dataclass(frozen=True, slots=True)
class Twin:
    """A model and its struct, with what `schemas.fast` checks and converts after decoding."""

    model: type[BaseModel]
    struct: type[msgspec.Struct]
    names: tuple[str, ...]
    """The model's fields, in its order."""
    defaults: dict[str, Any]
    """Optional field -> its default."""
    names_checked: tuple[str, ...]
    """`Name` fields (non-blank is checked in Python)."""
    timestamps: tuple[tuple[str, bool], ...]
    """Timestamp fields (typed `Any` in the struct), each with whether null is allowed."""
    literals: dict[str, tuple[Any, ...]]
    nested: dict[str, Twin]
    check: Callable[[Any], bool] | None
    """A model-level rule (a validator of the model); False rejects."""


def _check_survey(data: Any) -> bool:
    scale = 5 if data.scale is UNSET else data.scale
    return bool(1 <= data.score <= scale)


_CHECKS: Final[dict[type[BaseModel], Callable[[Any], bool]]] = {SurveySubmittedData: _check_survey}
"""Models whose validators have a fast twin here."""


def _strict_int(annotation: object) -> bool:
    """`Annotated[int, Strict(), Field(<documentation only>)]` (the survey's score)."""
    if typing.get_origin(annotation) is not Annotated:
        return False
    base, *meta = typing.get_args(annotation)
    plain = all(isinstance(m, Strict) or (isinstance(m, FieldInfo) and not m.metadata) for m in meta)
    return base is int and plain and any(isinstance(m, Strict) for m in meta)


def _fast_type(annotation: object, twin: dict[str, Twin], name: str) -> tuple[Any, str]:
    """The msgspec type of one (non-None) annotation, and what it needs after decoding."""
    if annotation in _SCALARS:
        return _SCALARS[annotation], _NEEDS.get(annotation, "")
    if _strict_int(annotation):
        return int, ""
    if typing.get_origin(annotation) is Literal:
        values = typing.get_args(annotation)
        if all(type(v) is int for v in values):
            return int | float, "literal"  # pydantic takes 3.0 for Literal[3]
        if all(type(v) is str for v in values):
            return annotation, ""
    if annotation is Location:
        twin[name] = make_twin(Location)
        return twin[name].struct, ""
    raise Unsupported(f"{name}: {annotation!r}")


def _field(model: type[BaseModel], name: str, hint: object, nested: dict[str, Twin]) -> tuple[Any, str]:
    args = typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else (hint,)
    nullable = type(None) in args
    inner = [a for a in args if a is not type(None)]
    if len(inner) != 1:
        raise Unsupported(f"{model.__name__}.{name}: {hint!r}")
    fast, needs = _fast_type(inner[0], nested, name)
    return (fast | None if nullable else fast), needs


def make_twin(model: type[BaseModel]) -> Twin:
    """The struct twin of a model; raises `Unsupported` when some type or rule has none."""
    decorators = model.__pydantic_decorators__
    validators = [*decorators.field_validators, *decorators.model_validators]
    if validators and model not in _CHECKS:
        raise Unsupported(f"{model.__name__} has validators without a fast twin")
    hints = typing.get_type_hints(model, include_extras=True)
    specs: list[Any] = []
    defaults: dict[str, Any] = {}
    timestamps: list[tuple[str, bool]] = []
    names_checked: list[str] = []
    literals: dict[str, tuple[Any, ...]] = {}
    nested: dict[str, Twin] = {}
    for name, info in model.model_fields.items():
        fast, needs = _field(model, name, hints[name], nested)
        if needs == "timestamp":
            timestamps.append((name, typing.get_origin(hints[name]) in (Union, types.UnionType)))
        elif needs == "name":
            names_checked.append(name)
        elif needs == "literal":
            literals[name] = typing.get_args(hints[name])
        if info.is_required():
            specs.append((name, fast))
        else:
            defaults[name] = info.get_default(call_default_factory=True)
            specs.append((name, fast | msgspec.UnsetType, UNSET))
    struct = msgspec.defstruct(
        f"Fast{model.__name__}", specs, kw_only=True, forbid_unknown_fields=True, module=__name__
    )
    return Twin(
        model=model,
        struct=struct,
        names=tuple(model.model_fields),
        defaults=defaults,
        names_checked=tuple(names_checked),
        timestamps=tuple(timestamps),
        literals=literals,
        nested=nested,
        check=_CHECKS.get(model),
    )


def _envelope(event_type: str, data: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """The whole event of one type (tagged by `type`); extension attributes are not fields."""
    name = "Fast_" + event_type.replace(".", "_")
    specs: list[Any] = [
        ("specversion", Literal["1.0"]),
        ("id", str),
        ("source", str),
        ("time", Any),
        ("subject", str),
        ("datacontenttype", Literal["application/json"] | msgspec.UnsetType, UNSET),
        ("dataschema", str | msgspec.UnsetType, UNSET),
        ("data", data),
    ]
    return msgspec.defstruct(
        name, specs, kw_only=True, forbid_unknown_fields=True, tag_field="type", tag=event_type, module=__name__
    )


def _twins() -> tuple[dict[str, Twin], dict[str, type[msgspec.Struct]]]:
    twins: dict[str, Twin] = {}
    envelopes: dict[str, type[msgspec.Struct]] = {}
    for (event_type, version), model in DATA_MODELS.items():
        if version != DEFAULT_VERSION:
            continue  # another version: named by `dataschema`, decided on the pydantic path
        try:
            twins[event_type] = make_twin(model)
        except Unsupported:
            continue
        envelopes[event_type] = _envelope(event_type, twins[event_type].struct)
    return twins, envelopes


FAST_TYPES, ENVELOPES = _twins()
"""type -> the twin of its version-1 data model, and the struct of the whole event."""
ENVELOPE_TYPES: Final = {struct: event_type for event_type, struct in ENVELOPES.items()}
ANY_ENVELOPE: Final[Any] = Union[tuple(ENVELOPES.values())]  # noqa: UP007 - built at run time

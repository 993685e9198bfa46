"""The CloudEvents 1.0 envelope: the `Event` record and its attribute types."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal, NotRequired

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SerializeAsAny,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from schemas.base import EventData
from schemas.codec import encode_json
from schemas.errors import FieldError
from schemas.fields import Name, Timestamp, UriReference, format_timestamp
from schemas.registry import DATA_MODELS, DATASCHEMA_PATTERN, DEFAULT_VERSION, parse_dataschema
from schemas.values import EVENT_TYPES

CONTEXT_ATTRIBUTES: Final = frozenset(
    {"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema"}
)
"""Every CloudEvents context attribute the contract knows; other names are extensions."""
EXTENSION_NAME_PATTERN: Final = r"^[a-z0-9]+$"
_EXTENSION_NAME: Final = re.compile(EXTENSION_NAME_PATTERN)
_INT32: Final = range(-(2**31), 2**31)

ExtensionValue = str | bool | int
"""CloudEvents extension values in JSON: String, Boolean or Integer (32-bit)."""


def _known_type(value: object) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("event_type_type", "must be a string")
    if value not in EVENT_TYPES:
        raise PydanticCustomError("event_type", "unknown event type '{value}'", {"value": value[:80]})
    return str(value)


def _dataschema(value: object) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("dataschema_type", "must be a string")
    if parse_dataschema(value) is None:
        raise PydanticCustomError(
            "dataschema_format",
            "must be urn:tawasul:schema:<type>:<version>, e.g. urn:tawasul:schema:ticket.opened:1",
        )
    return value


EventTypeName = Annotated[
    str,
    PlainValidator(_known_type),
    WithJsonSchema({"type": "string", "enum": sorted(EVENT_TYPES)}),
]
DataSchemaUri = Annotated[
    str,
    PlainValidator(_dataschema),
    WithJsonSchema({"type": "string", "format": "uri", "pattern": DATASCHEMA_PATTERN}),
]


class Attributes(TypedDict):
    """The context attributes of an event (everything but `data` and extensions)."""

    specversion: Literal["1.0"]
    id: Name
    source: UriReference
    type: EventTypeName
    time: Timestamp
    subject: Name
    datacontenttype: NotRequired[Literal["application/json"]]
    dataschema: NotRequired[DataSchemaUri]


def extension_errors(name: object, value: object) -> FieldError | None:
    """Why an extension attribute breaks CloudEvents, or None when it is fine."""
    if not isinstance(name, str):
        return FieldError(str(name), "attribute names must be strings")
    if name == "data_base64":
        return FieldError(name, "binary data is not accepted (data must be a JSON object)")
    if _EXTENSION_NAME.fullmatch(name) is None:
        return FieldError(name, "unknown attribute (extension names are lowercase letters and digits)")
    if isinstance(value, bool | str) or (isinstance(value, int) and value in _INT32):
        return None
    return FieldError(name, "extension value must be a string, a 32-bit integer or a boolean")


def version_error(event_type: str, dataschema: str | None) -> FieldError | None:
    """Why `dataschema` does not fit `type`, or None when a data model exists for it."""
    if dataschema is None:
        return None
    named = parse_dataschema(dataschema)
    if named is None:
        return None
    schema_type, version = named
    if schema_type != event_type:
        return FieldError("dataschema", f"names {schema_type} but the event type is {event_type}")
    if (event_type, version) not in DATA_MODELS:
        known = ", ".join(str(v) for (t, v) in sorted(DATA_MODELS) if t == event_type)
        return FieldError("dataschema", f"unknown version {version} of {event_type} (known: {known})")
    return None


class Event(BaseModel):
    """A validated CloudEvents 1.0 event; build it with `parse_event` or `new_event`."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    specversion: Literal["1.0"]
    id: Name
    source: UriReference
    type: EventTypeName
    time: Timestamp
    """Aware datetime with the offset it was sent with."""
    subject: Name
    """Ticket, call or visit id; the Kafka message key."""
    datacontenttype: Literal["application/json"] | None = None
    dataschema: DataSchemaUri | None = None
    data: SerializeAsAny[EventData]
    extensions: dict[str, ExtensionValue] = Field(default_factory=dict)
    """Other CloudEvents extension attributes, kept as sent (read-only by convention)."""

    @field_validator("extensions")
    @classmethod
    def _check_extensions(cls, value: dict[str, ExtensionValue]) -> dict[str, ExtensionValue]:
        for name, item in value.items():
            problem = extension_errors(name, item)
            if problem is not None:
                raise PydanticCustomError("extension", "{name}: {message}", {"name": name, "message": problem.message})
        return value

    @model_validator(mode="after")
    def _data_fits_type(self) -> Event:
        problem = version_error(self.type, self.dataschema)
        if problem is not None:
            raise PydanticCustomError("dataschema", "{message}", {"message": problem.message})
        expected = DATA_MODELS[(self.type, self.schema_version)]
        if type(self.data) is not expected:
            raise PydanticCustomError(
                "data_model",
                "data must be a {model} for {type}",
                {"model": expected.__name__, "type": self.type},
            )
        return self

    def __hash__(self) -> int:
        return hash((self.id, self.type, self.subject))

    @property
    def schema_version(self) -> int:
        """The data schema version: from `dataschema`, 1 when it is absent."""
        named = parse_dataschema(self.dataschema) if self.dataschema is not None else None
        return DEFAULT_VERSION if named is None else named[1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready CloudEvents structured form; `parse_event` gives this event back."""
        out: dict[str, Any] = {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": format_timestamp(self.time),
            "subject": self.subject,
        }
        if self.datacontenttype is not None:
            out["datacontenttype"] = self.datacontenttype
        if self.dataschema is not None:
            out["dataschema"] = self.dataschema
        out.update(self.extensions)
        out["data"] = self.data.to_dict()
        return out

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON (the Kafka message value); lone surrogates escaped."""
        return encode_json(self.to_dict())

"""JSON Schema (draft 2020-12) documents generated from the models.

`<type>.schema.json` describes the `data` of one type at its current version
(`<type>.v<N>.schema.json` for older versions); its `$id` is the type's `dataschema` URN.
`event.schema.json` describes a whole event: the envelope, with the `data` schema chosen
by `type`.
"""

from __future__ import annotations

import json
from typing import Any, Final

from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from schemas.envelope import EXTENSION_NAME_PATTERN, Attributes
from schemas.registry import (
    CURRENT_VERSIONS,
    DATA_MODELS,
    DEFAULT_VERSION,
    data_model,
    dataschema_uri,
    versions,
)

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
EVENT_SCHEMA_ID: Final = "urn:tawasul:schema:event:1"
EVENT_SCHEMA_FILE: Final = "event.schema.json"
_ANY_JSON: Final = "#/$defs/JsonValue"


def _tidy(node: Any) -> Any:
    """Say `additionalProperties: true` instead of a reference to an empty JsonValue def."""
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _tidy(value) for key, value in node.items()}
    if out.get("additionalProperties") == {"$ref": _ANY_JSON}:
        out["additionalProperties"] = True
    defs = out.get("$defs")
    if isinstance(defs, dict) and "JsonValue" in defs:
        rest = {name: schema for name, schema in defs.items() if name != "JsonValue"}
        if rest:
            out["$defs"] = rest
        else:
            del out["$defs"]
    return out


def schema_file_name(event_type: str, version: int) -> str:
    """File name of a type's data schema at a version."""
    if version == CURRENT_VERSIONS[event_type]:
        return f"{event_type}.schema.json"
    return f"{event_type}.v{version}.schema.json"


def data_schema(event_type: str, version: int | None = None) -> dict[str, Any]:
    """JSON Schema of the `data` of a type (current version by default)."""
    body = data_model(event_type, version).model_json_schema(mode="validation")
    return {"$schema": DIALECT, "$id": dataschema_uri(event_type, version), **_tidy(body)}


def event_schema() -> dict[str, Any]:
    """JSON Schema of a whole event (current versions; older ones when `dataschema` says so)."""
    attributes = TypeAdapter(Attributes).json_schema(mode="validation")
    keys = sorted(DATA_MODELS)
    refs, shared = models_json_schema(
        [(DATA_MODELS[key], "validation") for key in keys], ref_template="#/$defs/{model}"
    )
    rules: list[dict[str, Any]] = []
    for event_type in sorted(CURRENT_VERSIONS):
        uris = [dataschema_uri(event_type, v) for v in versions(event_type)]
        rules.append(
            {
                "if": {"properties": {"type": {"const": event_type}}, "required": ["type"]},
                "then": {"properties": {"dataschema": {"enum": uris}}},
            }
        )
    for event_type, version in keys:
        chooses: dict[str, Any] = {
            "properties": {
                "type": {"const": event_type},
                "dataschema": {"const": dataschema_uri(event_type, version)},
            },
            # without `dataschema` an event is at the default version
            "required": ["type"] if version == DEFAULT_VERSION else ["type", "dataschema"],
        }
        data_ref = refs[(DATA_MODELS[(event_type, version)], "validation")]
        rules.append({"if": chooses, "then": {"properties": {"data": data_ref}}})
    known_uris = sorted(dataschema_uri(t, v) for (t, v) in keys)
    properties = dict(attributes["properties"])
    properties["dataschema"] = {**properties["dataschema"], "enum": known_uris}
    properties["data"] = {"type": "object", "description": "As the type requires."}
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": EVENT_SCHEMA_ID,
        "title": "Tawasul event",
        "description": "A CloudEvents 1.0 event in structured JSON mode.",
        "type": "object",
        "properties": properties,
        "required": [*attributes["required"], "data"],
        "patternProperties": {f"(?!^data$){EXTENSION_NAME_PATTERN}": {"type": ["string", "integer", "boolean"]}},
        "additionalProperties": False,
        "allOf": rules,
        "$defs": shared["$defs"],
    }
    tidied: dict[str, Any] = _tidy(schema)
    return tidied


def schema_documents() -> dict[str, dict[str, Any]]:
    """Every schema file of the package: file name -> JSON Schema."""
    out = {schema_file_name(t, v): data_schema(t, v) for (t, v) in sorted(DATA_MODELS)}
    out[EVENT_SCHEMA_FILE] = event_schema()
    return out


def render(schema: dict[str, Any]) -> str:
    """The committed text of a schema file."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"

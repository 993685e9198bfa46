"""The committed JSON Schema files and the event catalogue agree with the models."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from schemas import EVENT_TYPES, InvalidEvent, data_model, dataschema_uri, parse_event
from schemas.examples import example_event
from schemas.generate import SCHEMA_DIR, drift, main

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "docs" / "events.md"


@cache
def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def schema_accepts(name: str, instance: object) -> bool:
    return validator(name).is_valid(instance)


def parse_accepts(raw: object) -> bool:
    try:
        parse_event(raw)
    except InvalidEvent:
        return False
    return True


# ----------------------------------------------------------------------------- drift


def test_committed_files_match_the_models() -> None:
    assert drift() == [], "schema files are stale: run `python -m schemas.generate`"


def test_every_type_has_a_file_and_every_file_is_a_schema() -> None:
    names = {path.name for path in SCHEMA_DIR.glob("*.schema.json")}
    assert names == {f"{t}.schema.json" for t in EVENT_TYPES} | {"event.schema.json", "tickets.state.schema.json"}
    for name in names:
        schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for event_type in EVENT_TYPES:
        assert validator(f"{event_type}.schema.json").schema["$id"] == dataschema_uri(event_type)


def test_generate_writes_checks_and_repairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    assert main(["--dir", str(tmp_path)]) == 0
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == sorted(path.name for path in SCHEMA_DIR.glob("*.schema.json"))
    for name in written:
        assert (tmp_path / name).read_bytes() == (SCHEMA_DIR / name).read_bytes()
    assert main(["--check", "--dir", str(tmp_path)]) == 0

    (tmp_path / "ticket.opened.schema.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "ticket.gone.schema.json").write_text("{}\n", encoding="utf-8")
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    assert "ticket.opened.schema.json" in capsys.readouterr().err
    assert main(["--dir", str(tmp_path)]) == 0
    assert not (tmp_path / "ticket.gone.schema.json").exists()
    assert main(["--check", "--dir", str(tmp_path)]) == 0


def test_generate_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "schemas.generate", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# ----------------------------------------------------------------------------- samples


def _examples() -> list[dict[str, Any]]:
    return [example_event(t).to_dict() for t in sorted(EVENT_TYPES)]


def _valid_variants() -> Iterator[dict[str, Any]]:
    base = example_event("ticket.opened").to_dict()
    yield {k: v for k, v in base.items() if k not in ("dataschema", "datacontenttype")}
    yield {**base, "time": "2025-03-04T05:12:30Z"}
    yield {**base, "time": "2025-03-04t05:12:30.5z", "traceparent": "00-ab-cd-01", "retries": 3, "replayed": False}
    yield {**base, "source": "urn:tawasul:crm", "data": {**base["data"], "sub_category": ["x", 1]}}
    yield {**base, "data": {**base["data"], "location": None, "department": None}}
    survey = example_event("survey.submitted").to_dict()
    yield {**survey, "data": {"channel": "call", "score": 3, "scale": 3}}
    yield {**survey, "data": {"channel": "call", "score": 5}}
    kpi = example_event("kpi.snapshot").to_dict()
    yield {**kpi, "data": {**kpi["data"], "value": None, "count": 0, "scope": {}}}


VALID = [*_examples(), *_valid_variants()]


def _mutate(event_type: str, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    raw = copy.deepcopy(example_event(event_type).to_dict())
    change(raw)
    return raw


INVALID: dict[str, dict[str, Any]] = {
    "missing id": _mutate("ticket.opened", lambda r: r.pop("id")),
    "missing data": _mutate("ticket.closed", lambda r: r.pop("data")),
    "missing subject": _mutate("call.offered", lambda r: r.pop("subject")),
    "empty subject": _mutate("call.offered", lambda r: r.update(subject="")),
    "blank id": _mutate("visit.called", lambda r: r.update(id="   ")),
    "specversion": _mutate("ticket.opened", lambda r: r.update(specversion="0.3")),
    "unknown type": _mutate("ticket.opened", lambda r: r.update(type="ticket.deleted")),
    "time without offset": _mutate("ticket.opened", lambda r: r.update(time="2025-03-04T09:12:30")),
    "time as number": _mutate("ticket.opened", lambda r: r.update(time=1741065150)),
    "time month 13": _mutate("ticket.opened", lambda r: r.update(time="2025-13-04T09:12:30Z")),
    "source with space": _mutate("ticket.opened", lambda r: r.update(source="/a b")),
    "empty source": _mutate("ticket.opened", lambda r: r.update(source="")),
    "content type": _mutate("ticket.opened", lambda r: r.update(datacontenttype="text/plain")),
    "dataschema v2": _mutate("ticket.opened", lambda r: r.update(dataschema="urn:tawasul:schema:ticket.opened:2")),
    "dataschema other type": _mutate(
        "ticket.opened", lambda r: r.update(dataschema="urn:tawasul:schema:ticket.closed:1")
    ),
    "dataschema url": _mutate("ticket.opened", lambda r: r.update(dataschema="https://example.org/x.json")),
    "extension name": _mutate("ticket.opened", lambda r: r.update(TraceParent="x")),
    "extension object": _mutate("ticket.opened", lambda r: r.update(trace={"a": 1})),
    "data_base64": _mutate("ticket.opened", lambda r: r.update(data_base64="AAAA")),
    "data array": _mutate("ticket.closed", lambda r: r.update(data=[])),
    "wrong priority": _mutate("ticket.opened", lambda r: r["data"].update(priority="critical")),
    "wrong channel": _mutate("ticket.opened", lambda r: r["data"].update(channel="fax")),
    "missing category": _mutate("ticket.opened", lambda r: r["data"].pop("category")),
    "blank category": _mutate("ticket.opened", lambda r: r["data"].update(category=" ")),
    "location string": _mutate("ticket.opened", lambda r: r["data"].update(location="Deira")),
    "missing reason": _mutate("ticket.paused", lambda r: r["data"].pop("reason")),
    "language": _mutate("call.offered", lambda r: r["data"].update(language="fr")),
    "agent missing": _mutate("call.answered", lambda r: r["data"].pop("agent")),
    "negative wrap-up": _mutate("call.ended", lambda r: r["data"].update(wrap_up_seconds=-1)),
    "wrap-up text": _mutate("call.ended", lambda r: r["data"].update(wrap_up_seconds="35")),
    "counter number": _mutate("visit.called", lambda r: r["data"].update(counter=7)),
    "score above 3-point scale": _mutate("survey.submitted", lambda r: r["data"].update(score=4, scale=3)),
    "score above 5": _mutate("survey.submitted", lambda r: r["data"].update(score=6)),
    "score zero": _mutate("survey.submitted", lambda r: r["data"].update(score=0)),
    "score text": _mutate("survey.submitted", lambda r: r["data"].update(score="5")),
    "scale 4": _mutate("survey.submitted", lambda r: r["data"].update(scale=4)),
    "sla target": _mutate("sla.breached", lambda r: r["data"].update(target="closure")),
    "sla deadline no offset": _mutate("sla.met", lambda r: r["data"].update(deadline="2025-03-04T13:00:00")),
    "kpi value text": _mutate("kpi.snapshot", lambda r: r["data"].update(value="high")),
    "kpi scope number": _mutate("kpi.snapshot", lambda r: r["data"].update(scope={"queue": 1})),
    "kpi count negative": _mutate("kpi.snapshot", lambda r: r["data"].update(count=-1)),
    "kpi without value": _mutate("kpi.snapshot", lambda r: r["data"].pop("value")),
}


@pytest.mark.parametrize("raw", VALID, ids=[f"{r['type']}-{i}" for i, r in enumerate(VALID)])
def test_valid_samples_pass_parse_and_schemas(raw: dict[str, Any]) -> None:
    assert parse_accepts(raw)
    errors = [e.message for e in validator("event.schema.json").iter_errors(raw)]
    assert errors == []
    assert schema_accepts(f"{raw['type']}.schema.json", raw["data"])


@pytest.mark.parametrize("raw", list(INVALID.values()), ids=list(INVALID))
def test_invalid_samples_fail_parse_and_event_schema(raw: dict[str, Any]) -> None:
    assert not parse_accepts(raw)
    assert not schema_accepts("event.schema.json", raw)


@pytest.mark.parametrize(
    "case",
    [name for name, raw in INVALID.items() if raw.get("type") in EVENT_TYPES and isinstance(raw.get("data"), dict)],
)
def test_data_schema_agrees_with_the_data_model(case: str) -> None:
    raw = INVALID[case]
    model = data_model(raw["type"])
    try:
        model.model_validate(raw["data"])
        model_accepts = True
    except ValueError:
        model_accepts = False
    assert schema_accepts(f"{raw['type']}.schema.json", raw["data"]) is model_accepts


# ----------------------------------------------------------------------------- catalogue


def _catalogue() -> tuple[dict[str, tuple[Any, str]], list[Any]]:
    """Type -> (its example `data`, its section text); plus the whole-event examples."""
    per_type: dict[str, tuple[Any, str]] = {}
    events: list[Any] = []
    pending: list[str] = []
    section: list[str] = []
    block: list[str] | None = None
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        if block is not None:
            if line.startswith("```"):
                value = json.loads("\n".join(block))
                if pending:
                    per_type.update({t: (value, "\n".join(section)) for t in pending})
                elif isinstance(value, dict) and "specversion" in value:
                    events.append(value)
                pending, section, block = [], [], None
            else:
                block.append(line)
        elif line.startswith("```json"):
            block = []
        elif line.startswith("### `"):
            pending.append(line.removeprefix("### `").rstrip("`"))
        elif line.startswith("## "):
            assert not pending, f"no example for {pending}"
            section = []
        else:
            section.append(line)
    return per_type, events


def test_catalogue_documents_every_type_with_its_fields() -> None:
    per_type, _ = _catalogue()
    assert set(per_type) == set(EVENT_TYPES)
    for event_type, (_, text) in per_type.items():
        for field in data_model(event_type).model_fields:
            assert f"`{field}`" in text, f"{event_type}: field {field} not documented"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_catalogue_examples_are_valid(event_type: str) -> None:
    per_type, _ = _catalogue()
    data = per_type[event_type][0]
    raw = {**example_event(event_type).to_dict(), "data": data}
    assert parse_event(raw).to_dict()["data"] == data
    assert schema_accepts("event.schema.json", raw)


def test_catalogue_event_examples_are_valid() -> None:
    _, events = _catalogue()
    assert events
    for raw in events:
        assert parse_event(raw).to_dict() == raw
        assert schema_accepts("event.schema.json", raw)

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import schemas
from producers.csv_import import (
    DEFAULT_SOURCE,
    CsvImportError,
    CsvMapping,
    load_mapping,
    read_csv_events,
)
from producers.queue_log import AdapterError
from tawasul.infra.pseudonymise import Pseudonymiser

DATA = Path(__file__).resolve().parents[1] / "data" / "csv"
PS = Pseudonymiser(b"csv-import-test-key-0123456789")

Result = dict[str, Any] | AdapterError


def read(path: Path, **kwargs: Any) -> list[tuple[int, Result]]:
    return list(read_csv_events(path, **kwargs))


def only_events(results: list[tuple[int, Result]]) -> dict[int, dict[str, Any]]:
    assert not [r for _, r in results if isinstance(r, AdapterError)]
    return {n: r for n, r in results if isinstance(r, dict)}


def test_default_columns_give_valid_events() -> None:
    events = only_events(read(DATA / "events.csv"))
    assert sorted(events) == [2, 3, 4, 5, 6, 7, 8, 10]  # the quoted comment of line 8 spans two lines
    for event in events.values():
        schemas.parse_event(event)
    opened = events[2]
    assert opened == {
        "specversion": "1.0",
        "id": "hist-0001",
        "source": "/channels/crm",
        "type": "ticket.opened",
        "time": "2025-05-13T08:10:00+04:00",
        "subject": "CRM-250513-0001",
        "datacontenttype": "application/json",
        "data": {
            "channel": "crm",
            "kind": "facility_report",
            "category": "mosque.air_conditioning",
            "priority": "high",
            "location": {"mosque_id": "MSQ-0412", "area": "Al Barsha"},
        },
    }
    assert events[3]["data"] == {}  # empty cells are absent
    survey = events[6]
    assert survey["data"] == {"channel": "crm", "score": 4, "scale": 5, "comment": "Quick fix, thank you"}
    assert survey["source"] == DEFAULT_SOURCE  # empty source cell
    assert events[7]["data"]["wrap_up_seconds"] == 30
    assert events[8]["data"]["comment"] == "الخدمة ممتازة\nشكراً لكم"
    assert events[8]["data"]["scale"] == 3


def test_source_default_is_configurable() -> None:
    events = only_events(read(DATA / "events.csv", source="/import/history-2024"))
    assert events[6]["source"] == "/import/history-2024"
    assert events[2]["source"] == "/channels/crm"


def test_mapping_file_for_other_headers() -> None:
    results = read(DATA / "crm_export.csv", mapping=DATA / "crm_export_mapping.yaml", pseudonymiser=PS)
    events = only_events(results)
    assert sorted(events) == [2, 3, 4, 5]
    for event in events.values():
        schemas.parse_event(event)
    assert [e["type"] for e in events.values()] == [
        "ticket.opened",
        "ticket.acknowledged",
        "ticket.opened",
        "ticket.resolved",
    ]
    first = events[2]
    assert first["id"] == "crm-ev-1" and first["subject"] == "REQ-77001" and first["source"] == "/channels/crm"
    assert first["time"] == "2025-05-13T08:15:00+04:00"  # local time given the mapping's zone
    assert events[4]["time"] == "2025-05-13T09:00:00+04:00"  # an offset already there is kept
    assert first["data"]["kind"] == "facility_report"
    assert first["data"]["location"] == {"mosque_id": "MSQ-0033", "area": "Jumeirah"}
    assert first["data"]["customer_ref"] == PS.ref("050 123 4567")
    assert events[3]["data"] == {}
    serialised = json.dumps(list(events.values()), ensure_ascii=False)
    for personal in ("050 123 4567", "0501234567", "00971501234567", "971501234567", "Fatima", "Khalid"):
        assert personal not in serialised


def test_mapping_asking_for_pseudonymisation_needs_a_key() -> None:
    with pytest.raises(CsvImportError, match="pseudonymis"):
        read_csv_events(DATA / "crm_export.csv", mapping=DATA / "crm_export_mapping.yaml")


def test_bad_rows_are_reported_and_good_rows_kept() -> None:
    results = dict(read(DATA / "bad_rows.csv"))
    assert sorted(results) == [2, 3, 4, 5, 6, 8, 9]  # line 7 is blank
    errors = {n: r.reason for n, r in results.items() if isinstance(r, AdapterError)}
    assert errors == {
        3: "expected 7 columns, found 8",
        4: "data.score is not an integer",
        5: "required attribute(s) id empty",
        8: "expected 7 columns, found 3",
    }
    assert all(isinstance(results[n], AdapterError) and results[n].line_no == n for n in errors)  # type: ignore[union-attr]
    assert results[2]["data"] == {"channel": "crm", "score": 5, "scale": 5}  # type: ignore[index]
    assert results[9]["data"] == {"channel": "crm"}  # type: ignore[index]
    schemas.parse_event(results[6])


def test_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    with_bom = tmp_path / "bom.csv"
    with_bom.write_bytes(b"\xef\xbb\xbf" + (DATA / "events.csv").read_bytes())
    assert read(with_bom) == read(DATA / "events.csv")


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    ((line_no, error),) = read(empty)
    assert line_no == 1 and isinstance(error, AdapterError) and "empty file" in error.reason
    header_only = tmp_path / "header.csv"
    header_only.write_text("id,type,time,subject,data.channel\n", encoding="utf-8")
    calls: list[tuple[int, int]] = []
    assert read(header_only, progress=lambda done, total: calls.append((done, total))) == []
    assert calls == [(header_only.stat().st_size, header_only.stat().st_size)]


def test_non_utf8_bytes_fail_only_their_row(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        b"id,type,time,subject,data.channel,data.comment\n"
        b"r1,survey.submitted,2025-05-13T12:00:00+04:00,T-1,crm,fine\n"
        b"r2,survey.submitted,2025-05-13T12:01:00+04:00,T-2,crm,caf\xe9 \xff\n"
        b"r3,survey.submitted,2025-05-13T12:02:00+04:00,T-3,crm,\xd8\xb4\xd9\x83\xd8\xb1\xd8\xa7\n"
    )
    results = dict(read(path))
    assert isinstance(results[3], AdapterError) and results[3].reason == "data.comment is not valid UTF-8"
    assert results[2]["data"]["comment"] == "fine"  # type: ignore[index]
    assert results[4]["data"]["comment"] == "شكرا"  # type: ignore[index]


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("id,type,time,subject,channel", "unknown column(s) 'channel'"),
        ("id,type,subject,data.channel", "missing required column(s): time"),
        ("id,type,time,subject,data.location,data.location.area", "data.location cannot be both"),
        ("id,type,time,subject,subject", "more than one column for subject"),
    ],
)
def test_bad_header_is_one_error(tmp_path: Path, header: str, fragment: str) -> None:
    path = tmp_path / "bad_header.csv"
    path.write_text(header + "\nx,ticket.opened,2025-05-13T08:00:00+04:00,T-1,crm,y\n", encoding="utf-8")
    ((line_no, error),) = read(path)
    assert line_no == 1 and isinstance(error, AdapterError) and fragment in error.reason


def test_flat_mapping_file_and_ignored_columns(tmp_path: Path) -> None:
    mapping = tmp_path / "map.yaml"
    mapping.write_text("Ref: subject\nEvent: type\nAt: time\nKey: id\nScore: data.score\nVia: data.channel\n")
    path = tmp_path / "survey.csv"
    path.write_text(
        "Key,Ref,Event,At,Score,Via,Caller\nk1,T-9,survey.submitted,2025-05-13T09:00:00Z,5,web,0501112222\n"
    )
    ((line_no, event),) = read(path, mapping=mapping)
    assert line_no == 2
    assert isinstance(event, dict)
    assert event["data"] == {"score": 5, "channel": "web"}
    assert "0501112222" not in json.dumps(event)
    schemas.parse_event(event)


def test_derived_ids_are_stable_and_distinct(tmp_path: Path) -> None:
    mapping = CsvMapping(
        columns={"ticket": "subject", "what": "type", "when": "time"},
        constants={"source": "/import/legacy"},
        derive_id=True,
        timezone="Asia/Dubai",
    )
    path = tmp_path / "legacy.csv"
    path.write_text(
        "ticket,what,when\n"
        "T-1,ticket.acknowledged,2025-05-13 08:00\n"
        "T-1,ticket.closed,2025-05-13 09:00\n"
        "T-2,ticket.closed,not a time\n"
    )
    first, second = read(path, mapping=mapping), read(path, mapping=mapping)
    assert first == second
    ids = [r["id"] for _, r in first if isinstance(r, dict)]
    assert len(ids) == 2 and len(set(ids)) == 2
    assert first[0][1]["source"] == "/import/legacy"  # type: ignore[index]
    assert first[0][1]["time"] == "2025-05-13T08:00:00+04:00"  # type: ignore[index]
    assert isinstance(first[2][1], AdapterError) and "time is not an ISO 8601" in first[2][1].reason


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("columns: {A: subjects}\n", "not an event attribute"),
        ("columns: {A: subject}\nfrobnicate: 1\n", "unknown keys frobnicate"),
        ("columns: {A: subject}\ntimezone: Nowhere/City\n", "unknown time zone"),
        ("columns: {A: subject}\ndelimiter: ';;'\n", "single character"),
        ("- a\n- b\n", "non-empty YAML mapping"),
        ("columns: {A: subject}\npseudonymise: data.customer_ref\n", "must be a list"),
    ],
)
def test_bad_mapping_files(tmp_path: Path, text: str, fragment: str) -> None:
    mapping = tmp_path / "map.yaml"
    mapping.write_text(text)
    with pytest.raises(CsvImportError, match=fragment):
        load_mapping(mapping)


def test_streams_with_progress(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("id,type,time,subject,data.channel,data.score,data.scale,data.comment\n")
        for i in range(6000):
            handle.write(f"s-{i},survey.submitted,2025-05-13T12:00:00+04:00,T-{i},crm,{i % 5 + 1},5,row {i} ok\n")
    total = path.stat().st_size
    calls: list[tuple[int, int]] = []
    results = read_csv_events(path, progress=lambda done, size: calls.append((done, size)))
    line_no, first = next(results)
    assert line_no == 2 and isinstance(first, dict)
    assert not calls or calls[-1][0] < total  # lazily read: not the whole file for the first row
    count = 1 + sum(1 for _ in results)
    assert count == 6000
    assert len(calls) > 3
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert calls[-1] == (total, total)
    assert all(size == total for _, size in calls)

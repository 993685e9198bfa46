"""Time bounds at every entry: the schema refuses times before 2000 (and from 2100 on), intake
refuses times more than the allowed skew ahead of the receiving clock (none for history)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from producers.intake import (
    DEFAULT_MAX_CLOCK_SKEW,
    ENV_MAX_CLOCK_SKEW,
    Accepted,
    Rejected,
    SkewSettingError,
    accept_line,
    accept_object,
    max_clock_skew,
)
from producers.lines import judge_chunk
from schemas import InvalidEvent, decode_event, new_event, parse_event
from schemas.fields import TIME_RANGE_MESSAGE
from sinks.db.decoding import decode_input, decode_pipeline_event


def event(time: str, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "specversion": "1.0",
        "id": "ev-1",
        "source": "/channels/crm",
        "type": "ticket.opened",
        "time": time,
        "subject": "CRM-1",
        "data": {"channel": "crm", "kind": "request", "category": "mosque.cleaning", "priority": "high"},
    }
    return {**base, **changes}


def line(time: str) -> bytes:
    return json.dumps(event(time), separators=(",", ":")).encode()


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


OUT_OF_RANGE = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-04:00",
    "9999-12-31T23:59:59Z",
    "1999-12-31T23:59:59Z",
    "2000-01-01T03:59:59+04:00",
    "2100-01-01T00:00:00Z",
]


@pytest.mark.parametrize("time", OUT_OF_RANGE)
def test_the_schema_refuses_times_outside_2000_to_2100_naming_time(time: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(event(time))
    assert [(e.field, e.message) for e in caught.value.errors] == [("time", TIME_RANGE_MESSAGE)]
    with pytest.raises(InvalidEvent, match="^time: must lie on or after 2000-01-01"):
        decode_event(line(time))


@pytest.mark.parametrize("time", ["2000-01-01T00:00:00Z", "2000-01-01T04:00:00+04:00", "2099-12-31T23:59:59Z"])
def test_the_bounds_themselves_are_inside(time: str) -> None:
    assert parse_event(event(time)).time == datetime.fromisoformat(time.replace("Z", "+00:00"))


@pytest.mark.parametrize("time", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59-04:00"])
def test_every_decoder_refuses_them_the_sinks_fast_path_and_an_outcomes_deadline(time: str) -> None:
    with pytest.raises(InvalidEvent, match="^time: must lie"):
        decode_input(line(time))
    outcome = new_event(
        "sla.breached",
        "CRM-1",
        "2025-05-13T08:10:00Z",
        {
            "ticket_id": "CRM-1",
            "target": "resolution",
            "policy": "p",
            "deadline": "2025-05-14T08:10:00Z",
            "channel": "crm",
            "kind": "request",
            "category": "c",
            "priority": "high",
        },
        source="/tawasul/sla",
    ).to_dict()
    outcome["data"]["deadline"] = time
    with pytest.raises(InvalidEvent, match="data.deadline: must lie"):
        decode_pipeline_event(json.dumps(outcome).encode())


@pytest.mark.parametrize("time", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59-04:00"])
def test_intake_dead_letters_them_with_category_time(time: str) -> None:
    outcome = accept_line(line(time), "events.jsonl:1", None)
    assert isinstance(outcome, Rejected)
    assert outcome.category == "time" and outcome.reason.startswith("time: must lie on or after 2000-01-01")
    assert outcome.letter.original == line(time)


def test_an_event_more_than_the_skew_ahead_is_refused_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_MAX_CLOCK_SKEW, raising=False)
    now = datetime.now(UTC)
    ahead = line(iso(now + timedelta(minutes=10)))
    outcome = accept_line(ahead, "http:r1", None)
    assert isinstance(outcome, Rejected) and outcome.category == "time"
    assert outcome.reason.startswith("time: ") and "more than 5m ahead of the receiving clock" in outcome.reason
    assert ENV_MAX_CLOCK_SKEW in outcome.reason
    rejected = accept_object(event(iso(now + timedelta(minutes=10))), "http:r1#0", None)
    assert isinstance(rejected, Rejected) and rejected.category == "time"
    # within the skew, and anything in the past, is fine
    assert isinstance(accept_line(line(iso(now + timedelta(minutes=4))), "x", None), Accepted)
    assert isinstance(accept_line(line("2001-01-01T00:00:00Z"), "x", None), Accepted)


def test_the_skew_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    ahead = line(iso(datetime.now(UTC) + timedelta(minutes=30)))
    monkeypatch.setenv(ENV_MAX_CLOCK_SKEW, "1h")
    assert max_clock_skew() == timedelta(hours=1)
    assert isinstance(accept_line(ahead, "x", None), Accepted)
    monkeypatch.setenv(ENV_MAX_CLOCK_SKEW, "60")
    assert isinstance(accept_line(ahead, "x", None), Rejected)
    monkeypatch.setenv(ENV_MAX_CLOCK_SKEW, "none")
    assert max_clock_skew() is None
    assert isinstance(accept_line(ahead, "x", None), Accepted)
    assert max_clock_skew({}) == DEFAULT_MAX_CLOCK_SKEW == timedelta(minutes=5)
    with pytest.raises(SkewSettingError, match=f"^{ENV_MAX_CLOCK_SKEW}='soon': must be a duration"):
        max_clock_skew({ENV_MAX_CLOCK_SKEW: "soon"})


def test_history_has_no_skew_bound_but_keeps_the_schema_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_MAX_CLOCK_SKEW, raising=False)
    future = line("2090-06-01T08:00:00+04:00")
    assert isinstance(accept_line(future, "x", None, None), Accepted)
    assert isinstance(accept_line(future, "x", None), Rejected)
    chunk = [(1, future, -1), (2, line("9999-01-01T00:00:00Z"), -1)]
    history = judge_chunk("replay.jsonl", chunk, None, None)
    live = judge_chunk("live.jsonl", chunk, None)
    assert len(history[0]) == 5  # published
    assert history[1][1].category == "time" and live[0][1].category == "time"  # type: ignore[index,union-attr]


@pytest.mark.parametrize(
    ("text", "inside"),
    [
        ("1999-12-31T20:30:00-03:30", True),  # 2000-01-01T00:00Z: the first instant allowed
        ("1999-12-31T20:29:59-03:30", False),
        ("2100-01-01T01:00:00+02:00", True),  # 2099-12-31T23:00Z
        ("2100-01-01T02:00:00+02:00", False),  # 2100-01-01T00:00Z: the first instant refused
    ],
)
def test_a_local_year_beside_a_bound_is_judged_by_its_instant(text: str, inside: bool) -> None:
    event = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/t",
        "type": "ticket.acknowledged",
        "time": text,
        "subject": "T-1",
        "data": {},
    }
    if inside:
        assert parse_event(event).time == datetime.fromisoformat(text)
    else:
        with pytest.raises(InvalidEvent, match="time: must lie on or after 2000-01-01"):
            parse_event(event)

"""`tawasul publish` on the real broker: an event more than the allowed skew ahead of the clock
is refused (line reason naming `time`, dead-lettered), unless `--history`; years 0001 and 9999
are refused either way."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from producers.publish_cmd import publish
from tawasul.infra.deadletter import decode_dead_letter
from tawasul.infra.topics import DEAD_LETTER, EVENTS
from tests.support.kafka import read_all, unique

pytestmark = pytest.mark.kafka


def line(time: str) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": unique("ev"),
            "source": "/channels/crm",
            "type": "ticket.acknowledged",
            "time": time,
            "subject": "CRM-1",
            "data": {},
        }
    ).encode()


@pytest.mark.parametrize("history", [False, True], ids=["live", "history"])
def test_publish_applies_the_skew_bound_unless_history(kafka_bootstrap: str, tmp_path: Path, history: bool) -> None:
    prefix = unique("t-skew-")
    ahead = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    lines = [
        line("2025-05-13T08:10:00+04:00"),
        line(ahead),
        line("0001-01-01T00:00:00Z"),
        line("9999-12-31T23:59:59-04:00"),
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines))
    environment = {"TAWASUL_KAFKA": kafka_bootstrap, "TAWASUL_TOPIC_PREFIX": prefix, "TAWASUL_MAX_CLOCK_SKEW": "5m"}

    result = CliRunner().invoke(publish, [str(path), *(["--history"] if history else [])], env=environment)

    assert result.exit_code == 1, result.output
    reasons = result.stdout.splitlines()
    published = {value for _t, _p, _k, value in read_all(kafka_bootstrap, [f"{prefix}{EVENTS.name}"])}
    letters = [decode_dead_letter(v) for _t, _p, _k, v in read_all(kafka_bootstrap, [f"{prefix}{DEAD_LETTER.name}"])]
    refused_range = [
        "line 3: time: must lie on or after 2000-01-01T00:00:00Z and before 2100-01-01T00:00:00Z",
        "line 4: time: must lie on or after 2000-01-01T00:00:00Z and before 2100-01-01T00:00:00Z",
    ]
    if history:
        assert reasons == refused_range
        assert published == {lines[0], lines[1]}
    else:
        assert reasons[0].startswith("line 2: time: ") and "more than 5m ahead of the receiving clock" in reasons[0]
        assert reasons[1:] == refused_range
        assert published == {lines[0]}
    assert sorted(letter.original for letter in letters) == sorted(set(lines) - published)
    assert all(letter.reason.startswith("time: ") for letter in letters)

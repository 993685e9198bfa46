"""Poison events become dead letters naming the exception; replay markers name their run."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from stream_processors.clock import read_tick, tick_run, watermark_message
from stream_processors.poison import MAX_REASON_CHARS, poison_letter
from tawasul.infra.deadletter import decode_dead_letter


def test_a_poison_letter_names_the_stage_and_the_exception_and_keeps_the_event() -> None:
    original = json.dumps(
        {"id": "e-1", "type": "ticket.opened", "time": "9999-12-31T23:59:59Z", "data": {"caller_ref": "+971501234567"}}
    ).encode()
    letter = poison_letter(original, "sla", OverflowError("date value out of range"), "tawasul.events:3:41")
    assert letter.reason == "sla: OverflowError: date value out of range"
    assert letter.origin == "tawasul.events:3:41"
    back = decode_dead_letter(letter.to_json())
    assert json.loads(back.original)["time"] == "9999-12-31T23:59:59Z"
    assert "+971501234567" not in (back.text or "")  # phone numbers never reach a dead letter
    long = poison_letter(b"{}", "kpi", ValueError("x" * 5000), "o")
    assert len(long.reason) == MAX_REASON_CHARS and long.reason.startswith("kpi: ValueError: xx")


def test_replay_markers_carry_their_run() -> None:
    at = datetime(2025, 3, 4, 10, tzinfo=UTC)
    marker = watermark_message(at, 7, run="replay-abc.")
    assert tick_run(marker) == "replay-abc." and read_tick(marker)[2] == 7
    assert tick_run(watermark_message(at, 7)) is None
    assert tick_run(b'{"kind":"tick"}') is None

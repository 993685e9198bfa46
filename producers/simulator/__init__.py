"""Calibrated traffic simulator: calls, tickets, walk-in visits and surveys as CloudEvents.

Public API: `Params`, `Calibration`, `iter_events(params)`, `pace(events, speed, clock)`,
`disorder(events, seconds, seed)`, `write_jsonl(params, out, ...)`, `parse_when(text)`.
"""

from __future__ import annotations

from .generate import iter_events
from .output import to_json_line, write_jsonl
from .pacing import Clock, disorder, pace
from .params import DUBAI, Calibration, KindTarget, Params, SimulatorError, parse_when

__all__ = [
    "DUBAI",
    "Calibration",
    "Clock",
    "KindTarget",
    "Params",
    "SimulatorError",
    "disorder",
    "iter_events",
    "pace",
    "parse_when",
    "to_json_line",
    "write_jsonl",
]

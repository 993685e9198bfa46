"""What every processor of the faust app shares: settings, mode, policies, metrics, input topics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import faust

from tawasul.domain.policies import PolicyBook
from tawasul.infra.metrics import Metrics
from tawasul.infra.settings import Settings

Mode = Literal["live", "replay"]


@dataclass(frozen=True)
class ProcessorContext:
    """Handed to each registrar. `events` is the shared input topic (`tawasul.events`, raw
    bytes, key = subject); `ticks` is the internal `tawasul.sla.ticks` topic, which also carries
    the replay driver's end-of-input watermarks (`{"kind": "watermark", "time": RFC 3339}`)."""

    settings: Settings
    mode: Mode
    lateness: timedelta
    book: PolicyBook
    metrics: Metrics
    events: faust.TopicT
    ticks: faust.TopicT


Registrar = Callable[[faust.App, ProcessorContext], object]
"""Adds agents, tables or timers to the app (the SLA engine is one, the KPI processor another)."""

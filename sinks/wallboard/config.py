"""What the wall display shows and when it calls figures on target, at risk or breached."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo

TIMEZONE: Final = "Asia/Dubai"

ON_TARGET: Final = "on_target"
AT_RISK: Final = "at_risk"
BREACHED: Final = "breached"
NO_TARGET: Final = "none"

_SATISFACTION: Final = MappingProxyType({"call": 0.98, "crm": 0.93})


class WallboardError(RuntimeError):
    """The wall display cannot read its data."""


@dataclass(frozen=True)
class Band:
    """A target and the tolerance before a figure counts as breached.

    `higher_is_better`: on target at or above `target`, at risk down to `target - tolerance`.
    Otherwise on target at or below `target`, at risk up to `target + tolerance`.
    """

    target: float
    tolerance: float
    higher_is_better: bool = True

    def status(self, value: float | None) -> str:
        if value is None:
            return NO_TARGET
        if self.higher_is_better:
            if value >= self.target:
                return ON_TARGET
            return AT_RISK if value >= self.target - self.tolerance else BREACHED
        if value <= self.target:
            return ON_TARGET
        return AT_RISK if value <= self.target + self.tolerance else BREACHED


@dataclass(frozen=True)
class Targets:
    """The department's targets: satisfaction 98 % for calls and 93 % for CRM (the H1 2025 report)."""

    satisfaction: Mapping[str, float] = field(default_factory=lambda: _SATISFACTION)
    satisfaction_tolerance: float = 0.02
    service_level: Band = Band(0.80, 0.10)
    asa_seconds: Band = Band(30.0, 30.0, higher_is_better=False)
    abandon_ratio: Band = Band(0.05, 0.05, higher_is_better=False)
    call_wait_seconds: Band = Band(60.0, 120.0, higher_is_better=False)
    visit_wait_seconds: Band = Band(900.0, 900.0, higher_is_better=False)

    def satisfaction_band(self, channel: str) -> Band | None:
        target = self.satisfaction.get(channel)
        return None if target is None else Band(target, self.satisfaction_tolerance)


LANGUAGES: Final = ("both", "ar", "en")
"""`?lang=` values: the bilingual board (default), Arabic only (right to left), English only."""
DIGITS: Final = ("latn", "arab")
"""`?digits=` values: Western digits (default) or Arabic-Indic digits."""


@dataclass(frozen=True)
class WallboardConfig:
    """Where the data is and how the page behaves."""

    database_url: str
    window: str = "today"
    """The KPI window shown for service level, ASA, abandon ratio and satisfaction."""
    refresh_seconds: float = 10.0
    """How often the board is recomputed without new data (waits and "late by" move with the clock)."""
    change_poll_seconds: float = 0.2
    """SQLite: how often `PRAGMA data_version` is read to learn of the sink's commits."""
    min_push_seconds: float = 0.2
    """Shortest time between two recomputed boards (a burst of commits makes one board)."""
    keepalive_seconds: float = 5.0
    """A server-sent `ping` this often; the page calls the connection lost after three missed."""
    stale_after_seconds: float = 300.0
    """The data counts as stale when the newest figure is older than this."""
    token: str | None = None
    """Bearer token required for the page, its API and its event stream (`TAWASUL_WALLBOARD_TOKEN`)."""
    breaches_shown: int = 8
    max_wait: timedelta = timedelta(hours=4)
    """Calls and visits waiting longer than this are taken as lost records, not as waiting."""
    timezone: str = TIMEZONE
    targets: Targets = field(default_factory=Targets)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

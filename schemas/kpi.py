"""`data` of `kpi.snapshot`, the KPI windows the stream processors publish."""

from __future__ import annotations

from schemas.base import EventData
from schemas.fields import Count, Name, Number, Text, Timestamp


class KpiSnapshotData(EventData):
    """The value of one figure over one window at one moment."""

    figure: Name
    """E.g. `calls.service_level`."""
    window: Name
    """E.g. `15m`, `today`."""
    scope: dict[str, Text]
    """What the figure is restricted to, e.g. `{"channel": "crm"}`; `{}` for all."""
    value: Number | None
    """The figure, or null when its denominator is 0."""
    count: Count | None = None
    """The denominator or sample size behind the value."""
    as_of: Timestamp
    """Event time the snapshot reflects."""

"""Arrival-intensity profiles: relative arrival levels by time of day for each day type.

A profile maps a day to segments `(start_minute, end_minute, level)`; the level is the
relative arrival intensity per minute (1.0 = a busy working-day hour). Days without
segments are closed.
"""

from __future__ import annotations

from .days import DayInfo, DayKind

Segment = tuple[int, int, float]
Table = dict[DayKind, tuple[Segment, ...]]


def _h(hours: float) -> int:
    return round(hours * 60)


def _seg(start: float, end: float, level: float) -> Segment:
    return (_h(start), _h(end), level)


OFFICE: Table = {
    DayKind.WORKDAY: (_seg(7.5, 9, 0.8), _seg(9, 12, 1.3), _seg(12, 14, 1.0), _seg(14, 15.5, 0.6)),
    DayKind.FRIDAY: (_seg(7.5, 9, 0.8), _seg(9, 12, 1.1)),
}
OFFICE_RAMADAN: Table = {
    DayKind.WORKDAY: (_seg(9, 11, 0.9), _seg(11, 14.5, 0.8)),
    DayKind.FRIDAY: (_seg(9, 12, 0.8),),
}
CONTACT_CENTRE: Table = {
    DayKind.WORKDAY: (
        _seg(7, 8, 0.5),
        _seg(8, 10, 1.2),
        _seg(10, 13, 1.4),
        _seg(13, 16, 1.0),
        _seg(16, 19, 0.6),
        _seg(19, 21, 0.3),
    ),
    DayKind.FRIDAY: (_seg(7, 8, 0.5), _seg(8, 12, 1.2), _seg(12, 14, 0.4), _seg(14, 21, 0.45)),
    DayKind.WEEKEND: (_seg(8, 20, 0.3),),
    DayKind.HOLIDAY: (_seg(8, 20, 0.2),),
}
CONTACT_CENTRE_RAMADAN: Table = {
    DayKind.WORKDAY: (_seg(9, 12, 1.2), _seg(12, 16, 1.3), _seg(16, 18, 0.6), _seg(21, 24, 0.7)),
    DayKind.FRIDAY: (_seg(9, 12, 1.0), _seg(13, 18, 0.5), _seg(21, 24, 0.6)),
    DayKind.WEEKEND: (_seg(9, 18, 0.35), _seg(21, 24, 0.35)),
    DayKind.HOLIDAY: (_seg(9, 18, 0.2),),
}
_ONLINE_DAY = (
    _seg(0, 6, 0.1),
    _seg(6, 9, 0.6),
    _seg(9, 13, 1.0),
    _seg(13, 17, 0.9),
    _seg(17, 22, 1.0),
    _seg(22, 24, 0.4),
)
_ONLINE_RAMADAN_DAY = (
    _seg(0, 3, 0.5),
    _seg(3, 9, 0.1),
    _seg(9, 15, 0.8),
    _seg(15, 18, 0.5),
    _seg(18, 20, 0.3),
    _seg(20, 24, 1.0),
)
_ONLINE_DAY_FACTOR = {
    DayKind.WORKDAY: 1.0,
    DayKind.FRIDAY: 0.85,
    DayKind.WEEKEND: 0.6,
    DayKind.HOLIDAY: 0.5,
}

PROFILE_BY_CHANNEL: dict[str, str] = {
    "crm": "office",
    "walk_in": "office",
    "call": "contact_centre",
    "complaints_platform": "online",
    "web": "online",
    "app": "online",
    "email": "online",
    "social": "online",
}


def segments(profile: str, info: DayInfo) -> tuple[Segment, ...]:
    """The arrival segments of `profile` ("office", "contact_centre", "online") on a day."""
    if profile == "office":
        return (OFFICE_RAMADAN if info.ramadan else OFFICE).get(info.kind, ())
    if profile == "contact_centre":
        return (CONTACT_CENTRE_RAMADAN if info.ramadan else CONTACT_CENTRE).get(info.kind, ())
    if profile == "online":
        factor = _ONLINE_DAY_FACTOR[info.kind]
        base = _ONLINE_RAMADAN_DAY if info.ramadan else _ONLINE_DAY
        return tuple((start, end, level * factor) for start, end, level in base)
    raise ValueError(f"unknown profile {profile!r}")

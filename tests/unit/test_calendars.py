"""Business calendars: hand-computed cases for weekends, holidays, Ramadan, midnight, year ends."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tawasul.domain.calendars import BusinessCalendar, parse_range
from tawasul.domain.errors import CalendarError

DUBAI = ZoneInfo("Asia/Dubai")
WEEK = {
    "mon": ["07:30-15:30"],
    "tue": ["07:30-15:30"],
    "wed": ["07:30-15:30"],
    "thu": ["07:30-15:30"],
    "fri": ["07:30-12:00"],
}
RAMADAN = {
    "mon": ["09:00-14:30"],
    "tue": ["09:00-14:30"],
    "wed": ["09:00-14:30"],
    "thu": ["09:00-14:30"],
    "fri": ["09:00-12:00"],
}


def dubai(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=DUBAI)


@pytest.fixture(scope="module")
def gov() -> BusinessCalendar:
    return BusinessCalendar(
        name="gov", hours=WEEK, ramadan_hours=RAMADAN, holidays_country="AE", closed=[date(2025, 12, 3)]
    )


H = timedelta(hours=1)
M = timedelta(minutes=1)

ADD_CASES = [
    # start, business time, expected, why
    (dubai(2025, 2, 21, 11), 2 * H, dubai(2025, 2, 24, 8, 30), "short Friday, weekend closed"),
    (dubai(2025, 2, 21, 11), 1 * H, dubai(2025, 2, 21, 12), "ends exactly at closing: earliest instant"),
    (dubai(2025, 2, 28, 11), 2 * H, dubai(2025, 3, 3, 10), "Friday before Ramadan, Monday on Ramadan hours"),
    (dubai(2025, 2, 28, 11), 24 * H, dubai(2025, 3, 7, 10), "a Ramadan week: 1h + 4 x 5.5h + 1h"),
    (dubai(2025, 3, 27, 14), 4 * H, dubai(2025, 4, 2, 8), "end of Ramadan, Eid al-Fitr 30 Mar - 1 Apr"),
    (dubai(2025, 6, 4, 15), 1 * H, dubai(2025, 6, 9, 8), "Arafat Day and Eid al-Adha 5-8 Jun"),
    (dubai(2025, 11, 28, 11), 2 * H, dubai(2025, 12, 4, 8, 30), "National Day 1-2 Dec, extra closed 3 Dec"),
    (dubai(2025, 12, 31, 15), 1 * H, dubai(2026, 1, 2, 8), "year end and New Year's Day"),
    (dubai(2025, 2, 22, 10), 30 * M, dubai(2025, 2, 24, 8), "starts on a Saturday"),
    (dubai(2025, 2, 24, 23), 1 * H, dubai(2025, 2, 25, 8, 30), "starts before midnight"),
    (dubai(2025, 2, 24, 5), 8 * H, dubai(2025, 2, 24, 15, 30), "starts before opening: a whole day"),
    (dubai(2026, 2, 17, 15), 1 * H, dubai(2026, 2, 18, 9, 30), "into Ramadan 1447 (18 Feb 2026)"),
    (dubai(2025, 2, 22, 10), timedelta(0), dubai(2025, 2, 22, 10), "zero: the start, even when closed"),
]


@pytest.mark.parametrize(("start", "business", "expected", "why"), ADD_CASES, ids=[c[3] for c in ADD_CASES])
def test_add(gov: BusinessCalendar, start: datetime, business: timedelta, expected: datetime, why: str) -> None:
    result = gov.add(start, business)
    assert result == expected
    assert result.tzinfo == DUBAI
    assert gov.elapsed(start, result) == business


ELAPSED_CASES = [
    (dubai(2025, 2, 21, 11), dubai(2025, 2, 24, 8, 30), 2 * H, "over a weekend"),
    (dubai(2025, 2, 28), dubai(2025, 3, 1), 4 * H + 30 * M, "28 Feb 2025: a normal Friday"),
    (dubai(2025, 3, 3), dubai(2025, 3, 4), 5 * H + 30 * M, "3 Mar 2025: Ramadan Monday"),
    (dubai(2025, 3, 31), dubai(2025, 4, 1), timedelta(0), "31 Mar 2025: Eid al-Fitr holiday"),
    (dubai(2025, 4, 2), dubai(2025, 4, 3), 8 * H, "2 Apr 2025: normal hours again"),
    (dubai(2025, 3, 28), dubai(2025, 3, 29), 3 * H, "28 Mar 2025: Ramadan Friday"),
    (dubai(2026, 2, 17), dubai(2026, 2, 18), 8 * H, "17 Feb 2026: before Ramadan 1447"),
    (dubai(2026, 2, 18), dubai(2026, 2, 19), 5 * H + 30 * M, "18 Feb 2026: 1 Ramadan 1447"),
    (dubai(2025, 2, 24), dubai(2025, 3, 3), 36 * H + 30 * M, "a whole normal week"),
    (dubai(2025, 12, 1), dubai(2025, 12, 8), 12 * H + 30 * M, "National Day week with extra closed day"),
    (dubai(2025, 6, 2), dubai(2025, 6, 9), 24 * H, "Eid al-Adha week: Mon-Wed only"),
    (dubai(2025, 2, 24, 15), dubai(2025, 2, 25, 8), 1 * H, "across midnight"),
    (dubai(2025, 2, 25, 8), dubai(2025, 2, 24, 15), timedelta(0), "end before start"),
    (dubai(2025, 2, 24, 10), dubai(2025, 2, 24, 10), timedelta(0), "empty span"),
    (dubai(2025, 12, 31, 15), dubai(2026, 1, 2, 8), 1 * H, "across the year end"),
]


@pytest.mark.parametrize(("start", "end", "expected", "why"), ELAPSED_CASES, ids=[c[3] for c in ELAPSED_CASES])
def test_elapsed(gov: BusinessCalendar, start: datetime, end: datetime, expected: timedelta, why: str) -> None:
    assert gov.elapsed(start, end) == expected


def test_instants_in_other_offsets_are_the_same_instants(gov: BusinessCalendar) -> None:
    start = datetime.fromisoformat("2025-02-24T04:00:00+00:00")  # 08:00 in Dubai
    end = datetime.fromisoformat("2025-02-24T10:00:00Z")  # 14:00 in Dubai
    assert gov.elapsed(start, end) == 6 * H
    assert gov.add(start, 30 * M) == dubai(2025, 2, 24, 8, 30)


def test_exact_to_the_microsecond(gov: BusinessCalendar) -> None:
    start = dubai(2025, 2, 24, 9) + timedelta(microseconds=7)
    business = timedelta(hours=30, seconds=1, microseconds=5)
    assert gov.elapsed(start, gov.add(start, business)) == business


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2025, 1, 1), "New Year's Day"),
        (date(2025, 3, 30), "Eid al-Fitr"),
        (date(2025, 4, 1), "Eid al-Fitr"),
        (date(2025, 6, 5), "Arafat Day"),
        (date(2025, 6, 6), "Eid al-Adha"),
        (date(2025, 6, 27), "Islamic New Year"),
        (date(2025, 9, 5), "Prophet's Birthday"),
        (date(2025, 12, 2), "National Day"),
        (date(2026, 3, 20), "Eid al-Fitr"),
        (date(2026, 5, 26), "Arafat Day"),
        (date(2026, 5, 27), "Eid al-Adha"),
        (date(2026, 12, 2), "National Day"),
        (date(2025, 12, 3), "extra closed date"),
    ],
)
def test_holidays(gov: BusinessCalendar, day: date, name: str) -> None:
    assert gov.is_holiday(day), name
    assert gov.day_hours(day) == ()


def test_working_days_are_not_holidays(gov: BusinessCalendar) -> None:
    assert not gov.is_holiday(date(2025, 3, 27))
    assert gov.day_hours(date(2025, 4, 2)) == ((27000, 55800),)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 2, 28), False),
        (date(2025, 3, 1), True),
        (date(2025, 3, 29), True),
        (date(2025, 3, 30), False),
        (date(2026, 2, 17), False),
        (date(2026, 2, 18), True),
        (date(1900, 1, 1), False),
    ],
)
def test_ramadan_umm_al_qura(gov: BusinessCalendar, day: date, expected: bool) -> None:
    assert gov.is_ramadan(day) is expected


def test_workdays_reopen_a_listed_holiday() -> None:
    cal = BusinessCalendar(hours=WEEK, holidays_country="AE", workdays=[date(2025, 6, 27)])
    assert not cal.is_holiday(date(2025, 6, 27))
    assert cal.elapsed(dubai(2025, 6, 27), dubai(2025, 6, 28)) == 4 * H + 30 * M


def test_several_intervals_a_day() -> None:
    cal = BusinessCalendar(hours={"mon": ["13:00-15:30", "07:30-12:00"]})
    assert cal.add(dubai(2025, 2, 24, 11, 30), 1 * H) == dubai(2025, 2, 24, 13, 30)
    assert cal.elapsed(dubai(2025, 2, 24), dubai(2025, 2, 25)) == 7 * H
    assert cal.add(dubai(2025, 2, 24, 15), 2 * H) == dubai(2025, 3, 3, 9)
    assert not cal.is_open(dubai(2025, 2, 24, 12, 30))
    assert cal.is_open(dubai(2025, 2, 24, 13))


def test_always_open_is_wall_time() -> None:
    cal = BusinessCalendar(always_open=True)
    start = dubai(2025, 3, 30, 22)  # Eid al-Fitr, night
    assert cal.add(start, 4 * H) == dubai(2025, 3, 31, 2)
    assert cal.elapsed(start, dubai(2025, 4, 1, 22)) == timedelta(days=2)
    assert cal.add(start, 4 * H).tzinfo == DUBAI


def test_other_time_zone_with_daylight_saving() -> None:
    london = ZoneInfo("Europe/London")
    cal = BusinessCalendar(timezone="Europe/London", hours={"fri": ["09:00-17:00"], "mon": ["09:00-17:00"]})
    start = datetime(2025, 3, 28, 16, tzinfo=london)  # clocks go forward on Sunday 30 March
    assert cal.add(start, 2 * H) == datetime(2025, 3, 31, 10, tzinfo=london)
    assert cal.elapsed(start, datetime(2025, 3, 31, 10, tzinfo=london)) == 2 * H


def test_24_00_ends_a_day() -> None:
    cal = BusinessCalendar(hours={"mon": ["20:00-24:00"], "tue": ["00:00-02:00"]})
    assert cal.add(dubai(2025, 2, 24, 23), 2 * H) == dubai(2025, 2, 25, 1)
    assert cal.elapsed(dubai(2025, 2, 24), dubai(2025, 2, 26)) == 6 * H


def test_naive_datetimes_are_refused(gov: BusinessCalendar) -> None:
    with pytest.raises(CalendarError, match="timezone-aware"):
        gov.elapsed(datetime(2025, 1, 1), dubai(2025, 1, 2))


def test_negative_business_time_is_refused(gov: BusinessCalendar) -> None:
    with pytest.raises(CalendarError, match="negative"):
        gov.add(dubai(2025, 1, 2), -H)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hours": {"mon": ["15:30-07:30"]}}, r"hours\.mon\[0\]: bad time range '15:30-07:30': start must be before"),
        ({"hours": {"mon": ["07:30-25:00"]}}, r"hours\.mon\[0\]: .*25:00 is not a time of day"),
        ({"hours": {"mon": ["7.30-15"]}}, r"hours\.mon\[0\]: bad time range"),
        ({"hours": {"mon": ["07:00-12:00", "11:00-13:00"]}}, r"hours\.mon: time ranges overlap"),
        ({"hours": {"fry": ["07:00-12:00"]}}, r"hours: unknown weekday 'fry'"),
        ({"hours": {"mon": "07:00-12:00"}}, r"hours\.mon: must be a list"),
        ({"hours": {}}, r"hours: no working hours"),
        ({}, r"hours: required unless always_open"),
        ({"hours": WEEK, "timezone": "Asia/Dubia"}, r"timezone: unknown IANA time zone 'Asia/Dubia'"),
        ({"hours": WEEK, "holidays_country": "XX"}, r"holidays: unknown country"),
        ({"always_open": True, "hours": WEEK}, r"always_open: an always-open calendar takes no hours"),
        ({"hours": WEEK, "ramadan_hours": {"sat": ["25:00-26:00"]}}, r"ramadan_hours\.sat\[0\]"),
    ],
)
def test_bad_configuration(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        BusinessCalendar(**kwargs)  # type: ignore[arg-type]


def test_parse_range() -> None:
    assert parse_range("7:30-15:30") == (27000, 55800)
    assert parse_range("00:00-24:00") == (0, 86400)
    with pytest.raises(CalendarError, match="24:30 is not a time of day"):
        parse_range("00:00-24:30")


def test_a_calendar_closed_for_longer_than_a_year_is_an_error() -> None:
    cal = BusinessCalendar(
        hours={"mon": ["08:00-09:00"]}, closed=[date(2025, 1, 6) + timedelta(weeks=n) for n in range(80)]
    )
    with pytest.raises(CalendarError, match="no working time"):
        cal.add(dubai(2025, 1, 1), H)

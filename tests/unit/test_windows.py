"""Window arithmetic: bucket ids, spans of rolling and calendar windows in Asia/Dubai, running sums."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tawasul.domain.windows import (
    DUBAI,
    RESOLUTIONS,
    WINDOW_NAMES,
    WINDOWS,
    Resolution,
    WindowedSums,
    WindowError,
    bucket_of,
    bucket_start_us,
    from_us,
    retention_floor,
    to_us,
    window,
    window_range,
    window_span,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def span(name: str, as_of: str) -> tuple[str, str]:
    start, end = window_span(name, at(as_of))
    return start.isoformat(), end.isoformat()


def test_window_names() -> None:
    assert WINDOW_NAMES == ("15m", "1h", "24h", "7d", "30d", "today", "month", "half_year")
    assert window("7d").length == 168
    with pytest.raises(WindowError, match="unknown window 'week'"):
        window("week")


def test_rolling_spans_end_with_the_current_bucket() -> None:
    as_of = "2025-03-04T10:07:30+04:00"
    assert span("15m", as_of) == ("2025-03-04T09:53:00+04:00", "2025-03-04T10:08:00+04:00")
    assert span("1h", as_of) == ("2025-03-04T09:08:00+04:00", "2025-03-04T10:08:00+04:00")
    assert span("24h", as_of) == ("2025-03-03T11:00:00+04:00", "2025-03-04T11:00:00+04:00")
    assert span("7d", as_of) == ("2025-02-25T11:00:00+04:00", "2025-03-04T11:00:00+04:00")
    assert span("30d", as_of) == ("2025-02-02T11:00:00+04:00", "2025-03-04T11:00:00+04:00")


def test_every_rolling_span_has_its_exact_length_and_contains_as_of() -> None:
    rng = random.Random(5)
    for _ in range(200):
        as_of = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(400 * 86400))
        for w in WINDOWS:
            start, end = window_span(w, as_of)
            assert start <= as_of < end
            if not w.calendar:
                unit = timedelta(minutes=1) if w.resolution is Resolution.MINUTE else timedelta(hours=1)
                assert end - start == w.length * unit
                assert end - as_of <= unit


def test_a_minute_before_midnight_in_dubai_is_still_today() -> None:
    # 19:59:59 UTC is 23:59:59 in Dubai; 20:00 UTC is already the next Dubai day.
    assert span("today", "2025-03-04T19:59:59Z") == ("2025-03-04T00:00:00+04:00", "2025-03-05T00:00:00+04:00")
    assert span("today", "2025-03-04T20:00:00Z") == ("2025-03-05T00:00:00+04:00", "2025-03-06T00:00:00+04:00")
    # a rolling 15 minutes across midnight takes both days
    assert span("15m", "2025-03-05T00:05:00+04:00") == ("2025-03-04T23:51:00+04:00", "2025-03-05T00:06:00+04:00")


def test_month_and_half_year_boundaries() -> None:
    assert span("month", "2025-02-28T23:59:59+04:00") == ("2025-02-01T00:00:00+04:00", "2025-03-01T00:00:00+04:00")
    assert span("month", "2025-03-01T00:00:00+04:00") == ("2025-03-01T00:00:00+04:00", "2025-04-01T00:00:00+04:00")
    assert span("month", "2024-02-10T08:00:00+04:00") == ("2024-02-01T00:00:00+04:00", "2024-03-01T00:00:00+04:00")
    assert span("month", "2025-12-31T12:00:00+04:00") == ("2025-12-01T00:00:00+04:00", "2026-01-01T00:00:00+04:00")
    assert span("half_year", "2025-06-30T23:59:59+04:00") == ("2025-01-01T00:00:00+04:00", "2025-07-01T00:00:00+04:00")
    assert span("half_year", "2025-07-01T00:00:00+04:00") == ("2025-07-01T00:00:00+04:00", "2026-01-01T00:00:00+04:00")
    # 2025-06-30T20:30Z is already 1 July in Dubai
    assert span("half_year", "2025-06-30T20:30:00Z") == ("2025-07-01T00:00:00+04:00", "2026-01-01T00:00:00+04:00")
    assert span("half_year", "2025-12-31T19:59:59Z") == ("2025-07-01T00:00:00+04:00", "2026-01-01T00:00:00+04:00")


def test_buckets() -> None:
    t = to_us(at("2025-03-04T23:59:59.999999+04:00"))
    assert (
        from_us(bucket_start_us(bucket_of(t, Resolution.DAY), Resolution.DAY)).isoformat()
        == "2025-03-04T00:00:00+04:00"
    )
    assert (
        from_us(bucket_start_us(bucket_of(t, Resolution.HOUR), Resolution.HOUR)).isoformat()
        == "2025-03-04T23:00:00+04:00"
    )
    assert (
        from_us(bucket_start_us(bucket_of(t, Resolution.MINUTE), Resolution.MINUTE)).isoformat()
        == "2025-03-04T23:59:00+04:00"
    )
    assert bucket_of(t + 1, Resolution.DAY) == bucket_of(t, Resolution.DAY) + 1
    assert from_us(t).tzinfo == DUBAI
    with pytest.raises(WindowError):
        to_us(datetime(2025, 1, 1))


def test_retention_floor_is_the_oldest_window_start() -> None:
    as_of = to_us(at("2025-03-04T10:07:30+04:00"))
    assert retention_floor(Resolution.MINUTE, as_of) == window_range(window("1h"), as_of)[0]
    assert retention_floor(Resolution.HOUR, as_of) == window_range(window("30d"), as_of)[0]
    assert retention_floor(Resolution.DAY, as_of) == window_range(window("half_year"), as_of)[0]


def test_sums_follow_event_time_and_a_late_value_lands_in_its_own_window() -> None:
    as_of = at("2025-03-04T23:59:30+04:00")
    sums: WindowedSums[int] = WindowedSums(0, to_us(as_of))
    sums.add(to_us(as_of), 1)
    sums.add(to_us(at("2025-03-04T23:40:00+04:00")), 10)  # 20 min ago: in 1h, not 15m
    sums.add(to_us(at("2025-03-03T23:59:00+04:00")), 100)  # yesterday, 24h + 30 s ago
    sums.add(to_us(at("2025-02-27T12:00:00+04:00")), 1000)  # last month, 5 days ago
    sums.add(to_us(at("2024-12-31T23:00:00+04:00")), 10000)  # last half-year, beyond 30 days
    assert dict(sums.totals()) == {
        "15m": 1,
        "1h": 11,
        "24h": 11,
        "7d": 1111,
        "30d": 1111,
        "today": 11,
        "month": 111,
        "half_year": 1111,
    }
    # past midnight in Dubai: `today` starts empty, the rolling windows still hold the last minutes
    assert sums.advance(to_us(at("2025-03-05T00:00:10+04:00")))
    assert dict(sums.totals()) == {
        "15m": 1,
        "1h": 11,
        "24h": 11,
        "7d": 1111,
        "30d": 1111,
        "today": 0,
        "month": 111,
        "half_year": 1111,
    }
    # a late value timed before midnight lands in yesterday, not in today
    sums.add(to_us(at("2025-03-04T23:58:00+04:00")), 5)
    assert sums.total("today") == 0 and sums.total("15m") == 6 and sums.total("month") == 116
    # removing what was added gives the totals back (values are exact integers)
    sums.add(to_us(at("2025-03-04T23:58:00+04:00")), -5)
    assert sums.total("15m") == 1 and sums.buckets(Resolution.MINUTE) == {
        bucket_of(to_us(as_of), Resolution.MINUTE): 1,
        bucket_of(to_us(at("2025-03-04T23:40:00+04:00")), Resolution.MINUTE): 10,
    }


def test_time_never_goes_back_and_old_buckets_are_dropped() -> None:
    start = to_us(at("2025-06-30T23:30:00+04:00"))
    sums: WindowedSums[int] = WindowedSums(0, start)
    sums.add(start, 7)
    assert not sums.advance(start - 1)
    assert sums.total("half_year") == 7
    later = to_us(at("2025-07-01T01:00:00+04:00"))
    assert sums.advance(later)
    assert sums.total("half_year") == 0 and sums.total("month") == 0 and sums.total("24h") == 7
    assert sums.buckets(Resolution.DAY) == {}  # the first half-year is out of every window
    assert sums.buckets(Resolution.MINUTE) == {}  # more than an hour ago
    sums.add(start, 1)  # late data for June: kept for the rolling 24 h
    assert sums.total("24h") == 8 and sums.total("half_year") == 0
    assert sums.advance(later + 31 * 86_400_000_000)
    assert not sums and sums.total("30d") == 0


def test_running_totals_equal_a_brute_force_sum() -> None:
    rng = random.Random(11)
    base = to_us(at("2025-05-20T00:00:00+04:00"))
    as_of = base
    sums: WindowedSums[int] = WindowedSums(0, as_of)
    added: list[tuple[int, int]] = []
    for _ in range(3000):
        as_of += rng.randrange(0, 40 * 60_000_000)
        sums.advance(as_of)
        t = as_of - rng.randrange(0, 3 * 86_400_000_000) if rng.random() < 0.3 else as_of
        value = rng.randrange(1, 9)
        sums.add(t, value)
        added.append((t, value))
        if rng.random() < 0.05:
            for w in WINDOWS:
                lo, hi = (to_us(x) for x in window_span(w, as_of))
                expected = sum(v for time, v in added if lo <= time < hi)
                assert sums.total(w.name) == expected, (w.name, from_us(as_of))
    assert set(RESOLUTIONS) == set(Resolution)

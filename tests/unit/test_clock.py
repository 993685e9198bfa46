"""Wall clock and per-partition event-time watermarks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from stream_processors.clock import ClockError, WallClock, Watermarks
from tawasul.domain.calendars import to_us

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def test_wall_clock_reads_its_source_in_microseconds() -> None:
    assert WallClock(lambda: 1_700_000_000.25).now_us() == 1_700_000_000_250_000


def test_watermark_is_max_event_time_minus_lateness_per_partition() -> None:
    marks = Watermarks(timedelta(minutes=5))
    assert marks.get(0) is None
    assert marks.observe(0, T0) == to_us(T0 - timedelta(minutes=5))
    assert marks.observe(0, T0 + timedelta(minutes=1)) == to_us(T0 - timedelta(minutes=4))
    # an older event (out of order) never moves it back
    assert marks.observe(0, T0 - timedelta(minutes=3)) == to_us(T0 - timedelta(minutes=4))
    # other partitions have their own
    assert marks.observe(1, T0 - timedelta(hours=1)) == to_us(T0 - timedelta(hours=1, minutes=5))
    assert marks.get(0) == to_us(T0 - timedelta(minutes=4))


def test_offsets_do_not_matter_only_the_instant() -> None:
    dubai = datetime(2025, 3, 4, 13, 0, tzinfo=ZoneInfo("Asia/Dubai"))
    marks = Watermarks(timedelta(0))
    assert marks.observe(2, dubai) == to_us(T0)


def test_end_of_input_advances_and_never_retreats() -> None:
    marks = Watermarks()
    marks.observe(0, T0)
    end = to_us(T0 + timedelta(hours=2))
    assert marks.advance(0, end) == end
    assert marks.advance(0, to_us(T0)) == end
    assert marks.observe(0, T0 + timedelta(hours=1)) == end
    marks.forget(0)
    assert marks.get(0) is None


def test_negative_lateness_is_refused() -> None:
    with pytest.raises(ClockError):
        Watermarks(timedelta(seconds=-1))

"""The KPI formulas, on hand-computed cases."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tawasul.domain import kpis

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=timezone(timedelta(hours=4)))


def test_a_call_answered_exactly_at_the_threshold_counts_as_within() -> None:
    assert kpis.answered_within(T0, T0 + timedelta(seconds=20), 20)
    assert not kpis.answered_within(T0, T0 + timedelta(seconds=20, microseconds=1), 20)
    assert kpis.answered_within(T0, T0, 0)


def test_service_level_counts_every_abandon_in_the_denominator() -> None:
    # 7 answered within 20 s, 9 answered in all, 3 abandoned (2 of them after 3 s: still counted)
    assert kpis.service_level(7, 9, 3) == round(7 / 12, 4) == 0.5833
    assert kpis.service_level(0, 0, 4) == 0.0
    assert kpis.service_level(3, 3, 0) == 1.0


def test_abandon_ratio_is_over_answered_and_abandoned() -> None:
    assert kpis.abandon_ratio(3, 9) == 0.25
    assert kpis.abandon_ratio(0, 0) is None


def test_zero_denominators_give_none() -> None:
    assert kpis.service_level(0, 0, 0) is None
    assert kpis.average_speed_of_answer(timedelta(0), 0) is None
    assert kpis.average_handle_seconds(0.0, 0) is None
    assert kpis.average_wait_seconds(timedelta(seconds=5), 0) is None
    assert kpis.satisfaction(0, 0) is None
    assert kpis.compliance(0, 0) is None
    assert kpis.ratio(0, 0) is None


def test_averages_in_seconds_from_timedeltas_and_numbers() -> None:
    assert kpis.average_speed_of_answer(timedelta(seconds=10) + timedelta(seconds=25), 2) == 17.5
    assert kpis.average_wait_seconds(timedelta(minutes=3, microseconds=3), 3) == 60.0
    assert kpis.average_handle_seconds(100, 3) == 33.3333
    assert kpis.average(timedelta(seconds=2), 3) == 0.6667


def test_handle_time_adds_wrap_up_to_talk_time() -> None:
    assert kpis.handle_time(T0, T0 + timedelta(minutes=4), 30) == timedelta(minutes=4, seconds=30)
    assert kpis.handle_time(T0, T0 + timedelta(minutes=4), None) == timedelta(minutes=4)
    assert kpis.handle_time(T0, T0 - timedelta(seconds=5), 12.5) == timedelta(seconds=12.5)


@pytest.mark.parametrize(
    ("score", "scale", "satisfied"),
    [
        (5, 5, True),
        (4, 5, True),
        (3, 5, False),
        (1, 5, False),
        (3, 3, True),
        (2, 3, False),
        (1, 3, False),
    ],
)
def test_satisfied_on_3_and_5_point_scales(score: int, scale: int, satisfied: bool) -> None:
    assert kpis.is_satisfied(score, scale) is satisfied


def test_satisfaction_and_compliance_ratios() -> None:
    assert kpis.satisfaction(2, 3) == 0.6667
    assert kpis.compliance(9, 1) == 0.9
    assert kpis.compliance(0, 5) == 0.0


def test_rounding_to_four_decimals() -> None:
    assert kpis.round4(1 / 3) == 0.3333
    assert kpis.round4(2 / 3) == 0.6667
    assert kpis.round4(0.98765) == 0.9877  # binary 0.98765 lies just above the half
    assert kpis.round4(None) is None
    assert str(kpis.round4(-0.00001)) == "0.0"
    assert kpis.ratio(1, 7) == 0.1429


def test_seconds_of_a_timedelta_is_exact() -> None:
    assert kpis.seconds(timedelta(seconds=1, microseconds=1)) == 1.000001
    assert kpis.seconds(2) == 2.0

"""The KPI book's shortcuts give exactly what the plain derivations give (hypothesis)."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tawasul.domain.kpi_records import Backlog, SubjectRecord, Survey, _replace
from tawasul.domain.kpi_tallies import Tally
from tawasul.domain.windows import WINDOW_NAMES, WindowedSums, bucket_ids, window_ranges

T0 = 1_740_000_000 * 10**6
stamps = st.tuples(st.integers(T0, T0 + 10**11), st.sampled_from(["a", "b"]))
changes = st.fixed_dictionaries(
    {},
    optional={
        "offered": st.none() | stamps.map(lambda s: (*s, "general")),
        "answered": st.none() | stamps.map(lambda s: (*s, "general", "ag1")),
        "called": st.none() | stamps,
        "surveys": st.lists(
            st.builds(
                Survey, st.just("s1"), st.integers(T0, T0 + 10**9), st.integers(1, 5), st.just(5), st.just("call")
            ),
            max_size=2,
        ).map(tuple),
        "backlog": st.none()
        | st.builds(
            Backlog,
            st.integers(0, 3),
            st.booleans(),
            st.just("crm"),
            st.just("request"),
            st.just("normal"),
            st.sampled_from(["on_track", "breached"]),
        ),
        "seen_us": st.integers(T0, T0 + 10**11),
    },
)


@given(first=changes, second=changes)
def test_replace_is_dataclasses_replace(first: dict[str, Any], second: dict[str, Any]) -> None:
    record = dataclasses.replace(SubjectRecord("c-1"), **first)
    got = _replace(record, second)
    assert got == dataclasses.replace(record, **second)
    if all(getattr(record, k) == v for k, v in second.items()):
        assert got is record


tallies = st.builds(
    Tally,
    offered=st.integers(-2, 2),
    answered=st.integers(-2, 2),
    wait_us=st.integers(-5, 5),
    responses=st.integers(-1, 1),
)


@settings(max_examples=200, deadline=None)
@given(adds=st.lists(st.tuples(st.integers(0, 40 * 86400 * 10**6), tallies), max_size=30))
def test_windowed_sums_match_a_plain_sum(adds: list[tuple[int, Tally]]) -> None:
    as_of = T0 + 40 * 86400 * 10**6
    sums = WindowedSums(Tally(), as_of)
    for offset, value in adds:
        sums.add(as_of - offset, value)
        sums.add(as_of - offset, -value)  # cancels to zero: the bucket is dropped
        sums.add(as_of - offset, value)
    ranges = window_ranges(as_of)
    for index, name in enumerate(WINDOW_NAMES):
        resolution = {"15m": 0, "1h": 0, "24h": 1, "7d": 1, "30d": 1}.get(name, 2)
        first, last = ranges[name]
        want = Tally()
        for offset, value in adds:
            if first <= bucket_ids(as_of - offset)[resolution] <= last:
                want = want + value
        assert sums.total(name) == want, (index, name)
    assert not any(not v for store in sums._buckets for v in store.values())  # no zero buckets kept

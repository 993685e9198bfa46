"""The per-partition deadline index: due keys come out once, earliest first, per partition."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stream_processors.deadlines import DeadlineIndex


def test_pop_due_returns_keys_at_or_before_now_in_order() -> None:
    index = DeadlineIndex()
    index.set(0, b"c", 30)
    index.set(0, b"a", 10)
    index.set(0, b"b", 20)
    assert index.earliest(0) == 10
    assert index.pop_due(0, 20) == [b"a", b"b"]
    assert index.pop_due(0, 20) == []
    assert index.earliest(0) == 30
    assert index.count(0) == 1


def test_rescheduling_replaces_the_old_instant() -> None:
    index = DeadlineIndex()
    index.set(1, b"t", 10)
    index.set(1, b"t", 50)
    assert index.pop_due(1, 40) == []
    assert index.get(1, b"t") == 50
    index.set(1, b"t", 5)
    assert index.pop_due(1, 5) == [b"t"]
    assert index.pop_due(1, 100) == []


def test_unscheduling_and_partitions_are_separate() -> None:
    index = DeadlineIndex()
    index.set(0, b"x", 10)
    index.set(3, b"y", 10)
    index.set(0, b"x", None)
    assert index.pop_due(0, 100) == []
    assert index.pop_due(2, 100) == []
    assert index.pop_due(3, 100) == [b"y"]
    index.set(4, b"z", 1)
    index.drop(4)
    assert index.earliest(4) is None
    assert len(index) == 0


def test_limit_caps_one_batch() -> None:
    index = DeadlineIndex()
    for i in range(10):
        index.set(0, str(i).encode(), i)
    assert index.pop_due(0, 100, limit=3) == [b"0", b"1", b"2"]
    assert len(index.pop_due(0, 100)) == 7


def test_stale_heap_entries_are_compacted() -> None:
    index = DeadlineIndex()
    for round_ in range(5):
        for i in range(1000):
            index.set(0, str(i).encode(), 10_000 + round_ * 10 + i)
    assert len(index) == 1000
    assert len(index._parts[0].heap) <= 2 * 1000 + 1  # rebuilt instead of holding 5000 entries
    assert index.pop_due(0, 10_000 + 40 + 999) == [str(i).encode() for i in range(1000)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 20), st.one_of(st.none(), st.integers(0, 1000))), max_size=200
    ),
    st.integers(0, 1000),
)
def test_matches_a_plain_dict_model(ops: list[tuple[int, int, int | None]], now: int) -> None:
    index = DeadlineIndex()
    model: dict[tuple[int, bytes], int] = {}
    for partition, key_number, at in ops:
        key = str(key_number).encode()
        index.set(partition, key, at)
        if at is None:
            model.pop((partition, key), None)
        else:
            model[(partition, key)] = at
    for partition in range(6):
        expected = sorted((at, key) for (p, key), at in model.items() if p == partition and at <= now)
        due = index.pop_due(partition, now)
        assert sorted(due) == sorted(key for _, key in expected)
        assert [model[(partition, k)] for k in due] == sorted(model[(partition, k)] for k in due)
        rest = [at for (p, _), at in model.items() if p == partition and at > now]
        assert index.earliest(partition) == (min(rest) if rest else None)

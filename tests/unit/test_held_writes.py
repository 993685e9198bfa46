"""Held table writes: released in order once delivered, never before; failures sent again."""

from __future__ import annotations

import asyncio

import pytest

from stream_processors.held_writes import Held, HeldWrites


def future(
    loop: asyncio.AbstractEventLoop, result: object = "ok", error: Exception | None = None, done: bool = True
) -> asyncio.Future[object]:
    fut: asyncio.Future[object] = loop.create_future()
    if done:
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)
    return fut


@pytest.fixture
def loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def held(token: str, writes: list[tuple[bytes, bytes]], deliveries: list[asyncio.Future[object]]) -> Held[str]:
    return Held(token, list(writes), list(deliveries), [(k, v) for k, v in writes][: len(deliveries)])


def test_nothing_is_released_before_its_deliveries_are_done(loop: asyncio.AbstractEventLoop) -> None:
    writes: HeldWrites[str] = HeldWrites()
    pending = future(loop, done=False)
    writes.add(0, held("m1", [(b"T-1", b"v1")], [pending]))
    assert writes.value(b"T-1") == b"v1" and writes.holds(b"T-1")
    assert not writes.ready(0)
    assert list(writes.release(0)) == []
    pending.set_result("ok")
    assert writes.ready(0)
    assert [h.token for h in writes.release(0)] == ["m1"]
    assert writes.value(b"T-1") is None and writes.pending(0) == 0


def test_release_keeps_the_order_and_stops_at_the_first_in_flight(loop: asyncio.AbstractEventLoop) -> None:
    writes: HeldWrites[str] = HeldWrites()
    slow = future(loop, done=False)
    writes.add(0, held("m1", [(b"T-1", b"a")], [future(loop)]))
    writes.add(0, held("m2", [(b"T-2", b"b")], [slow]))
    writes.add(0, held("m3", [(b"T-1", b"c")], [future(loop)]))  # behind m2, though delivered
    writes.add(1, held("m4", [(b"T-9", b"z")], [future(loop)]))
    assert [h.token for h in writes.release(0)] == ["m1"]
    assert writes.value(b"T-1") == b"c", "the newest held value of a key wins until it is written"
    slow.set_result("ok")
    assert [h.token for h in writes.release(0)] == ["m2", "m3"]
    assert writes.value(b"T-1") is None and writes.value(b"T-2") is None
    assert list(writes.partitions()) == [1]


def test_a_message_without_writes_is_not_held(loop: asyncio.AbstractEventLoop) -> None:
    writes: HeldWrites[str] = HeldWrites()
    writes.add(0, Held("m1"))
    assert writes.pending(0) == 0 and list(writes.partitions()) == []


def test_a_failed_delivery_is_yielded_still_held_until_its_resend_succeeds(loop: asyncio.AbstractEventLoop) -> None:
    writes: HeldWrites[str] = HeldWrites()
    ok, broken = future(loop), future(loop, error=RuntimeError("broker gone"))
    item = Held("m1", [(b"T-1", b"v")], [ok, broken], [(b"T-1", b"first"), (b"T-1", b"second")])
    writes.add(0, item)
    writes.add(0, held("m2", [(b"T-2", b"w")], [future(loop)]))
    released = list(writes.release(0))
    assert released == [item] and item.failed() == [(b"T-1", b"second")]
    assert writes.pending(0) == 2 and writes.holds(b"T-1"), "a failed message stays held, and so does all behind it"
    resend = future(loop, done=False)
    item.retrying([resend])
    assert item.deliveries == [ok, resend] and not writes.ready(0)
    resend.set_result("ok")
    assert [h.token for h in writes.release(0)] == ["m1", "m2"]


def test_discard_forgets_everything_and_names_the_keys(loop: asyncio.AbstractEventLoop) -> None:
    writes: HeldWrites[str] = HeldWrites()
    writes.add(2, held("m1", [(b"T-1", b"v"), (b"T-2", b"w")], [future(loop, done=False)]))
    assert sorted(writes.discard()) == [(2, b"T-1"), (2, b"T-2")]
    assert writes.pending(2) == 0 and not writes.holds(b"T-1")

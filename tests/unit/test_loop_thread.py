"""`LoopThread`: coroutines and plain calls run in the loop's own thread; stop is idempotent."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tawasul.infra.loop_thread import LoopThread


def test_calls_run_in_the_loop_thread_and_return_their_results() -> None:
    loop = LoopThread("test-io")

    async def where(value: int) -> tuple[str, int]:
        await asyncio.sleep(0)
        return threading.current_thread().name, value * 2

    assert loop.call(where(21)) == ("test-io", 42)
    assert loop.submit(where(2)).result(5) == ("test-io", 4)
    assert loop.run(lambda: threading.current_thread().name) == "test-io"
    loop.stop()
    loop.stop()
    assert not loop.running


def test_errors_and_timeouts_reach_the_caller() -> None:
    loop = LoopThread("test-io")

    async def fail() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        loop.call(fail())
    with pytest.raises(TimeoutError):
        loop.call(asyncio.sleep(5), timeout_s=0.05)
    loop.stop()

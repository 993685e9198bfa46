"""An asyncio event loop in a thread of its own, for synchronous code that drives aiokafka.

`producers.bulk_publisher.BulkPublisher` and `sinks.assigned_consumer.AssignedConsumer` are
called from plain threads (the publisher's main thread, the database sink's thread); their
aiokafka clients live on such a loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """A running event loop in a daemon thread; `stop()` ends it (idempotent)."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coroutine` on the loop; its result arrives in the returned future."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run `coroutine` on the loop and wait for its result (raises what it raises, or
        `TimeoutError` after `timeout_s`)."""
        return self.submit(coroutine).result(timeout_s)

    def run(self, function: Callable[[], T]) -> T:
        """Call `function` in the loop's thread (for the clients' synchronous methods)."""

        async def run() -> T:
            return function()

        return self.call(run())

    @property
    def running(self) -> bool:
        return self._loop.is_running()

    def stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

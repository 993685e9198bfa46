"""The live board: recomputed when the sink commits, pushed to every open page.

The server learns of new data without re-running the board's queries on a timer:

* PostgreSQL: `LISTEN tawasul_changes`; the sink's writer sends `NOTIFY` in each batch's
  transaction, so it arrives once the batch is committed;
* SQLite: `PRAGMA data_version` on a connection of its own, read every `change_poll_seconds`
  (one integer, changed by every commit of another connection).

A change marks the board out of date; one task recomputes it (at most every
`min_push_seconds`, so a burst of commits makes one board) and hands it to every subscriber.
Without changes the board is still recomputed every `refresh_seconds`, because waits and "late
by" move with the clock.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from typing import Final

from sqlalchemy import Engine

from sinks.wallboard.board import Board
from sinks.wallboard.config import WallboardConfig, WallboardError
from sinks.wallboard.queries import read_board

__all__ = ["NOTIFY_CHANNEL", "LiveBoard"]

log = logging.getLogger(__name__)

NOTIFY_CHANNEL: Final = "tawasul_changes"
"""The PostgreSQL channel the sink notifies after each committed batch (`sinks.db.writer`)."""

Clock = Callable[[], datetime]
Snapshot = Board | WallboardError


class LiveBoard:
    """The newest board, its change watcher and the pages subscribed to it."""

    def __init__(self, engine: Engine, config: WallboardConfig, clock: Clock) -> None:
        self.engine = engine
        self.config = config
        self.clock = clock
        self.changes = 0
        """How many changes the watcher has seen (and timer ticks): the board's wanted version."""
        self._snapshot: Snapshot | None = None
        self._snapshot_version = -1
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._subscribers: set[asyncio.Queue[Snapshot | None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._push_loop()), asyncio.create_task(self._tick_loop())]
        backend = self.engine.url.get_backend_name()
        if backend == "postgresql":
            self._tasks.append(asyncio.create_task(self._listen_postgres()))
        elif backend == "sqlite" and self.engine.url.database not in (None, "", ":memory:"):
            loop = asyncio.get_running_loop()
            threading.Thread(
                target=self._watch_sqlite, args=(loop,), name="wallboard-data-version", daemon=True
            ).start()

    async def stop(self) -> None:
        """Stop watching and end every subscriber's stream."""
        self._stop.set()
        for queue in list(self._subscribers):
            _offer(queue, None)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task

    # -- readers ----------------------------------------------------------------------------------
    def changed(self) -> None:
        """New data (or a clock tick): the board must be recomputed."""
        self.changes += 1
        self._changed.set()

    async def current(self) -> Board:
        """The board as of the newest change seen; raises `WallboardError` when unreadable."""
        snapshot = await self._refresh()
        if isinstance(snapshot, WallboardError):
            raise snapshot
        return snapshot

    def subscribe(self) -> asyncio.Queue[Snapshot | None]:
        """A queue that receives each new board (only the newest is kept); `None` ends it."""
        queue: asyncio.Queue[Snapshot | None] = asyncio.Queue(maxsize=1)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Snapshot | None]) -> None:
        self._subscribers.discard(queue)

    async def latest(self) -> Snapshot:
        """The board or error as of the newest change seen (computed only when out of date)."""
        return await self._refresh()

    # -- internals --------------------------------------------------------------------------------
    async def _refresh(self) -> Snapshot:
        async with self._lock:
            wanted = self.changes
            if self._snapshot is None or self._snapshot_version < wanted:
                try:
                    snapshot: Snapshot = await asyncio.to_thread(read_board, self.engine, self.config, self.clock())
                except WallboardError as exc:
                    log.warning("wallboard data unavailable", extra={"error": str(exc)})
                    snapshot = exc
                self._snapshot, self._snapshot_version = snapshot, wanted
                for queue in list(self._subscribers):
                    _offer(queue, snapshot)
            return self._snapshot

    async def _push_loop(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._subscribers:  # without open pages, `current()` computes when asked
                await self._refresh()
            await asyncio.sleep(self.config.min_push_seconds)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.refresh_seconds)
            self.changed()

    def _watch_sqlite(self, loop: asyncio.AbstractEventLoop) -> None:
        """`PRAGMA data_version` on a read-only connection of its own; a new value is a commit."""
        path = self.engine.url.database
        connection: sqlite3.Connection | None = None
        seen: int | None = None
        while not self._stop.wait(self.config.change_poll_seconds):
            try:
                if connection is None:
                    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0, check_same_thread=False)
                    seen = None
                version = connection.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error:
                if connection is not None:
                    connection.close()
                connection = None
                self._stop.wait(1.0)
                continue
            if seen is not None and version != seen:
                loop.call_soon_threadsafe(self.changed)
            elif seen is None:
                loop.call_soon_threadsafe(self.changed)  # (re)connected: something may have changed
            seen = version
        if connection is not None:
            connection.close()

    async def _listen_postgres(self) -> None:
        """`LISTEN tawasul_changes`, reconnecting after a lost connection."""
        import psycopg

        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, connect_timeout=5
                ) as connection:
                    await connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.changed()  # (re)connected: something may have changed meanwhile
                    async for _notice in connection.notifies():
                        self.changed()
            except psycopg.Error as exc:
                log.warning("wallboard cannot listen for changes", extra={"error": type(exc).__name__})
            await asyncio.sleep(1.0)


def _offer(queue: asyncio.Queue[Snapshot | None], item: Snapshot | None) -> None:
    """Put `item`, replacing an unread older one: a slow page only misses boards it could not show."""
    with suppress(asyncio.QueueEmpty):
        if queue.full():
            queue.get_nowait()
    queue.put_nowait(item)

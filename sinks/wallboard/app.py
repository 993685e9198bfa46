"""The aiohttp app of the wall display.

Routes: `/` (the page), `/static/...` (its CSS and JS, all served locally), `/api/wallboard`
(the `Board` as JSON; 503 with a reason when the database cannot be read), `/healthz`
(200 while the database answers) and `/metrics` (Prometheus: board requests by result). One
`Board` is computed at most every half refresh period, however many screens poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from aiohttp import web
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from sinks.db.engine import make_engine
from sinks.metrics_server import metrics_handler
from sinks.wallboard.board import Board
from sinks.wallboard.config import WallboardConfig, WallboardError
from sinks.wallboard.queries import read_board
from tawasul.metrics import Metrics

__all__ = ["STATIC", "BoardCache", "create_app"]

log = logging.getLogger(__name__)

STATIC: Final = Path(__file__).resolve().parent / "static"
Clock = Callable[[], datetime]
CONFIG: Final = web.AppKey("config", WallboardConfig)
ENGINE: Final = web.AppKey("engine", Engine)
METRICS: Final = web.AppKey("metrics", Metrics)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def wall_clock() -> datetime:
    return datetime.now(UTC)


class BoardCache:
    """The latest `Board`, recomputed in a worker thread when older than `ttl_seconds`."""

    def __init__(self, engine: Engine, config: WallboardConfig, clock: Clock) -> None:
        self.engine = engine
        self.config = config
        self.clock = clock
        self.ttl_seconds = config.refresh_seconds / 2 if config.cache_seconds is None else config.cache_seconds
        self._board: Board | None = None
        self._at = float("-inf")
        self._lock = asyncio.Lock()

    async def board(self) -> Board:
        async with self._lock:
            if self._board is None or time.monotonic() - self._at >= self.ttl_seconds:
                self._board = await asyncio.to_thread(read_board, self.engine, self.config, self.clock())
                self._at = time.monotonic()
            return self._board


CACHE: Final = web.AppKey("cache", BoardCache)


def create_app(config: WallboardConfig, *, clock: Clock = wall_clock, engine: Engine | None = None) -> web.Application:
    """The wall display app; it opens (and later disposes) an engine for `config.database_url`
    unless `engine` is given."""
    app = web.Application(middlewares=[_security_headers])
    app[CONFIG] = config
    app[METRICS] = metrics = Metrics(role="wallboard")

    async def database(app: web.Application) -> AsyncIterator[None]:
        own = engine is None
        app[ENGINE] = make_engine(config.database_url) if engine is None else engine
        app[CACHE] = BoardCache(app[ENGINE], config, clock)
        yield
        if own:
            app[ENGINE].dispose()

    app.cleanup_ctx.append(database)
    app.router.add_get("/", _index)
    app.router.add_get("/api/wallboard", _board)
    app.router.add_get("/healthz", _health)
    app.router.add_get("/metrics", metrics_handler(metrics.registry))
    app.router.add_static("/static/", STATIC, show_index=False)
    return app


@web.middleware
async def _security_headers(request: web.Request,
                            handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    response = await handler(request)
    response.headers.update(SECURITY_HEADERS)
    return response


async def _index(request: web.Request) -> web.FileResponse:
    response = web.FileResponse(STATIC / "index.html")
    response.headers["Cache-Control"] = "no-cache"
    return response


async def _board(request: web.Request) -> web.Response:
    try:
        board = await request.app[CACHE].board()
    except WallboardError as exc:
        log.warning("wallboard data unavailable", extra={"error": str(exc)})
        request.app[METRICS].wallboard_reads.labels(result="unavailable").inc()
        return web.json_response({"error": "database unavailable"}, status=503,
                                 headers={"Cache-Control": "no-store"})
    request.app[METRICS].wallboard_reads.labels(result="ok").inc()
    return web.json_response(board.to_json(), headers={"Cache-Control": "no-store"})


async def _health(request: web.Request) -> web.Response:
    def ping() -> None:
        with request.app[ENGINE].connect() as connection:
            connection.execute(text("SELECT 1"))

    try:
        await asyncio.to_thread(ping)
    except SQLAlchemyError as exc:
        log.warning("wallboard health check failed", extra={"error": type(exc).__name__})
        return web.json_response({"status": "database unavailable"}, status=503)
    return web.json_response({"status": "ok"})

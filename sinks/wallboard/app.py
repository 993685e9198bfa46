"""The aiohttp app of the wall display.

Routes (`ROUTES`, in one table: add a route there):

* `/` the wall (bilingual; `?lang=ar` Arabic right to left, `?lang=en` English; `&digits=arab`
  Arabic-Indic digits), `/supervisor` the per team and agent view, `/static/...` their CSS and JS;
* `/api/wallboard` the `Board` as JSON, `/api/wallboard/events` the same as Server-Sent Events
  (a `board` event at once and after each change, a `ping` every `keepalive_seconds`,
  `unavailable` while the database cannot be read), `/api/supervisor` the supervisor figures;
* `/tickets/<id>` a ticket's SLA story (`sinks.wallboard.ticket_page`);
* `/healthz` 200 while the database answers, `/metrics` Prometheus (board reads by result; its own
  `TAWASUL_METRICS_TOKEN`): neither behind the wall display's token.

With `config.token` every route but `/healthz` needs `Authorization: Bearer <token>` or the
cookie the page gets from one visit with `?token=<token>`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from sinks.db.engine import make_engine
from sinks.wallboard import ticket_page
from sinks.wallboard.config import WallboardConfig, WallboardError
from sinks.wallboard.live import LiveBoard
from sinks.wallboard.page import STATIC, PageChoice, render_page
from sinks.wallboard.supervisor_queries import read_supervisor
from tawasul.infra.metrics import Metrics
from tawasul.infra.metrics_server import metrics_handler

__all__ = ["ROUTES", "STATIC", "TOKEN_COOKIE", "create_app"]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONFIG: Final = web.AppKey("config", WallboardConfig)
ENGINE: Final = web.AppKey("engine", Engine)
LIVE: Final = web.AppKey("live", LiveBoard)
CLOCK: Final[web.AppKey[Clock]] = web.AppKey("clock")
METRICS: Final = web.AppKey("metrics", Metrics)
TOKEN_COOKIE: Final = "tawasul_wallboard_token"
OPEN_PATHS: Final = frozenset({"/healthz", "/metrics"})
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
NO_STORE: Final = {"Cache-Control": "no-store"}


def wall_clock() -> datetime:
    return datetime.now(UTC)


def create_app(config: WallboardConfig, *, clock: Clock = wall_clock, engine: Engine | None = None) -> web.Application:
    """The wall display app; it opens (and later disposes) an engine for `config.database_url`
    unless `engine` is given."""
    app = web.Application(middlewares=[_security_headers, _token_check])
    app[CONFIG] = config
    app[CLOCK] = clock
    app[METRICS] = metrics = Metrics(role="wallboard")

    async def database(app: web.Application) -> AsyncIterator[None]:
        own = engine is None
        app[ENGINE] = make_engine(config.database_url) if engine is None else engine
        app[LIVE] = LiveBoard(app[ENGINE], config, clock)
        await app[LIVE].start()
        yield
        await app[LIVE].stop()
        if own:
            app[ENGINE].dispose()

    async def end_streams(app: web.Application) -> None:
        await app[LIVE].stop()

    app.cleanup_ctx.append(database)
    app.on_shutdown.append(end_streams)
    app.router.add_get("/metrics", metrics_handler(metrics.registry))
    app.router.add_routes(ROUTES)
    return app


# -- middlewares ----------------------------------------------------------------------------------
@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def _token_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With a token configured: a bearer header, the cookie, or `?token=` (which sets the cookie and
    sends the browser to the same address without it)."""
    token = request.app[CONFIG].token
    if not token or request.path in OPEN_PATHS:
        return await handler(request)
    offered = request.query.get("token")
    if offered is not None:
        if not _same(offered, token):
            raise _unauthorized()
        clean = request.rel_url.with_query([(k, v) for k, v in request.query.items() if k != "token"])
        response = web.HTTPSeeOther(location=str(clean))
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict", path="/", secure=request.secure)
        raise response
    header = request.headers.get("Authorization", "")
    presented = header[7:] if header.startswith("Bearer ") else request.cookies.get(TOKEN_COOKIE, "")
    if not _same(presented, token):
        raise _unauthorized()
    return await handler(request)


def _same(presented: str, token: str) -> bool:
    return hmac.compare_digest(presented.encode(), token.encode())


def _unauthorized() -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(
        text=json.dumps({"error": "a valid wall display token is needed"}),
        content_type="application/json",
        headers={"WWW-Authenticate": "Bearer"},
    )


# -- pages ----------------------------------------------------------------------------------------
def _page(name: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            body = render_page(name, request.query.get("lang"), request.query.get("digits"))
        except PageChoice as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        return web.Response(text=body, content_type="text/html", headers={"Cache-Control": "no-cache"})

    return handler


# -- data -----------------------------------------------------------------------------------------
async def _board(request: web.Request) -> web.Response:
    try:
        board = await request.app[LIVE].current()
    except WallboardError:
        request.app[METRICS].wallboard_reads.labels(result="unavailable").inc()
        return web.json_response({"error": "database unavailable"}, status=503, headers=NO_STORE)
    request.app[METRICS].wallboard_reads.labels(result="ok").inc()
    return web.json_response(board.to_json(), headers=NO_STORE)


async def _events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: the board now, then after each change; pings in between."""
    live, config = request.app[LIVE], request.app[CONFIG]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
            **SECURITY_HEADERS,
        }
    )
    await response.prepare(request)
    queue = live.subscribe()
    try:
        await response.write(b"retry: 1000\n\n")
        snapshot = await live.latest()
        sent, sequence = None, 0
        while snapshot is not None:
            if snapshot is not sent:  # the first board may also have been queued
                sequence += 1
                if isinstance(snapshot, WallboardError):
                    await response.write(_sse("unavailable", {"error": "database unavailable"}, sequence))
                else:
                    await response.write(_sse("board", snapshot.to_json(), sequence))
                sent = snapshot
            snapshot = await _next(queue, response, config.keepalive_seconds, request.app[CLOCK])
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        live.unsubscribe(queue)
    return response


async def _next(queue: asyncio.Queue[Any], response: web.StreamResponse, keepalive: float, clock: Clock) -> Any:
    """The next snapshot of `queue`, sending a ping every `keepalive` seconds while none comes."""
    while True:
        try:
            return await asyncio.wait_for(queue.get(), keepalive)
        except TimeoutError:
            await response.write(_sse("ping", {"at": clock().isoformat()}, None))


def _sse(event: str, data: dict[str, Any], sequence: int | None) -> bytes:
    lines = [f"event: {event}"]
    if sequence is not None:
        lines.append(f"id: {sequence}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), ensure_ascii=False))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


async def _supervisor(request: web.Request) -> web.Response:
    config, engine, clock = request.app[CONFIG], request.app[ENGINE], request.app[CLOCK]
    try:
        view = await asyncio.to_thread(read_supervisor, engine, config, clock())
    except WallboardError:
        return web.json_response({"error": "database unavailable"}, status=503, headers=NO_STORE)
    return web.json_response(view, headers=NO_STORE)


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


ROUTES: Final[list[web.AbstractRouteDef]] = [
    web.get("/", _page("index.html")),
    web.get("/supervisor", _page("supervisor.html")),
    web.get("/api/wallboard", _board),
    web.get("/api/wallboard/events", _events),
    web.get("/api/supervisor", _supervisor),
    web.get("/tickets/{ticket_id}", ticket_page.handle),
    web.get("/healthz", _health),
    web.static("/static/", STATIC, show_index=False),
]
"""Every route of the wall display (the static files last)."""

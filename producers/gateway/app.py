"""The aiohttp application: `POST /v1/events`, `GET /healthz`, `GET /metrics`.

```python
app = create_app(settings, load_secrets("secrets.yaml"), pseudonymiser=from_env(required=False))
web.run_app(app, host="127.0.0.1", port=8080, access_log=None)
```

Answers of `POST /v1/events` (JSON bodies; every response has `X-Request-Id`):
202 `{"accepted": [ids]}` once Kafka confirmed every event; 400 `{"accepted": [...],
"rejected": [{"index", "id", "reason"}]}` (the valid events are published all the same);
403 the same body when an event is one the adapter may not send (type, channel, source);
401 bad, missing, stale or replayed credentials; 413 body over `max_body_bytes`; 415 other
content types; 429 the adapter's rate limit (`Retry-After`); 503 Kafka or the replay-protection
database unreachable (nothing is acknowledged; the request may be sent again).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from producers.gateway.auth import Authenticator, AuthError, Credentials
from producers.gateway.config import AdapterRegistry
from producers.gateway.health import KafkaHealth, PublisherSlot, UnavailableError
from producers.gateway.ingest import CONTENT_TYPES, BodyKind
from producers.gateway.publishing import Dispatcher, Published
from producers.gateway.ratelimit import RateLimiter, retry_after_header
from producers.gateway.replay import DatabaseReplayStore, ReplayStoreError
from producers.publisher import EventPublisher, PublishError
from sinks.db.engine import make_engine
from tawasul.infra.metrics import Metrics
from tawasul.infra.metrics_server import metrics_handler
from tawasul.infra.pseudonymise import Pseudonymiser
from tawasul.infra.settings import Settings
from tawasul.infra.topics import DEAD_LETTER, EVENTS

logger = logging.getLogger("tawasul.gateway")
access_logger = logging.getLogger("tawasul.gateway.access")

REQUEST_ID_HEADER: Final = "X-Request-Id"
REQUEST_ID: Final = web.RequestKey("request_id", str)
RETRY_AFTER_S: Final = 5
_UNCOUNTED_ROUTES: Final = frozenset({"/healthz", "/metrics"})
LOG_FIELDS: Final = web.RequestKey("log_fields", dict[str, object])
"""Request-dict key of the access-log fields a handler adds (adapter, counts, refusal code)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class GatewayOptions:
    """Limits and timeouts of one gateway."""

    max_body_bytes: int = 1_048_576
    ack_timeout_s: float = 20.0
    """Longest wait for Kafka's confirmation of a request's events (then 503)."""
    kafka_timeout_s: float = 5.0
    """Connect / metadata / request timeout towards Kafka."""
    health_ttl_s: float = 2.0
    tolerance_s: float = 300.0
    """Largest accepted distance between a signature's timestamp and the server clock."""
    workers: int = 8
    """Threads that validate bodies, claim signatures in the database and wait for Kafka's confirmations."""
    replay_max_entries: int = 1_000_000
    """Most live signatures kept in the replay-protection table (then 503 until some expire)."""

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1 or self.workers < 1:
            raise ValueError("max_body_bytes and workers must be positive")
        if self.ack_timeout_s < 3 * self.kafka_timeout_s:
            raise ValueError("ack_timeout_s must be at least 3 × kafka_timeout_s (the producer's delivery timeout)")

    def producer_config(self) -> dict[str, object]:
        """kafka-python settings for a request/response publisher: a send succeeds or fails within `ack_timeout_s`."""
        timeout_ms = int(self.kafka_timeout_s * 1000)
        return {
            "linger_ms": 5,
            "request_timeout_ms": timeout_ms,
            "delivery_timeout_ms": 3 * timeout_ms,
            "max_block_ms": timeout_ms,
            "bootstrap_timeout_ms": timeout_ms,
        }


@dataclass(frozen=True)
class Gateway:
    """Everything a request handler needs, built once per application."""

    options: GatewayOptions
    authenticator: Authenticator
    rate_limiter: RateLimiter
    slot: PublisherSlot
    health: KafkaHealth
    dispatcher: Dispatcher
    metrics: Metrics
    executor: ThreadPoolExecutor


GATEWAY: Final = web.AppKey("gateway", Gateway)


def _json_error(status: int, error: str, reason: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": error, "reason": reason}, status=status, headers=dict(headers or {}))


def _annotate(request: web.Request, **fields: object) -> None:
    request.setdefault(LOG_FIELDS, {}).update(fields)


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed `limit` (declared or streamed)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> web.Response:
    response = _json_error(413, "payload too large", f"the body is larger than {limit} bytes")
    response.force_close()  # do not read (and discard) the rest of an oversized body
    return response


def _unavailable(reason: str) -> web.Response:
    return _json_error(503, "unavailable", reason, {"Retry-After": str(RETRY_AFTER_S)})


async def post_events(request: web.Request) -> web.Response:
    """`POST /v1/events`: authenticate, validate, publish, answer once Kafka confirmed."""
    gateway = request.app[GATEWAY]
    kind = CONTENT_TYPES.get(request.content_type)
    charset = request.charset
    if kind is None or (charset is not None and charset.lower() not in ("utf-8", "utf8")):
        expected = " or ".join(CONTENT_TYPES)
        return _json_error(415, "unsupported media type", f"Content-Type must be {expected} (UTF-8)")
    body = await _read_body(request, gateway.options.max_body_bytes)
    if body is None:
        return _too_large(gateway.options.max_body_bytes)
    _annotate(request, bytes_in=len(body))
    loop = asyncio.get_running_loop()
    try:
        credentials = gateway.authenticator.authenticate(request.headers, body)
    except AuthError as exc:
        return _unauthorized(request, exc)
    _annotate(request, adapter=credentials.adapter.name, auth=credentials.method)
    limited = _rate_limited(gateway, credentials)
    if limited is not None:
        return limited
    status = await gateway.health.status()
    if not status.healthy:
        return _unavailable(status.reason)
    try:
        published = await loop.run_in_executor(
            gateway.executor,
            _claim_and_process,
            gateway,
            credentials,
            body,
            kind,
            request[REQUEST_ID],
        )
    except AuthError as exc:  # a replay: it does not use up the adapter's rate
        gateway.rate_limiter.refund(credentials.adapter.name)
        return _unauthorized(request, exc)
    except ReplayStoreError as exc:
        gateway.rate_limiter.refund(credentials.adapter.name)
        return _unavailable(str(exc))
    except UnavailableError as exc:
        await _release(gateway, credentials)
        gateway.health.mark_unhealthy(str(exc))
        return _unavailable(str(exc))
    if published.forbidden:
        gateway.metrics.gateway_forbidden_events.labels(adapter=credentials.adapter.name).inc(published.forbidden)
    return _answer(request, published)


def _claim_and_process(
    gateway: Gateway,
    credentials: Credentials,
    body: bytes,
    kind: BodyKind,
    request_id: str,
) -> Published:
    """In a worker thread: record the signature as used (raises AuthError for a replay), then
    validate and publish. One thread hop for both: the database write and Kafka's acknowledgement."""
    gateway.authenticator.claim(credentials)
    return gateway.dispatcher.process(body, kind, credentials.adapter, request_id)


async def _release(gateway: Gateway, credentials: Credentials) -> None:
    """Forget a signed request's signature (blocking database write, in the executor)."""
    if credentials.replay_key is not None:
        await asyncio.get_running_loop().run_in_executor(gateway.executor, gateway.authenticator.release, credentials)


def _unauthorized(request: web.Request, exc: AuthError) -> web.Response:
    _annotate(request, refused=exc.code)
    request.app[GATEWAY].metrics.gateway_auth_refusals.labels(reason=exc.code).inc()
    return _json_error(401, "unauthorized", exc.message, {"WWW-Authenticate": 'Bearer realm="tawasul"'})


def _rate_limited(gateway: Gateway, credentials: Credentials) -> web.Response | None:
    """429 when the adapter's token bucket is empty (checked before any database write)."""
    wait_s = gateway.rate_limiter.take(credentials.adapter.name)
    if wait_s <= 0:
        return None
    gateway.metrics.gateway_rate_limited.labels(adapter=credentials.adapter.name).inc()
    limit = credentials.adapter.rate_limit
    reason = f"rate limit of adapter {credentials.adapter.name}: {limit.per_second:g} requests/s, burst {limit.burst}"
    return _json_error(429, "too many requests", reason, {"Retry-After": retry_after_header(wait_s)})


def _answer(request: web.Request, published: Published) -> web.Response:
    _annotate(request, accepted=len(published.accepted), rejected=len(published.rejected))
    if not published.rejected:
        return web.json_response({"accepted": list(published.accepted)}, status=202)
    rejected = [{"index": item.index, "id": item.event_id, "reason": item.reason} for item in published.rejected]
    status = 403 if published.forbidden else 400
    return web.json_response({"accepted": list(published.accepted), "rejected": rejected}, status=status)


async def healthz(request: web.Request) -> web.Response:
    """200 while the gateway can publish, 503 otherwise."""
    gateway = request.app[GATEWAY]
    status = await gateway.health.status()
    if status.healthy:
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "unavailable", "reason": status.reason}, status=503)


REFUSAL_REASONS: Final = {
    400: "invalid_event",
    401: "unauthorized",
    403: "forbidden",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}
"""Answer status -> the `reason` label of `tawasul_gateway_refusals_total` (any other 4xx/5xx: other;
every reason is one of `tawasul.infra.metrics.GATEWAY_REFUSAL_REASONS`)."""


def _route_name(request: web.Request) -> str:
    """The matched route's template (never the raw path, which a client may fill with anything)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, JSON errors, the structured access log and the request counter."""
    request_id = uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    response: web.StreamResponse
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        response = _json_error(exc.status, exc.reason.lower(), exc.reason, headers)
    except Exception:
        logger.exception("request failed", extra={"request_id": request_id})
        response = _json_error(500, "internal error", "the gateway failed; see its log")
    response.headers[REQUEST_ID_HEADER] = request_id
    route = _route_name(request)
    if route not in _UNCOUNTED_ROUTES:
        metrics = request.app[GATEWAY].metrics
        metrics.gateway_requests.labels(status=str(response.status)).inc()
        if response.status >= 400:
            metrics.gateway_refusals.labels(reason=REFUSAL_REASONS.get(response.status, "other")).inc()
    access_logger.info(
        "request",
        extra={
            "request_id": request_id,
            "method": request.method,
            "route": route,
            "status": response.status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            **request.get(LOG_FIELDS, {}),
        },
    )
    return response


def default_publisher_factory(
    settings: Settings,
    options: GatewayOptions,
    metrics: Metrics,
) -> Callable[[], EventPublisher]:
    def factory() -> EventPublisher:
        return EventPublisher(
            settings,
            client_id="tawasul-gateway",
            producer_config=options.producer_config(),
            metrics=metrics,
        )

    return factory


def create_app(
    settings: Settings,
    adapters: AdapterRegistry,
    *,
    options: GatewayOptions | None = None,
    metrics: Metrics | None = None,
    pseudonymiser: Pseudonymiser | None = None,
    publisher_factory: Callable[[], EventPublisher] | None = None,
    replay_store: DatabaseReplayStore | None = None,
) -> web.Application:
    """The gateway application; its publisher is created on first need and flushed on shutdown.

    Signatures are claimed in `replay_store`, by default one on `settings.database_url`
    (migrated: `tawasul db upgrade`), closed with the application.
    """
    options = options or GatewayOptions()
    metrics = metrics or Metrics(role="gateway")
    if replay_store is None:
        replay_store = DatabaseReplayStore(
            make_engine(settings.database_url),
            max_entries=options.replay_max_entries,
            owns_engine=True,
        )
    slot = PublisherSlot(
        publisher_factory or default_publisher_factory(settings, options, metrics),
        retry_s=options.health_ttl_s,
    )
    gateway = Gateway(
        options=options,
        authenticator=Authenticator(adapters, replay_store=replay_store, tolerance_s=options.tolerance_s),
        rate_limiter=RateLimiter((adapter.name, adapter.rate_limit) for adapter in adapters),
        slot=slot,
        health=KafkaHealth(
            settings.kafka,
            [settings.topic(EVENTS.name), settings.topic(DEAD_LETTER.name)],
            slot,
            ttl_s=options.health_ttl_s,
            timeout_s=options.kafka_timeout_s,
        ),
        dispatcher=Dispatcher(slot, pseudonymiser, ack_timeout_s=options.ack_timeout_s),
        metrics=metrics,
        executor=ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="tawasul-gateway"),
    )
    app = web.Application(middlewares=[request_context], client_max_size=options.max_body_bytes)
    app[GATEWAY] = gateway
    app.router.add_post("/v1/events", post_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_handler(metrics.registry))
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """At start, connect to Kafka in the background; at the end, flush and close the publisher."""
    gateway = app[GATEWAY]
    warm_up = asyncio.create_task(gateway.health.status())
    yield
    await warm_up
    await gateway.health.settle()
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(gateway.executor, gateway.slot.close, gateway.options.ack_timeout_s)
    except PublishError as exc:
        logger.error("publisher closed with unconfirmed sends", extra={"error": str(exc)})
    await loop.run_in_executor(gateway.executor, gateway.health.close)
    await loop.run_in_executor(gateway.executor, gateway.authenticator.replay_store.close)
    gateway.executor.shutdown(wait=True)
    logger.info("gateway stopped")


def run_kwargs() -> dict[str, Any]:
    """`web.run_app` settings: no aiohttp access log (ours is structured), graceful SIGTERM."""
    return {"access_log": None, "handle_signals": True, "print": None, "shutdown_timeout": 30.0}

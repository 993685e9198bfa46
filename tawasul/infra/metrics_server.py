"""Serve a `Metrics` registry over HTTP for Prometheus to scrape (`/metrics`).

```python
server = start_metrics_server(metrics.registry, port=9464)   # a daemon thread
server.url   # http://127.0.0.1:9464/metrics (loopback by default; --metrics-host 0.0.0.0 in containers)
server.close()
```

Every metrics endpoint (this one, and the gateway's and wall display's through `metrics_handler`)
answers 401 without `Authorization: Bearer <token>` when `TAWASUL_METRICS_TOKEN` is set; this
server also answers `GET /healthz` (200, no token: for container health checks).
`metrics_options` adds `--metrics-host` / `--metrics-port` to a click command.
"""

from __future__ import annotations

import hmac
import os
import threading
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Final, TypeVar
from wsgiref.simple_server import WSGIServer, make_server

import click
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

__all__ = [
    "DEFAULT_METRICS_HOST",
    "DEFAULT_METRICS_PORT",
    "MetricsServer",
    "MetricsServerError",
    "metrics_handler",
    "metrics_options",
    "start_metrics_server",
]

DEFAULT_METRICS_PORT: Final = 9464
DEFAULT_METRICS_HOST: Final = "127.0.0.1"
ENV_METRICS_PORT: Final = "TAWASUL_METRICS_PORT"
ENV_METRICS_HOST: Final = "TAWASUL_METRICS_HOST"
ENV_METRICS_TOKEN: Final = "TAWASUL_METRICS_TOKEN"

F = TypeVar("F", bound=Callable[..., Any])


class MetricsServerError(OSError):
    """The metrics endpoint could not be opened (port taken, bad address)."""


class MetricsServer:
    """A running `/metrics` endpoint; `close()` stops it."""

    def __init__(self, httpd: WSGIServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def metrics_token(environ: dict[str, str] | None = None) -> str | None:
    """The bearer token every /metrics endpoint requires (`TAWASUL_METRICS_TOKEN`), None: open."""
    token = (os.environ if environ is None else environ).get(ENV_METRICS_TOKEN, "").strip()
    return token or None


def authorised(header: str | None, token: str | None) -> bool:
    """True when no token is required, or `header` is `Bearer <token>` (compared in constant time)."""
    if token is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


_UNAUTHORISED: Final = b"metrics need Authorization: Bearer <TAWASUL_METRICS_TOKEN>\n"
_CHALLENGE: Final = ("WWW-Authenticate", 'Bearer realm="tawasul-metrics"')


def _wsgi_app(registry: CollectorRegistry, token: str | None) -> Callable[..., Iterable[bytes]]:
    exposition = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if not authorised(environ.get("HTTP_AUTHORIZATION"), token):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), _CHALLENGE])
            return [_UNAUTHORISED]
        return exposition(environ, start_response)  # type: ignore[no-any-return]  # prometheus_client's WSGI app is untyped

    return app


def start_metrics_server(
    registry: CollectorRegistry,
    port: int = DEFAULT_METRICS_PORT,
    host: str = DEFAULT_METRICS_HOST,
    token: str | None = None,
) -> MetricsServer:
    """Serve `registry` on `host:port` in a daemon thread (`port=0` picks a free port); `token`
    (default: `TAWASUL_METRICS_TOKEN`) is then required as a bearer token."""
    token = token if token is not None else metrics_token()
    try:
        httpd = make_server(host, port, _wsgi_app(registry, token), ThreadingWSGIServer, handler_class=_SilentHandler)
    except OSError as exc:
        raise MetricsServerError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
    thread = threading.Thread(target=httpd.serve_forever, name="tawasul-metrics", daemon=True)
    thread.start()
    return MetricsServer(httpd, thread)


def metrics_handler(
    registry: CollectorRegistry, token: str | None = None
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler exposing `registry`, for apps that already run an aiohttp server;
    `token` (default: `TAWASUL_METRICS_TOKEN`) is then required as a bearer token."""
    token = token if token is not None else metrics_token()

    async def handle(request: web.Request) -> web.Response:
        if not authorised(request.headers.get("Authorization"), token):
            return web.Response(status=401, body=_UNAUTHORISED, content_type="text/plain", headers=dict([_CHALLENGE]))
        body = generate_latest(registry)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    return handle


def metrics_options(func: F) -> F:
    """Add `--metrics-host` and `--metrics-port` (passed as `metrics_host`, `metrics_port`)."""

    port = click.option(
        "--metrics-port",
        "metrics_port",
        type=click.IntRange(0, 65535),
        envvar=ENV_METRICS_PORT,
        default=DEFAULT_METRICS_PORT,
        show_default=True,
        help=f"Port of the Prometheus /metrics endpoint [env {ENV_METRICS_PORT}]",
    )
    host = click.option(
        "--metrics-host",
        "metrics_host",
        envvar=ENV_METRICS_HOST,
        default=DEFAULT_METRICS_HOST,
        show_default=True,
        help=f"Address the /metrics endpoint listens on [env {ENV_METRICS_HOST}]",
    )
    return port(host(func))

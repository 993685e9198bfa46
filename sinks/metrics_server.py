"""Serve a `Metrics` registry over HTTP for Prometheus to scrape (`/metrics`).

```python
server = start_metrics_server(metrics.registry, port=9464)   # a daemon thread
server.url   # http://127.0.0.1:9464/metrics (loopback by default; --metrics-host 0.0.0.0 in containers)
server.close()
```

`metrics_options` adds `--metrics-host` / `--metrics-port` to a click command.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, TypeVar
from wsgiref.simple_server import WSGIServer

import click
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, start_http_server

__all__ = [
    "DEFAULT_METRICS_HOST", "DEFAULT_METRICS_PORT", "MetricsServer", "MetricsServerError",
    "metrics_handler", "metrics_options", "start_metrics_server",
]

DEFAULT_METRICS_PORT: Final = 9464
DEFAULT_METRICS_HOST: Final = "127.0.0.1"
ENV_METRICS_PORT: Final = "TAWASUL_METRICS_PORT"
ENV_METRICS_HOST: Final = "TAWASUL_METRICS_HOST"

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

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def start_metrics_server(registry: CollectorRegistry, port: int = DEFAULT_METRICS_PORT,
                         host: str = DEFAULT_METRICS_HOST) -> MetricsServer:
    """Serve `registry` on `host:port` in a daemon thread (`port=0` picks a free port)."""
    try:
        httpd, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise MetricsServerError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
    return MetricsServer(httpd, thread)


def metrics_handler(registry: CollectorRegistry) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler exposing `registry`, for apps that already run an aiohttp server."""

    async def handle(request: web.Request) -> web.Response:
        body = generate_latest(registry)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    return handle


def metrics_options(func: F) -> F:
    """Add `--metrics-host` and `--metrics-port` (passed as `metrics_host`, `metrics_port`)."""

    port = click.option(
        "--metrics-port", "metrics_port", type=click.IntRange(0, 65535), envvar=ENV_METRICS_PORT,
        default=DEFAULT_METRICS_PORT, show_default=True,
        help=f"Port of the Prometheus /metrics endpoint [env {ENV_METRICS_PORT}]")
    host = click.option(
        "--metrics-host", "metrics_host", envvar=ENV_METRICS_HOST, default=DEFAULT_METRICS_HOST,
        show_default=True, help=f"Address the /metrics endpoint listens on [env {ENV_METRICS_HOST}]")
    return port(host(func))

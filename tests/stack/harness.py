"""The parts the stack test runs beside the compose services: processes, a webhook receiver, a
database proxy that can be cut, and small Prometheus / Alertmanager API readers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T], timeout_s: float, every_s: float = 0.5) -> T:
    """The first truthy result of `check` (exceptions count as not yet), or AssertionError."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            result = check()
            if result:
                return result
            last = result
        except Exception as exc:  # noqa: BLE001 - not yet
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(every_s)


def soft_wait(what: str, check: Callable[[], object], timeout_s: float) -> bool:
    """`wait_for` that returns False on timeout (the caller's assertions report what is missing)."""
    try:
        wait_for(what, check, timeout_s)
    except AssertionError:
        return False
    return True


def get_json(url: str, timeout_s: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.loads(response.read())


# --- processes --------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                os.kill(self.popen.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def spawn(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> Process:
    log = log_dir / f"{name}.log"
    popen = subprocess.Popen(argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return Process(name, popen, log)


# --- webhook receiver -------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    at: float
    receiver: str
    alert: dict[str, Any]


class Webhook:
    """Alertmanager's webhook notifications, one `Delivery` per alert of each notification."""

    def __init__(self, port: int) -> None:
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                now = time.time()
                with owner._lock:
                    for alert in body.get("alerts", []):
                        owner.deliveries.append(Delivery(now, self.path.rsplit("/", 1)[-1], alert))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def firing(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.alert.get("status") == "firing"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- a database proxy the test can cut --------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `upstream`; `cut()` refuses and drops every connection
    (a database outage), `restore()` forwards again on the same port."""

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.port, self.upstream = port, upstream
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        if self._listener is not None:
            try:  # wakes the thread blocked in accept(): a bare close() would leave it accepting
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for end in sockets:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    def close(self) -> None:
        self.cut()


# --- Prometheus / Alertmanager ----------------------------------------------------------------


@dataclass(frozen=True)
class PrometheusApi:
    base: str

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} | ({"time": str(at)} if at is not None else {})
        body = get_json(f"{self.base}/api/v1/query?{urllib.parse.urlencode(params)}")
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def targets(self) -> list[dict[str, Any]]:
        return list(get_json(f"{self.base}/api/v1/targets")["data"]["activeTargets"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(get_json(f"{self.base}/api/v1/alerts")["data"]["alerts"])

    def series(self, match: str) -> list[dict[str, str]]:
        query = urllib.parse.urlencode({"match[]": match})
        return list(get_json(f"{self.base}/api/v1/series?{query}")["data"])


def alertmanager_alerts(base: str) -> list[dict[str, Any]]:
    """Every alert Alertmanager holds, inhibited and silenced ones included."""
    return list(get_json(f"{base}/api/v2/alerts?inhibited=true&silenced=true&active=true"))

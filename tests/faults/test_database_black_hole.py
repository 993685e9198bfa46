"""Fault 5 (unreachable): PostgreSQL made unreachable without closing any connection while
`tawasul sink` writes to it. A proxy between the sink and the server stops forwarding in both
directions (what a powered-off host or a firewall dropping packets looks like from the client:
no FIN, no RST, no answer); new connections are accepted and never answered. After the outage
the server "comes back" as a rebooted host does: the old connections are reset, new ones work.

The sink must wait (alive, storing nothing, committing no offset it has not stored), then store
every published event exactly once and bring its lag to 0.

CI: a 30 s outage, one simulated day at scale 1; `TAWASUL_FAULTS_FULL=1`: 5 minutes, scale 4.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.faults.conftest import FULL
from tests.faults.live import stored_events
from tests.faults.sink_outage import BATCH, outage_run
from tests.stack.harness import TcpProxy
from tests.support.postgres import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
OUTAGE_S = 300.0 if FULL else 30.0


class BlackHoleProxy(TcpProxy):
    """A `TcpProxy` that can also go silent: `black_hole()` holds every byte and every new
    connection unanswered; `come_back()` resets the held connections and forwards again."""

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self._forwarding = threading.Event()
        self._forwarding.set()
        super().__init__(port, upstream)

    def black_hole(self) -> None:
        self._forwarding.clear()

    def come_back(self) -> None:
        with self._lock:
            held, self._sockets = self._sockets, set()
        for end in held:  # RST, not FIN: the peer that rebooted no longer knows these connections
            try:
                end.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                end.shutdown(socket.SHUT_RD)
            except OSError:
                pass
            end.close()
        self._forwarding.set()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if not self._forwarding.is_set():
                with self._lock:
                    self._sockets.add(client)  # accepted by the kernel, never answered
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets |= {client, server}
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._forwarding.wait()
                sink.sendall(data)
        except OSError:
            return
        for end in (source, sink):  # an orderly close of one side is passed on
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture()
def schema_url(postgres_url: str) -> Iterator[tuple[str, str]]:
    """(name, URL) of a fresh schema, reached directly (the test puts its proxy in front)."""
    schema = f"bh_{uuid.uuid4().hex[:10]}"
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in postgres_url else "?"
    yield schema, f"{postgres_url}{separator}options=-csearch_path%3D{schema}"
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.mark.timeout(1200)
def test_the_sink_waits_out_an_unreachable_database_and_loses_nothing(
    kafka_bootstrap: str, schema_url: tuple[str, str], outage_day: Path, tmp_path: Path
) -> None:
    _, direct = schema_url
    parts = make_url(direct)
    proxy = BlackHoleProxy(free_port(), (parts.host or "127.0.0.1", parts.port or 5432))
    proxied = parts.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        with outage_run(kafka_bootstrap, proxied, direct, "black-hole", outage_day, tmp_path) as run:
            run.publish(0)
            run.wait_a_quarter_stored()
            proxy.black_hole()
            went = time.monotonic()
            run.publish(1)
            frozen_rows, _ = stored_events(direct)
            frozen_offsets = run.committed()
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - went)))
            during_rows, _ = stored_events(direct)
            run.alive()
            assert during_rows <= frozen_rows + BATCH  # at most the batch already past the proxy
            assert run.committed() <= frozen_offsets + BATCH
            proxy.come_back()
            rows, ids, drained_s, lag = run.wait_all_stored()
            expected, log = run.expected, run.log
    finally:
        proxy.close()
    print(
        f"\nblack hole {OUTAGE_S:.0f} s: {len(expected)} events, {frozen_rows} stored before, "
        f"all stored {drained_s:.1f} s after the database came back"
    )
    assert ids == expected, f"missing {len(expected - ids)}, extra {len(ids - expected)}"
    assert rows == len(expected)
    assert set(lag.values()) == {0}, lag
    sink_log = log.read_text(errors="replace")
    assert "sink_db_unavailable" in sink_log or "database write failed" in sink_log, sink_log[-3000:]

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
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tawasul.infra.topics import partition_end_offsets
from tests.faults.conftest import FULL, REPO, _child_env, run_tawasul, simulated
from tests.faults.live import split_in_halves, stored_events
from tests.stack.harness import TcpProxy
from tests.support.kafka import committed_offsets
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
    kafka_bootstrap: str, schema_url: tuple[str, str], tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    _, direct = schema_url
    parts = make_url(direct)
    proxy = BlackHoleProxy(free_port(), (parts.host or "127.0.0.1", parts.port or 5432))
    proxied = parts.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    days = simulated(tmp_path_factory, "black-hole", scale="4" if FULL else "1", days=("2025-03-03", "2025-03-04"))
    expected, halves, files = split_in_halves(days, tmp_path)
    prefix = f"blackhole-{uuid.uuid4().hex[:8]}."
    env = {"TAWASUL_KAFKA": kafka_bootstrap, "TAWASUL_TOPIC_PREFIX": prefix, "TAWASUL_DATABASE_URL": proxied}
    assert run_tawasul("topics", "create", env=env).returncode == 0

    log = tmp_path / "sink.log"
    with log.open("ab") as out:
        sink = subprocess.Popen(
            [sys.executable, "-m", "tawasul", "sink", "--metrics-port", "0", "--batch-max", "300"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_child_env(env),
            cwd=REPO,
        )
    events = f"{prefix}tawasul.events"
    group = f"{prefix}tawasul-sink"
    try:
        assert run_tawasul("publish", str(files[0]), env=env).returncode == 0
        deadline = time.monotonic() + 120
        while stored_events(direct)[0] < len(halves[0]) // 4:  # mid-way through the first half
            assert sink.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.05)
        proxy.black_hole()
        went = time.monotonic()
        assert run_tawasul("publish", str(files[1]), env=env).returncode == 0
        frozen_rows, _ = stored_events(direct)
        frozen_offsets = sum(committed_offsets(kafka_bootstrap, group, events).values())
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - went)))
        during_rows, _ = stored_events(direct)
        assert sink.poll() is None, log.read_text(errors="replace")[-3000:]
        assert during_rows <= frozen_rows + 300  # at most the batch already past the proxy
        assert sum(committed_offsets(kafka_bootstrap, group, events).values()) <= frozen_offsets + 300
        proxy.come_back()
        back = time.monotonic()
        deadline = back + 180
        rows, ids = stored_events(direct)
        while ids != expected and time.monotonic() < deadline:
            assert sink.poll() is None, log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
            rows, ids = stored_events(direct)
        drained_s = time.monotonic() - back
        ends = {p: end for (_, p), end in partition_end_offsets(kafka_bootstrap, [events]).items()}
        deadline = time.monotonic() + 60
        while committed_offsets(kafka_bootstrap, group, events) != ends and time.monotonic() < deadline:
            time.sleep(0.5)
        lag = {p: end - committed_offsets(kafka_bootstrap, group, events).get(p, 0) for p, end in ends.items()}
    finally:
        if sink.poll() is None:
            sink.terminate()
            sink.wait(timeout=60)
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

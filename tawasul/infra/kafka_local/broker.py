"""One local Apache Kafka node (KRaft, broker and controller in one JVM) fetched with Maven.

`tawasul.infra.kafka_local.cluster` runs one or several of them as a cluster."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tawasul.infra.kafka_local.errors import BrokerError
from tawasul.infra.kafka_local.java import (
    KAFKA_VERSION,
    MIN_JAVA,
    ensure_libs,
    format_storage,
    java_command,
    java_major_version,
    resource_text,
)
from tawasul.infra.kafka_security import KafkaSecurity

CONTROLLER_PORT = 19093
"""Not Kafka's usual 9093: that is Alertmanager's default port, which docs/monitoring.md runs
beside the broker (and 9094 is its cluster port)."""


@dataclass(frozen=True)
class BrokerLayout:
    """Where one local broker keeps its jars, data, configuration and log."""

    home: Path
    host: str = "localhost"
    port: int = 9092
    controller_port: int = CONTROLLER_PORT
    node_id: int = 1
    voters: str = ""
    """`controller.quorum.voters`; empty: this node alone."""
    listener: str = "PLAINTEXT"
    replicas: int = 1
    """Replicas of Kafka's internal topics (offsets, transactions); min in-sync = replicas - 1, at least 1."""
    extra_properties: str = field(default="", repr=False)
    """More server.properties lines (a secured node's TLS and SASL settings, its password too)."""
    client: KafkaSecurity = KafkaSecurity()
    """How a client (the start probe) reaches this node."""

    @property
    def libs_dir(self) -> Path:
        return self.home / f"kafka-{KAFKA_VERSION}" / "libs"

    @property
    def data_dir(self) -> Path:
        return self.home / f"kafka-data-{self.port}"

    @property
    def config_file(self) -> Path:
        return self.home / f"server-{self.port}.properties"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / f"kafka-{self.port}.log"

    @property
    def console_file(self) -> Path:
        return self.home / "logs" / f"kafka-{self.port}.out"

    @property
    def pid_file(self) -> Path:
        return self.home / f"kafka-{self.port}.pid"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


def default_home() -> Path:
    """`TAWASUL_HOME`, else a folder in the user's cache directory."""
    configured = os.environ.get("TAWASUL_HOME")
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "tawasul"


def bind_error(host: str, port: int) -> OSError | None:
    """Why a server could not listen on `host:port` now (the port taken, ...), None when it could."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host if host != "localhost" else "127.0.0.1", port))
        except OSError as exc:
            return exc
    return None


def port_in_use(host: str, port: int) -> bool:
    return bind_error(host, port) is not None


def _process_state(pid: int) -> str | None:
    """The kernel's one-letter state of a process (`R`, `S`, `Z`, ...), or None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[0]


def _is_ours(pid: int) -> bool:
    """True when `pid` is a live (not zombie) process that may be our broker's JVM."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if _process_state(pid) in ("Z", "X"):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return not cmdline or b"java" in cmdline or b"kafka" in cmdline


def read_pid(layout: BrokerLayout) -> int | None:
    """The pid of our broker if its process is alive, else None (a stale pid file is removed)."""
    try:
        pid = int(layout.pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    if _is_ours(pid):
        return pid
    layout.pid_file.unlink(missing_ok=True)
    return None


def probe(bootstrap: str, timeout_s: float = 3.0, client: KafkaSecurity | None = None) -> str | None:
    """None when a broker at `bootstrap` answers a metadata request, else why it did not
    (`client`: the security settings to connect with, plaintext by default)."""
    client = client or KafkaSecurity()
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    with _quiet("kafka"):
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap,
                client_id="tawasul-probe",
                request_timeout_ms=int(timeout_s * 1000),
                bootstrap_timeout_ms=int(timeout_s * 1000),
                **client.kafka_python(),
            )
        except (KafkaError, OSError) as exc:
            return _described(exc)
        try:
            admin.list_topics()
            return None
        except (KafkaError, OSError) as exc:
            return _described(exc)
        finally:
            admin.close()


def _described(exc: BaseException) -> str:
    """`Type: message`, without the type twice (kafka-python's messages often start with it)."""
    text = str(exc)
    return text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"


def broker_answers(bootstrap: str, timeout_s: float = 3.0) -> bool:
    """True when a broker at `bootstrap` answers a metadata request."""
    return probe(bootstrap, timeout_s) is None


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a library's connection-refused noise while probing a broker that may be down."""
    logger = logging.getLogger(logger_name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _write_config(layout: BrokerLayout) -> None:
    text = resource_text("server.properties.template").format(
        host=layout.host,
        port=layout.port,
        controller_port=layout.controller_port,
        data_dir=layout.data_dir,
        node_id=layout.node_id,
        voters=layout.voters or f"{layout.node_id}@{layout.host}:{layout.controller_port}",
        listener=layout.listener,
        replicas=layout.replicas,
        min_isr=max(1, layout.replicas - 1),
    )
    fd = os.open(layout.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as config:
        config.write(text + ("\n" + layout.extra_properties if layout.extra_properties else ""))


def log_tail(layout: BrokerLayout, lines: int = 20) -> str:
    chunks: list[str] = []
    for path in (layout.console_file, layout.log_file):
        if path.exists():
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            chunks.append(f"--- last lines of {path.name} ---\n" + "\n".join(text))
    return "\n".join(chunks)


def _accepts_connections(layout: BrokerLayout) -> bool:
    try:
        with socket.create_connection((layout.host, layout.port), timeout=2.0):
            return True
    except OSError:
        return False


def start_findings(layout: BrokerLayout, *, since: int, last_probe: str | None, pid: int | None) -> str:
    """What a start that failed left behind: the broker's state, the probe's error, and the log's
    ERROR and FATAL lines written since byte `since` (a clean shutdown's tail alone says nothing).
    Printed last, where a log read from its end shows it."""
    lines = [
        "--- why the start failed ---",
        "broker process: " + (f"running (pid {pid})" if pid is not None else "not running"),
        f"port {layout.port} accepts connections: {'yes' if _accepts_connections(layout) else 'no'}",
        f"last probe of {layout.bootstrap}: {last_probe or 'answered'}",
    ]
    logged = ""
    if layout.log_file.exists():
        with layout.log_file.open("rb") as log:
            log.seek(since if since <= layout.log_file.stat().st_size else 0)
            logged = log.read().decode("utf-8", errors="replace")
    lines.append(f"'Kafka Server started' in the log: {'yes' if 'Kafka Server started' in logged else 'no'}")
    problems = [line for line in logged.splitlines() if "] ERROR " in line or "] FATAL " in line]
    if problems:
        lines.append(f"--- ERROR and FATAL lines of {layout.log_file.name} (last 10 of {len(problems)}) ---")
        lines.extend(problems[-10:])
    return "\n".join(lines)


def start(
    layout: BrokerLayout, *, heap: str = "1g", timeout_s: float = 120.0, echo: Callable[[str], None] = print
) -> bool:
    """Start the broker; returns False when ours was already running. Returns once it answers."""
    if read_pid(layout) is not None and broker_answers(layout.bootstrap):
        return False
    launched = launch(layout, heap=heap, echo=echo)
    await_ready(launched, time.monotonic() + timeout_s)
    return True


@dataclass
class Launched:
    """A node being started: its layout, the process we spawned (None: it already ran), its log offset."""

    layout: BrokerLayout
    process: subprocess.Popen[bytes] | None
    log_start: int


def launch(
    layout: BrokerLayout,
    *,
    heap: str = "1g",
    echo: Callable[[str], None] = print,
    cluster_id: str | None = None,
    format_extra: tuple[str, ...] = (),
) -> Launched:
    """Check Java and the ports, fetch Kafka, write the configuration, format the storage and
    spawn the node's JVM unless it runs; does not wait for it (see `await_ready`)."""
    major = java_major_version()
    if major < MIN_JAVA:
        raise BrokerError(f"Java {major} found, Apache Kafka {KAFKA_VERSION} needs Java {MIN_JAVA} or newer")
    for port in (layout.port, layout.controller_port):
        if read_pid(layout) is None and port_in_use(layout.host, port):
            raise BrokerError(
                f"port {port} on {layout.host} is in use by another process: stop it, or choose other ports "
                f"(--port/--controller-port)"
            )
    ensure_libs(layout, echo=echo)
    layout.home.mkdir(parents=True, exist_ok=True)
    layout.log_file.parent.mkdir(parents=True, exist_ok=True)
    _write_config(layout)
    format_storage(layout, cluster_id, format_extra)
    process: subprocess.Popen[bytes] | None = None
    log_start = layout.log_file.stat().st_size if layout.log_file.exists() else 0
    if read_pid(layout) is None:
        with layout.console_file.open("ab") as console:
            process = subprocess.Popen(
                java_command(layout, "kafka.Kafka", str(layout.config_file), heap=heap),
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        layout.pid_file.write_text(str(process.pid), encoding="utf-8")
    return Launched(layout, process, log_start)


def await_ready(launched: Launched, deadline: float) -> None:
    """Return once the node answers a metadata request; stop it and raise `BrokerError` with
    the findings when it exits or does not answer before `deadline` (monotonic)."""
    layout, process, log_start = launched.layout, launched.process, launched.log_start
    timeout_s = max(0.0, deadline - time.monotonic())
    last_probe: str | None = "not probed yet"
    while time.monotonic() < deadline:
        exited = process.poll() if process is not None else (None if read_pid(layout) else -1)
        if exited is not None:
            layout.pid_file.unlink(missing_ok=True)
            findings = start_findings(layout, since=log_start, last_probe=last_probe, pid=None)
            raise BrokerError(f"the broker exited during start-up (status {exited})\n{log_tail(layout)}\n{findings}")
        last_probe = probe(
            layout.bootstrap, timeout_s=min(2.0, max(0.2, deadline - time.monotonic())), client=layout.client
        )
        if last_probe is None:
            return
        time.sleep(0.5)
    findings = start_findings(layout, since=log_start, last_probe=last_probe, pid=read_pid(layout))
    stop(layout)
    raise BrokerError(
        f"the broker did not answer within {timeout_s:.0f} s (a slow machine may need --timeout)\n"
        f"{log_tail(layout)}\n{findings}"
    )


def stop(layout: BrokerLayout, *, timeout_s: float = 60.0) -> bool:
    """Stop the broker cleanly (SIGTERM, then SIGKILL after the timeout). False when none ran."""
    pid = read_pid(layout)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _is_ours(pid):
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
    layout.pid_file.unlink(missing_ok=True)
    while time.monotonic() < deadline and any(
        port_in_use(layout.host, p) for p in (layout.port, layout.controller_port)
    ):
        time.sleep(0.2)
    return True


def status(layout: BrokerLayout) -> str:
    """`running (pid N) on host:port`, `starting (pid N)`, or `stopped`."""
    pid = read_pid(layout)
    if pid is None:
        return "stopped"
    if probe(layout.bootstrap, timeout_s=2.0, client=layout.client) is None:
        return f"running (pid {pid}) on {layout.bootstrap}"
    return f"not answering (pid {pid}); see {layout.log_file}"

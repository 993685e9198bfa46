"""A local KRaft cluster of one or more nodes on loopback, plain or secured (SASL_SSL, SCRAM-SHA-512).

Node k (1..N) listens for clients on `port + (k-1) * port_step` and for its controller quorum on
`controller_port + (k-1) * port_step` (defaults 9092 / 19093, step 100: 9092, 9192, 9292 ...).
The cluster's shape is saved in `<home>/cluster.json`, so `start` (run again, without flags),
`stop` and `status` act on the whole of it.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tawasul.infra.kafka_local.broker import (
    CONTROLLER_PORT,
    BrokerLayout,
    _is_ours,
    await_ready,
    launch,
    port_in_use,
    read_pid,
)
from tawasul.infra.kafka_local.errors import BrokerError
from tawasul.infra.kafka_local.java import new_cluster_id
from tawasul.infra.kafka_local.tls import (
    CLIENT_USER,
    Secrets,
    broker_properties,
    ensure_secrets,
    scram_format_arguments,
)
from tawasul.infra.kafka_security import (
    ENV_SASL_MECHANISM,
    ENV_SASL_PASSWORD,
    ENV_SASL_USERNAME,
    ENV_SECURITY_PROTOCOL,
    ENV_SSL_CAFILE,
    KafkaSecurity,
)
from tawasul.infra.settings import ENV_KAFKA

STATE_FILE = "cluster.json"
DEFAULT_PORT = 9092
DEFAULT_PORT_STEP = 100
MAX_BROKERS = 9


@dataclass(frozen=True)
class ClusterPlan:
    """The shape of a local cluster: how many nodes, on which ports, secured or not."""

    brokers: int = 1
    port: int = DEFAULT_PORT
    controller_port: int = CONTROLLER_PORT
    port_step: int = DEFAULT_PORT_STEP
    secure: bool = False
    host: str = "localhost"

    def ports(self) -> list[tuple[int, int, int]]:
        """(node id, client port, controller port) of every node."""
        return [
            (k, self.port + (k - 1) * self.port_step, self.controller_port + (k - 1) * self.port_step)
            for k in range(1, self.brokers + 1)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self.host}:{port}" for _, port, _ in self.ports())


@dataclass(frozen=True)
class Cluster:
    """A plan placed in a home folder, with the secrets of a secured one."""

    home: Path
    plan: ClusterPlan
    cluster_id: str
    secrets: Secrets | None = None

    @property
    def client(self) -> KafkaSecurity:
        """How a client of this cluster connects."""
        if self.secrets is None:
            return KafkaSecurity()
        return KafkaSecurity(
            "SASL_SSL", "SCRAM-SHA-512", CLIENT_USER, self.secrets.client_password, str(self.secrets.ca_file)
        )

    def layouts(self) -> list[BrokerLayout]:
        plan = self.plan
        voters = ",".join(f"{k}@{plan.host}:{cport}" for k, _, cport in plan.ports())
        extra = broker_properties(self.secrets) if self.secrets else ""
        return [
            BrokerLayout(
                home=self.home,
                host=plan.host,
                port=port,
                controller_port=cport,
                node_id=k,
                voters=voters,
                listener="SASL_SSL" if plan.secure else "PLAINTEXT",
                replicas=min(3, plan.brokers),
                extra_properties=extra,
                client=self.client,
            )
            for k, port, cport in plan.ports()
        ]

    def exports(self) -> list[str]:
        """The client settings as `export NAME=value` lines for a POSIX shell's `eval`."""
        client = self.client
        values = [(ENV_KAFKA, self.plan.bootstrap), (ENV_SECURITY_PROTOCOL, client.protocol)]
        if client.uses_sasl:
            values += [
                (ENV_SASL_MECHANISM, client.mechanism),
                (ENV_SASL_USERNAME, client.username or ""),
                (ENV_SASL_PASSWORD, client.password or ""),
            ]
        if client.cafile:
            values.append((ENV_SSL_CAFILE, client.cafile))
        return [f"export {name}={shlex.quote(value)}" for name, value in values]


def _load(home: Path) -> tuple[ClusterPlan, str] | None:
    try:
        saved = json.loads((home / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cluster_id = saved.pop("cluster_id", "")
    return ClusterPlan(**{key: saved[key] for key in asdict(ClusterPlan()) if key in saved}), cluster_id


def _has_data(home: Path, plan: ClusterPlan) -> bool:
    return any((home / f"kafka-data-{port}" / "meta.properties").exists() for _, port, _ in plan.ports())


def resolve(home: Path, **requested: Any) -> Cluster:
    """The cluster of `home`: the saved one, changed by the `requested` values that are not None.
    A change of shape while the saved cluster's data exists is refused (it would not start)."""
    asked = {key: value for key, value in requested.items() if value is not None}
    loaded = _load(home)
    saved, cluster_id = loaded if loaded else (ClusterPlan(), "")
    plan = replace(saved, **asked)
    if not 1 <= plan.brokers <= MAX_BROKERS:
        raise BrokerError(f"--brokers {plan.brokers}: expected 1 to {MAX_BROKERS}")
    if plan.brokers > 1 and plan.port_step < 1:
        raise BrokerError(f"--port-step {plan.port_step}: expected 1 or more")
    if plan != saved and _has_data(home, saved) and (loaded or plan.brokers > 1 or plan.secure):
        shape = f"{saved.brokers}-node {'secured ' if saved.secure else ''}cluster on {saved.bootstrap}"
        raise BrokerError(
            f"{home} holds a {shape}: stop it and delete that folder, or choose another --home / TAWASUL_HOME"
        )
    return Cluster(home, plan, cluster_id or new_cluster_id(), ensure_secrets(home, plan.host) if plan.secure else None)


def _save(cluster: Cluster) -> None:
    cluster.home.mkdir(parents=True, exist_ok=True)
    state = {**asdict(cluster.plan), "cluster_id": cluster.cluster_id}
    (cluster.home / STATE_FILE).write_text(json.dumps(state, indent=1), encoding="utf-8")


def start(
    cluster: Cluster, *, heap: str | None = None, timeout_s: float = 120.0, echo: Callable[[str], None] = print
) -> list[int]:
    """Start every node that is down and wait until all answer; returns the ids of those started."""
    _save(cluster)
    heap = heap or ("1g" if cluster.plan.brokers == 1 else "512m")
    extra = tuple(scram_format_arguments(cluster.secrets)) if cluster.secrets else ()
    launched = []
    for layout in cluster.layouts():
        running = read_pid(layout) is not None
        launched.append(launch(layout, heap=heap, echo=echo, cluster_id=cluster.cluster_id, format_extra=extra))
        if not running:
            echo(f"starting Kafka node {layout.node_id} on {layout.bootstrap}")
    deadline = time.monotonic() + timeout_s
    for node in launched:
        await_ready(node, deadline)
    return [node.layout.node_id for node in launched if node.process is not None]


def stop(cluster: Cluster, *, timeout_s: float = 60.0) -> list[int]:
    """Stop every running node (SIGTERM to all at once, SIGKILL after the timeout); their ids."""
    running = [(layout, pid) for layout in cluster.layouts() if (pid := read_pid(layout)) is not None]
    for _, pid in running:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for layout, pid in running:
        while _is_ours(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _is_ours(pid):
            os.kill(pid, signal.SIGKILL)
        layout.pid_file.unlink(missing_ok=True)
        while time.monotonic() < deadline and any(
            port_in_use(layout.host, port) for port in (layout.port, layout.controller_port)
        ):
            time.sleep(0.2)
    return [layout.node_id for layout, _ in running]


def status(cluster: Cluster) -> dict[str, Any]:
    """`{"bootstrap": "host:port,...", "nodes": [{"id", "port", "pid", "running"}, ...]}`."""
    nodes = []
    for layout in cluster.layouts():
        pid = read_pid(layout)
        nodes.append({"id": layout.node_id, "port": layout.port, "pid": pid, "running": pid is not None})
    return {"bootstrap": cluster.plan.bootstrap, "nodes": nodes}

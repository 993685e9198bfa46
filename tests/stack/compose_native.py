"""docker-compose.yml as native processes: what the stack test runs, read from the compose file.

Nothing here lists services, options or ports: each Tawasul service (those of the `tawasul`
image, outside any profile) is started with its own `command` and `environment`, after its
`depends_on`, and waited for with its own `healthcheck`. The translation only does what a
container engine would:

- host names: `<service>:<port>` becomes `127.0.0.1:<port>` (a port a service listens on is
  remapped to a free one of 19400-19499, consistently in its command, its health check and the
  Prometheus targets, since every process here shares one network namespace);
- volumes and secrets: their container paths become a temporary folder and the repository's file;
- `${VAR:-default}` is interpolated from the environment the test gives (its own secrets);
- three settings of the environment come from the test, not the file (documented in
  docs/monitoring.md): the broker (`TAWASUL_KAFKA`), the database (`TAWASUL_DATABASE_URL`, a fresh
  schema of the test's PostgreSQL behind a proxy the test can cut) and a unique
  `TAWASUL_TOPIC_PREFIX`.

Prometheus and Alertmanager get their own files rewritten the same way, plus the accelerated time
of `scaled_rules` / `scaled_alertmanager`.
"""

from __future__ import annotations

import re
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

REPO: Final = Path(__file__).resolve().parents[2]
TAWASUL_IMAGE: Final = "tawasul:latest"
PORT_RANGE: Final = range(19400, 19500)
TIME_SCALE: Final = 60
"""Accelerated time: one minute of a rule's `for:` or range window lasts one second here."""
SCALED_THRESHOLDS: Final = {"TawasulWorkerEventsStale": ("> 300", "> 5")}
"""Thresholds that are wall-clock durations too, scaled like the windows (300 s -> 5 s)."""
PORT_OPTIONS: Final = ("--port", "--metrics-port")
_INTERPOLATION: Final = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
_DURATION: Final = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNIT_S: Final = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def load_compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


def interpolate(value: str, environ: dict[str, str]) -> str:
    """Compose's `${VAR}` / `${VAR:-default}` with `environ` (an unset or empty VAR takes the default)."""
    return _INTERPOLATION.sub(lambda m: environ.get(m.group(1)) or (m.group(2) or ""), value)


def free_port(taken: set[int]) -> int:
    """A port of 19400-19499 nobody listens on and not handed out yet."""
    for port in PORT_RANGE:
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError("no free port in 19400-19499")


@dataclass
class NativeService:
    """One compose service as a native process."""

    name: str
    argv: list[str]
    environment: dict[str, str]
    one_shot: bool
    depends_on: dict[str, str]
    healthcheck: list[str] | None
    ports: dict[int, int] = field(default_factory=dict)
    """Port in the compose file -> port here."""


@dataclass
class NativeStack:
    services: dict[str, NativeService]
    ports: dict[tuple[str, int], int]
    """(service, port in the compose file) -> port here, for every Tawasul service's listener."""

    def start_order(self) -> list[str]:
        """The services, each after everything it depends on."""
        order: list[str] = []

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in order or name not in self.services:
                return
            if name in path:
                raise ValueError(f"dependency cycle: {' -> '.join((*path, name))}")
            for dependency in self.services[name].depends_on:
                visit(dependency, (*path, name))
            order.append(name)

        for name in self.services:
            visit(name, ())
        return order

    def target(self, host: str, port: int) -> str:
        """A Prometheus target `<service>:<port>` as reachable here."""
        return f"127.0.0.1:{self.ports.get((host, port), port)}"


def tawasul_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services of the Tawasul image that `docker compose up` starts (no profile)."""
    return {
        name: spec
        for name, spec in compose["services"].items()
        if spec.get("image") == TAWASUL_IMAGE and not spec.get("profiles")
    }


def _listening_ports(command: list[str]) -> list[int]:
    return [int(command[i + 1]) for i, arg in enumerate(command[:-1]) if arg in PORT_OPTIONS]


def native_stack(
    compose: dict[str, Any], *, tawasul: str, environ: dict[str, str], overrides: dict[str, str], volumes_dir: Path
) -> NativeStack:
    """Every Tawasul service of `compose` as a `NativeService`.

    `tawasul` is the `tawasul` executable, `environ` what `${...}` reads, `overrides` the
    environment the test sets over the file's (broker, database, topic prefix)."""
    services = tawasul_services(compose)
    taken: set[int] = set()
    ports = {
        (name, port): free_port(taken) for name, spec in services.items() for port in _listening_ports(spec["command"])
    }
    host_names = sorted(compose["services"], key=len, reverse=True)
    host = re.compile(r"(?<![\w.-])(" + "|".join(map(re.escape, host_names)) + r"):(\d+)")
    native: dict[str, NativeService] = {}
    for name, spec in services.items():
        paths = _container_paths(compose, name, spec, volumes_dir)

        def translate(value: str, service: str = name, paths: dict[str, str] = paths) -> str:
            value = interpolate(value, environ)
            value = host.sub(lambda m: f"127.0.0.1:{ports.get((m.group(1), int(m.group(2))), int(m.group(2)))}", value)
            for inside, outside in paths.items():
                value = value.replace(inside, outside)
            return value

        own = {port: ports[(name, port)] for port in _listening_ports(spec["command"])}
        command = [translate(str(arg)) for arg in spec["command"]]
        command = [
            str(own.get(int(arg), arg)) if i and command[i - 1] in PORT_OPTIONS else arg
            for i, arg in enumerate(command)
        ]
        environment = {key: translate(str(value)) for key, value in (spec.get("environment") or {}).items()}
        environment.update(overrides)
        check = spec.get("healthcheck", {}).get("test")
        healthcheck = None
        if check:
            healthcheck = [sys.executable if arg == "python" else _local_ports(str(arg), own) for arg in check[1:]]
        native[name] = NativeService(
            name=name,
            argv=[tawasul, *command],
            environment=environment,
            one_shot=spec.get("restart") == "no",
            depends_on={
                dep: cond["condition"] for dep, cond in (spec.get("depends_on") or {}).items() if dep in services
            },
            healthcheck=healthcheck,
            ports=own,
        )
    return NativeStack(native, ports)


def _local_ports(text: str, own: dict[int, int]) -> str:
    return re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{own.get(int(m.group(1)), int(m.group(1)))}", text)


def _container_paths(compose: dict[str, Any], name: str, spec: dict[str, Any], volumes_dir: Path) -> dict[str, str]:
    """Container path -> local path, for the service's named volumes and secrets."""
    paths: dict[str, str] = {}
    for volume in spec.get("volumes", []):
        source, _, target = str(volume).partition(":")
        target = target.split(":")[0]
        local = (REPO / source) if source.startswith(".") else volumes_dir / name / source
        if not source.startswith("."):
            local.mkdir(parents=True, exist_ok=True)
        paths[target] = str(local)
    for secret in spec.get("secrets", []):
        paths[f"/run/secrets/{secret['target']}"] = str(REPO / compose["secrets"][secret["source"]]["file"])
    return paths


# --- Prometheus and Alertmanager -------------------------------------------------------------


def scale_duration(text: str) -> str:
    """`15m` -> `15s` (TIME_SCALE 60), in milliseconds when below a second (`30s` -> `500ms`)."""

    def one(match: re.Match[str]) -> str:
        seconds = int(match.group(1)) * _UNIT_S[match.group(2)] / TIME_SCALE
        return (
            f"{round(seconds)}s" if seconds >= 1 and seconds == int(seconds) else f"{max(1, round(seconds * 1000))}ms"
        )

    return _DURATION.sub(one, text)


def scaled_rules(text: str) -> str:
    """alerts.yml in accelerated time: every `for:` and every range window divided by TIME_SCALE,
    and the thresholds of SCALED_THRESHOLDS; the expressions are otherwise the same."""
    text = re.sub(r"(?m)^(\s*for: )(\S+)$", lambda m: m.group(1) + scale_duration(m.group(2)), text)
    text = re.sub(r"\[(\d+[smhd])\]", lambda m: f"[{scale_duration(m.group(1))}]", text)
    rules = yaml.safe_load(text)
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") in SCALED_THRESHOLDS:
                before, after = SCALED_THRESHOLDS[rule["alert"]]
                assert before in rule["expr"], (rule["alert"], before)
                rule["expr"] = rule["expr"].replace(before, after)
    return yaml.safe_dump(rules, allow_unicode=True, sort_keys=False)


def prometheus_config(stack: NativeStack, *, rules: Path, alertmanager: str, own: str, interval: str) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with its targets reachable here and the test's intervals."""
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8"))
    config["global"].update({"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval})
    config["rule_files"] = [str(rules)]
    for entry in config["alerting"]["alertmanagers"]:
        for static in entry["static_configs"]:
            static["targets"] = [alertmanager for _ in static["targets"]]
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [
                own
                if target.startswith("localhost:")
                else stack.target(target.rpartition(":")[0], int(target.rpartition(":")[2]))
                for target in static["targets"]
            ]
    return config


WEBHOOK_BASE: Final = "http://127.0.0.1:5001"
"""The placeholder address of every receiver in deploy/alertmanager/alertmanager.yml."""


def scaled_alertmanager(webhook: str) -> str:
    """alertmanager.yml with its webhook address pointed at `webhook` and its timers in accelerated time."""
    text = (REPO / "deploy/alertmanager/alertmanager.yml").read_text(encoding="utf-8")
    assert WEBHOOK_BASE in text
    text = text.replace(WEBHOOK_BASE, webhook)
    return re.sub(
        r"(?m)^(\s*(?:group_wait|group_interval|repeat_interval): )(\S+)$",
        lambda m: m.group(1) + scale_duration(m.group(2)),
        text,
    )

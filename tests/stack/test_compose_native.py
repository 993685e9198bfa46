"""The translation of docker-compose.yml into native processes (no broker, no process started)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.stack.compose_native import (
    REPO,
    SCALED_THRESHOLDS,
    interpolate,
    load_compose,
    native_stack,
    prometheus_config,
    scale_duration,
    scaled_alertmanager,
    scaled_rules,
    tawasul_services,
)


def _stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    return native_stack(
        load_compose(),
        tawasul="tawasul",
        environ={"TAWASUL_PSEUDONYM_KEY": "k"},
        overrides={"TAWASUL_KAFKA": "broker:1"},
        volumes_dir=tmp_path,
    )


def test_interpolation_takes_the_environment_then_the_default() -> None:
    assert interpolate("a${X:-d}b${Y}c", {"X": "x"}) == "axbc"
    assert interpolate("${X:-d}", {"X": ""}) == "d"


def test_durations_are_divided_by_sixty() -> None:
    assert [scale_duration(d) for d in ("15m", "1h", "6h", "30s", "10s", "4h")] == [
        "15s",
        "60s",
        "360s",
        "500ms",
        "167ms",
        "240s",
    ]


def test_every_default_profile_tawasul_service_runs_its_own_command(tmp_path: Path) -> None:
    compose = load_compose()
    stack = _stack(tmp_path)
    assert set(stack.services) == set(tawasul_services(compose))
    assert "simulator" not in stack.services  # the demo profile is not started by `docker compose up`
    for name, service in stack.services.items():
        original = [str(arg) for arg in compose["services"][name]["command"]]
        assert service.argv[0] == "tawasul" and len(service.argv) == len(original) + 1
        for given, native in zip(original, service.argv[1:], strict=True):
            if given != native:  # only ports, secret and volume paths change
                assert given.isdigit() or given.startswith(("/run/secrets/", "/var/lib/")), (name, given, native)
        assert service.environment["TAWASUL_KAFKA"] == "broker:1"
        assert service.environment["TAWASUL_PSEUDONYM_KEY"] == "k"
    order = stack.start_order()
    assert order.index("migrate") < order.index("sink") and order.index("topics") < order.index("worker")


def test_ports_are_remapped_consistently_in_commands_checks_and_targets(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    sink = stack.services["sink"]
    ((inside, here),) = sink.ports.items()
    assert inside == 9464 and 19400 <= here < 19500
    assert str(here) in sink.argv and f"127.0.0.1:{here}/healthz" in " ".join(sink.healthcheck or [])
    config = prometheus_config(
        stack, rules=tmp_path / "r.yml", alertmanager="127.0.0.1:1", own="127.0.0.1:2", interval="1s"
    )
    targets = {job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]}
    assert targets["tawasul-sink"] == f"127.0.0.1:{here}"
    assert all(target.startswith("127.0.0.1:") for target in targets.values())


def test_scaled_rules_keep_every_expression_but_windows_and_named_thresholds() -> None:
    original = yaml.safe_load((REPO / "deploy/prometheus/alerts.yml").read_text())
    scaled = yaml.safe_load(scaled_rules((REPO / "deploy/prometheus/alerts.yml").read_text()))
    for before, after in zip(
        (r for g in original["groups"] for r in g["rules"]),
        (r for g in scaled["groups"] for r in g["rules"]),
        strict=True,
    ):
        expected = re.sub(r"\[(\d+[smhd])\]", lambda m: f"[{scale_duration(m.group(1))}]", before["expr"])
        if before.get("alert") in SCALED_THRESHOLDS:
            expected = expected.replace(*SCALED_THRESHOLDS[before["alert"]])
        assert after["expr"] == expected
        assert after.get("for") == (scale_duration(before["for"]) if "for" in before else None)
        assert after.get("labels") == before.get("labels") and after.get("annotations") == before.get("annotations")


def test_alertmanager_points_every_receiver_at_the_webhook() -> None:
    config = yaml.safe_load(scaled_alertmanager("http://127.0.0.1:19499"))
    urls = [hook["url"] for receiver in config["receivers"] for hook in receiver.get("webhook_configs", [])]
    assert urls and all(url.startswith("http://127.0.0.1:19499/") for url in urls)
    assert config["route"]["group_wait"] == "500ms"

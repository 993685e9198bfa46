"""docker-compose.yml is valid Compose and every service runs a real `tawasul` command."""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import yaml

from tawasul.app.cli import cli

REPO = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


def _compose_schema() -> dict[str, Any]:
    schema_file = resources.files("check_jsonschema").joinpath("builtin_schemas/vendor/compose-spec.json")
    return json.loads(schema_file.read_text(encoding="utf-8"))


def test_compose_file_matches_the_compose_specification() -> None:
    validator = jsonschema.Draft7Validator(_compose_schema())
    errors = sorted(validator.iter_errors(_compose()), key=lambda e: list(e.path))
    assert [f"{list(e.path)}: {e.message}" for e in errors] == []


def test_schema_rejects_a_broken_compose_file() -> None:
    broken = _compose()
    broken["services"]["kafka"]["ports"] = {"not": "a list"}
    broken["services"]["postgres"]["unknown_key"] = 1
    assert len(list(jsonschema.Draft7Validator(_compose_schema()).iter_errors(broken))) >= 2


def test_dependencies_and_mounted_files_exist() -> None:
    compose = _compose()
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
    for secret in compose.get("secrets", {}).values():
        assert (REPO / secret["file"]).exists()


def tawasul_services(compose: dict[str, Any]) -> list[str]:
    """The services that run the Tawasul image (a `tawasul` command line)."""
    return [name for name, service in compose["services"].items() if service.get("image") == "tawasul:latest"]


def _command_path(command_line: list[str]) -> tuple[list[click.Command], list[str], str]:
    """The click commands along `tawasul <command line>` (root first), the remaining arguments and
    an error (empty when every command name exists)."""
    commands: list[click.Command] = [cli]
    context = click.Context(cli, info_name="tawasul")
    args = list(command_line)
    command: click.Command = cli
    while isinstance(command, click.Group):
        if not args:
            return commands, args, "no command given"
        name = args.pop(0)
        found = command.get_command(context, name)
        if found is None:
            return commands, args, f"unknown command {name}"
        command = found
        commands.append(command)
        context = click.Context(command, info_name=name, parent=context)
    return commands, args, ""


@functools.cache
def variables_read_by_the_code() -> frozenset[str]:
    """Every `TAWASUL_*` name the code of the `tawasul` command reads (string constants of its packages)."""
    import ast

    names: set[str] = set()
    for package in ("tawasul", "producers", "sinks", "stream_processors", "schemas"):
        for source in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and re.fullmatch(r"TAWASUL_[A-Z0-9_]+", node.value)
                ):
                    names.add(node.value)
    return frozenset(names)


def variables_named_by_secret_files(compose: dict[str, Any]) -> set[str]:
    """The variables the mounted secret files tell the gateway to read (`hmac_secret_env: NAME`)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if str(key).endswith("_env") and isinstance(value, str):
                    found.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for secret in compose.get("secrets", {}).values():
        walk(yaml.safe_load((REPO / secret["file"]).read_text(encoding="utf-8")))
    return found


def compose_problems(compose: dict[str, Any]) -> list[str]:
    """What the `tawasul` command would not accept in the Tawasul services of `compose`: an unknown
    command or option, an invalid value, or an environment variable that neither an option of the
    command nor the code reads."""
    problems: list[str] = []
    code_variables = variables_read_by_the_code() | variables_named_by_secret_files(compose)
    for service in tawasul_services(compose):
        spec = compose["services"][service]
        in_container = {  # files the container sees under /run/secrets are these files of the repo
            f"/run/secrets/{entry['target']}": str(REPO / compose["secrets"][entry["source"]]["file"])
            for entry in spec.get("secrets", [])
        }
        command_line = [in_container.get(arg, arg) for arg in spec["command"]]
        commands, args, error = _command_path(command_line)
        if error:
            problems.append(f"{service}: {error}")
            continue
        try:
            commands[-1].make_context(command_line[-1], args, parent=click.Context(commands[-2], info_name="tawasul"))
        except click.ClickException as exc:
            problems.append(f"{service}: {exc.format_message()}")
        option_variables = {str(param.envvar) for command in commands for param in command.params if param.envvar}
        for variable in spec.get("environment", {}):
            if variable not in option_variables | code_variables:
                problems.append(f"{service}: environment variable {variable} is read by nothing")
    return problems


def test_every_tawasul_service_runs_a_command_and_variables_that_tawasul_accepts() -> None:
    compose = _compose()
    assert set(tawasul_services(compose)) >= {"topics", "migrate", "worker", "sink", "gateway", "wallboard"}
    assert compose_problems(compose) == []


def test_an_unknown_option_or_variable_in_the_compose_file_is_found() -> None:
    compose = _compose()
    compose["services"]["sink"] = {
        **compose["services"]["sink"],
        "command": [*compose["services"]["sink"]["command"], "--metrics-hots", "x"],
        "environment": {**compose["services"]["sink"]["environment"], "TAWASUL_METRICS_HOTS": "0.0.0.0"},
    }
    compose["services"]["worker"] = {**compose["services"]["worker"], "command": ["wrker"]}
    problems = compose_problems(compose)
    assert any(p.startswith("sink: No such option: --metrics-hots") for p in problems), problems
    assert "sink: environment variable TAWASUL_METRICS_HOTS is read by nothing" in problems
    assert "worker: unknown command wrker" in problems


def _scrape_targets() -> dict[str, tuple[str, int]]:
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8"))
    targets = {}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, _, port = target.rpartition(":")
                targets[job["job_name"]] = (host, int(port))
    return targets


def _listens_on(command: list[str]) -> tuple[str, int] | None:
    """(host, port) of the HTTP endpoint a `tawasul` command line serves metrics on."""
    options = dict(zip(command, command[1:], strict=False))
    for host_option, port_option in (("--metrics-host", "--metrics-port"), ("--host", "--port")):
        if port_option in options:
            return options.get(host_option, "127.0.0.1"), int(options[port_option])
    return None


def test_every_scraped_tawasul_process_listens_on_all_interfaces_at_its_scraped_port() -> None:
    compose = _compose()
    scraped = {host: port for host, port in _scrape_targets().values() if host in compose["services"]}
    tawasul = set(tawasul_services(compose))
    assert {"worker", "sink", "gateway", "wallboard"} <= set(scraped)
    for service, port in scraped.items():
        if service in tawasul:
            assert _listens_on(compose["services"][service]["command"]) == ("0.0.0.0", port), service
    assert scraped.get("alertmanager") == 9093 or "alertmanager" not in scraped


def test_long_running_services_have_health_checks_and_migrations_run_first() -> None:
    compose = _compose()
    services = compose["services"]
    for name in tawasul_services(compose):
        if services[name].get("restart") != "no":
            test = " ".join(services[name]["healthcheck"]["test"])
            assert "/healthz" in test, name
    for name in ("sink", "wallboard"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    migrating = [name for name in tawasul_services(compose) if services[name]["command"][:2] == ["db", "upgrade"]]
    assert migrating == ["migrate"]


def test_kafka_keeps_its_data_in_the_volume_and_publishes_its_external_listener() -> None:
    kafka = _compose()["services"]["kafka"]
    environment = kafka["environment"]
    mounts = {volume.split(":")[1] for volume in kafka["volumes"]}
    assert environment["KAFKA_LOG_DIRS"] in mounts
    external = re.search(r"EXTERNAL://([^,]+):(\d+)", environment["KAFKA_ADVERTISED_LISTENERS"])
    assert external is not None
    assert f"{external.group(2)}:{external.group(2)}" in kafka["ports"]
    assert f"EXTERNAL://:{external.group(2)}" in environment["KAFKA_LISTENERS"]


def _defaults(environment: dict[str, Any]) -> dict[str, str]:
    """The environment a service gets when none of its `${VAR:-default}` is set."""
    return {key: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value)) for key, value in environment.items()}


def test_placeholder_secrets_are_refused_unless_the_demo_allows_them() -> None:
    from tawasul.infra.demo_secrets import PlaceholderSecret, refuse_placeholder_secrets

    environment = _defaults(_compose()["services"]["sink"]["environment"])
    with pytest.raises(PlaceholderSecret) as refused:
        refuse_placeholder_secrets(environment)
    for variable in (
        "TAWASUL_PSEUDONYM_KEY",
        "TAWASUL_GATEWAY_CRM_SECRET",
        "TAWASUL_GATEWAY_PBX_SECRET",
        "TAWASUL_DATABASE_URL (its password)",
    ):
        assert variable in str(refused.value)
    refuse_placeholder_secrets({**environment, "TAWASUL_ALLOW_DEMO_SECRETS": "1"})
    refuse_placeholder_secrets({"TAWASUL_PSEUDONYM_KEY": "a-real-key", "TAWASUL_DATABASE_URL": "sqlite:///x.db"})


def test_the_command_refuses_a_placeholder_naming_the_variable() -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(
        cli, ["topics", "--help"], env={"TAWASUL_PSEUDONYM_KEY": "change-me-now", "TAWASUL_ALLOW_DEMO_SECRETS": "0"}
    )
    assert result.exit_code == 2 and "TAWASUL_PSEUDONYM_KEY" in result.output and "change-me-now" not in result.output


def test_gateway_secrets_file_loads_with_the_compose_environment() -> None:
    from producers.gateway.config import load_secrets

    compose = _compose()
    defaults = _defaults(compose["services"]["gateway"]["environment"])
    registry = load_secrets(REPO / compose["secrets"]["gateway_secrets"]["file"], environ=defaults)
    assert {adapter.name for adapter in registry.adapters} == {"crm", "pbx-main"}

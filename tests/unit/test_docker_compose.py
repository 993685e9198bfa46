"""docker-compose.yml is valid Compose and every service runs a real `tawasul` command."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import yaml

from tawasul.cli import COMMANDS, cli

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


@pytest.mark.parametrize("service", ["topics", "migrate", "worker", "sink", "gateway", "wallboard", "simulator"])
def test_each_tawasul_service_runs_an_existing_command_with_valid_options(service: str) -> None:
    compose = _compose()
    in_container = {  # files the container sees under /run/secrets are these files of the repo
        f"/run/secrets/{entry['target']}": str(REPO / compose["secrets"][entry["source"]]["file"])
        for entry in compose["services"][service].get("secrets", [])
    }
    command_line = [in_container.get(arg, arg) for arg in compose["services"][service]["command"]]
    assert command_line[0] in COMMANDS, f"{service}: no `tawasul {command_line[0]}` command"
    command: click.Command | None = cli
    context = click.Context(cli, info_name="tawasul")
    args = list(command_line)
    while isinstance(command, click.Group):
        name = args.pop(0)
        command = command.get_command(context, name)
        assert command is not None, f"{service}: unknown command {name}"
        context = click.Context(command, info_name=name, parent=context)
    command.make_context(command_line[-1], args, parent=context)


def test_gateway_secrets_file_loads_with_the_compose_environment() -> None:
    import re

    from producers.gateway.config import load_secrets

    compose = _compose()
    environment = compose["x-tawasul"]["environment"]
    defaults = {key: re.sub(r"^\$\{[A-Z_]+:-(.*)\}$", r"\1", str(value)) for key, value in environment.items()}
    registry = load_secrets(REPO / compose["secrets"]["gateway_secrets"]["file"], environ=defaults)
    assert {adapter.name for adapter in registry.adapters} == {"crm", "pbx-main"}

"""The layers of docs/architecture.md, enforced: import-linter's contracts in pyproject.toml hold
on the tree, and each rule of the table breaks the build when an import crosses it.

Plus what import-linter cannot say: a command module (`*_cmd`, `*.cli`) is a leaf that only
the `tawasul` group reaches (by name, lazily), never a library of another module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]

COMMAND_IMPORTS_ALLOWED = {
    ("tawasul.__main__", "tawasul.app.cli"),  # `python -m tawasul` is the `tawasul` command
    # Known, open: `tawasul ticket` borrows two option checks of `tawasul report`.
    ("sinks.ticket_cmd", "sinks.report_cmd"),
}


def lint_imports(cwd: Path, config: Path | None = None, pythonpath: Path | None = None) -> tuple[int, str]:
    command = [str(LINT_IMPORTS), "--no-cache"] + ([str(config)] if config else [])
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


def test_the_tree_keeps_every_import_contract() -> None:
    status, report = lint_imports(ROOT)
    assert status == 0, report
    assert f"Contracts: {len(CONFIG['contracts'])} kept, 0 broken." in report, report


def _toml_value(value: Any) -> str:
    """JSON strings, lists of strings and booleans are TOML values too."""
    return json.dumps(value)


def _config_without_exceptions() -> str:
    """The project's contracts with their known exceptions (ignore_imports) left out."""
    lines = ["[tool.importlinter]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in CONFIG.items() if key != "contracts"]
    for contract in CONFIG["contracts"]:
        lines += ["", "[[tool.importlinter.contracts]]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in contract.items() if key != "ignore_imports"]
    return "\n".join(lines) + "\n"


MODULES = [
    "schemas.base",
    "tawasul.domain.sla",
    "tawasul.infra.topics",
    "tawasul.app.cli",
    "producers.intake",
    "stream_processors.batch_engine",
    "stream_processors.batch_runner",
    "sinks.consumer",
]
ALLOWED = [  # every downward import of the table
    ("tawasul.domain.sla", "schemas.base"),
    ("tawasul.infra.topics", "tawasul.domain.sla"),
    ("producers.intake", "tawasul.infra.topics"),
    ("stream_processors.batch_engine", "tawasul.domain.sla"),
    ("sinks.consumer", "schemas.base"),
    ("tawasul.app.cli", "producers.intake"),
    ("tawasul.app.cli", "sinks.consumer"),
]
VIOLATIONS = [  # one import across each rule of the table
    ("schemas.up", "tawasul.domain.sla"),
    ("schemas.shell", "tawasul"),
    ("tawasul.domain.up", "tawasul.infra.topics"),
    ("tawasul.domain.impure", "kafka"),
    ("tawasul.infra.up", "producers.intake"),
    ("producers.up", "tawasul.app.cli"),
    ("producers.sideways", "sinks.consumer"),
    ("sinks.sideways", "producers.intake"),
    ("stream_processors.sideways", "sinks.consumer"),
    ("stream_processors.batch_engine_helper", "faust"),
]


def _tree(base: Path, imports: list[tuple[str, str]]) -> None:
    sources: dict[str, list[str]] = {module: [] for module in MODULES}
    for importer, imported in imports:
        sources.setdefault(importer, []).append(f"import {imported}")
    for module, lines in sources.items():
        parts = module.split(".")
        for depth in range(1, len(parts)):
            package = base.joinpath(*parts[:depth])
            package.mkdir(exist_ok=True)
            (package / "__init__.py").touch()
        (base.joinpath(*parts[:-1]) / f"{parts[-1]}.py").write_text("\n".join(lines) + "\n")


def test_the_contracts_allow_every_downward_import(tmp_path: Path) -> None:
    _tree(tmp_path, ALLOWED)
    config = tmp_path / "contracts.toml"
    config.write_text(_config_without_exceptions())
    status, report = lint_imports(tmp_path, config, pythonpath=tmp_path)
    assert status == 0, report


def test_each_rule_of_the_table_fails_the_build_when_broken(tmp_path: Path) -> None:
    violations = [*VIOLATIONS, ("stream_processors.batch_engine", "stream_processors.batch_engine_helper")]
    _tree(tmp_path, ALLOWED + violations)
    config = tmp_path / "contracts.toml"
    config.write_text(_config_without_exceptions())
    status, report = lint_imports(tmp_path, config, pythonpath=tmp_path)
    assert status != 0, report
    for importer, imported in VIOLATIONS:
        assert f"{importer} -> {imported} (l." in report, f"{importer} -> {imported} not reported:\n{report}"
    for importer, imported in ALLOWED:
        assert f"{importer} -> {imported} (l." not in report, report
    broken = {contract["name"] for contract in CONFIG["contracts"]}
    assert all(f"{name} BROKEN" in " ".join(report.split()) for name in broken), report


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("tawasul", "producers", "stream_processors", "sinks", "schemas", cache_dir=None)


def _is_command(module: str) -> bool:
    return module.endswith("_cmd") or module.endswith(".cli")


def test_command_modules_are_leaves_no_module_uses_one_as_a_library(graph: grimp.ImportGraph) -> None:
    commands = sorted(module for module in graph.modules if _is_command(module))
    assert "producers.publish_cmd" in commands and "tawasul.app.cli" in commands
    used = {
        (importer, command)
        for command in commands
        for importer in graph.find_modules_that_directly_import(command)
        if (importer, command) not in COMMAND_IMPORTS_ALLOWED
    }
    assert not used, f"command modules used as libraries (move the shared part to a library module): {used}"

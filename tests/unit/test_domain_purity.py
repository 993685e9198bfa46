"""`tawasul.domain` stays pure: no module of it pulls in Kafka, faust or SQLAlchemy."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import tawasul.domain

FORBIDDEN = ("kafka", "faust", "aiokafka", "mode", "sqlalchemy")
MODULES = sorted(m.name for m in pkgutil.walk_packages(tawasul.domain.__path__, prefix="tawasul.domain."))
PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_the_core_modules_exist() -> None:
    assert {"tawasul.domain.calendars", "tawasul.domain.policies", "tawasul.domain.sla"} <= set(MODULES)


@pytest.mark.parametrize("module", ["tawasul.domain", *MODULES])
def test_module_imports_no_infrastructure(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "tawasul" in loaded
    assert loaded.isdisjoint(FORBIDDEN), sorted(loaded & set(FORBIDDEN))

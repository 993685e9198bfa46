"""Session fixtures that start real services once: the Kafka broker and the databases."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tawasul.infra.kafka_local.broker import broker_answers

REPO = Path(__file__).resolve().parent.parent
KAFKA_START_FAILURES = pytest.StashKey[list[str]]()
"""What `tawasul kafka start` printed each time it failed for the session broker."""


KAFKA_FIXTURES = frozenset({"kafka_bootstrap"})
"""A test that needs one of these (directly or through other fixtures) uses the Kafka broker."""


def pytest_configure(config: pytest.Config) -> None:
    config.stash[KAFKA_START_FAILURES] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `kafka` every test that uses the broker and `postgres` every test that uses
    PostgreSQL, from the fixtures it needs, so that `-m "not kafka"` selects the broker-free tier."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & KAFKA_FIXTURES and item.get_closest_marker("kafka") is None:
            item.add_marker(pytest.mark.kafka)
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("database_url") == "postgresql"
        if ("postgres_url" in fixtures or on_postgres) and item.get_closest_marker("postgres") is None:
            item.add_marker(pytest.mark.postgres)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Failed starts of the session broker, last in the output where CI logs are read from the end."""
    for attempt, output in enumerate(config.stash[KAFKA_START_FAILURES], start=1):
        terminalreporter.write_sep("-", f"tawasul kafka start failed (attempt {attempt})")
        terminalreporter.write_line(output.strip())


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    """`TAWASUL_KAFKA` when set; otherwise `tawasul kafka start` now and `stop` at the end."""
    configured = os.environ.get("TAWASUL_KAFKA")
    if configured:
        if not broker_answers(configured, timeout_s=10):
            pytest.fail(f"TAWASUL_KAFKA={configured} does not answer")
        yield configured
        return
    tawasul = [sys.executable, "-m", "tawasul", "kafka"]
    already = subprocess.run([*tawasul, "status"], capture_output=True, text=True).returncode == 0
    result = subprocess.run([*tawasul, "start", "--timeout", "180"], capture_output=True, text=True)
    if result.returncode != 0:
        # One more try on a slow or busy machine; the first failure is shown at the end of the run.
        request.config.stash[KAFKA_START_FAILURES].append(result.stdout + result.stderr)
        subprocess.run([*tawasul, "stop"], capture_output=True, text=True)
        result = subprocess.run([*tawasul, "start", "--timeout", "300"], capture_output=True, text=True)
    if result.returncode != 0:
        request.config.stash[KAFKA_START_FAILURES].append(result.stdout + result.stderr)
        pytest.fail(f"could not start Kafka:\n{result.stdout}\n{result.stderr}")
    yield "localhost:9092"
    if not already:
        subprocess.run([*tawasul, "stop"], capture_output=True, text=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """`TAWASUL_TEST_POSTGRES_URL` when set; otherwise a throw-away local PostgreSQL server."""
    configured = os.environ.get("TAWASUL_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    import shutil
    import tempfile

    from tests.support.postgres import TempPostgres

    # Not under pytest's own tmp folder: that one is private to root, and the server runs as `postgres`.
    base = Path(tempfile.mkdtemp(prefix="tawasul-pg-"))
    server = TempPostgres(base)
    server.init()
    server.start()
    server.create_database()
    yield server.url
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test against SQLite (a fresh file) and PostgreSQL (a fresh schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tawasul.db'}"
        return
    import uuid

    from sqlalchemy import create_engine, text

    base = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    engine = create_engine(base)
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()

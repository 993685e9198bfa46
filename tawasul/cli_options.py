"""Shared click options: every command takes --kafka, --db and --policies (flag > env > default)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from tawasul.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def settings_options(func: F) -> F:
    """Add --kafka/--db/--policies to a command and pass it a resolved `settings: Settings`."""

    @click.option("--kafka", "kafka", default=None, help="Kafka bootstrap servers [env TAWASUL_KAFKA; localhost:9092]")
    @click.option("--db", "database_url", default=None,
                  help="SQLAlchemy database URL [env TAWASUL_DATABASE_URL; sqlite:///tawasul.db]")
    @click.option("--policies", "policies", default=None, type=click.Path(dir_okay=False),
                  help="SLA policy file [env TAWASUL_POLICIES; the shipped default]")
    @functools.wraps(func)
    def wrapper(*args: Any, kafka: str | None, database_url: str | None, policies: str | None, **kwargs: Any) -> Any:
        root = click.get_current_context().find_root().params
        settings = Settings.resolve(
            kafka=kafka or root.get("kafka"),
            database_url=database_url or root.get("database_url"),
            policies=policies or root.get("policies"),
        )
        return func(*args, settings=settings, **kwargs)

    return wrapper  # type: ignore[return-value]

"""Shared click options: every command takes --kafka, --db and --policies (flag > env > default)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from tawasul.domain.errors import PolicyError
from tawasul.domain.policies import PolicyBook, load_policies
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


def policy_book(settings: Settings) -> PolicyBook:
    """The SLA policies of `settings`; a `click.ClickException` naming the file and what is wrong
    with it when they cannot be used (checked before a command starts anything)."""
    try:
        return load_policies(settings.policies_path)
    except PolicyError as exc:
        where = str(settings.policies_path)
        raise click.ClickException(str(exc) if where in str(exc) else f"SLA policy file {where}: {exc}") from exc

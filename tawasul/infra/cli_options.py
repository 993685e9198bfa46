"""Shared click options: every command takes --kafka, --db and --policies (flag > env > default)."""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from tawasul.domain.errors import PolicyError
from tawasul.domain.policies import PolicyBook, load_policies
from tawasul.infra.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def settings_options(func: F) -> F:
    """Add --kafka/--db/--policies to a command and pass it a resolved `settings: Settings`."""

    @click.option("--kafka", "kafka", default=None, help="Kafka bootstrap servers [env TAWASUL_KAFKA; localhost:9092]")
    @click.option(
        "--db",
        "database_url",
        default=None,
        help="SQLAlchemy database URL [env TAWASUL_DATABASE_URL; sqlite:///tawasul.db]",
    )
    @click.option(
        "--policies",
        "policies",
        default=None,
        type=click.Path(dir_okay=False),
        help="SLA policy file [env TAWASUL_POLICIES; the shipped default]",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, kafka: str | None, database_url: str | None, policies: str | None, **kwargs: Any) -> Any:
        root = click.get_current_context().find_root().params
        settings = Settings.resolve(
            kafka=kafka or root.get("kafka"),
            database_url=database_url or root.get("database_url"),
            policies=policies or root.get("policies"),
        )
        return func(*args, settings=settings, **kwargs)

    return wrapper  # type: ignore[return-value]  # wraps() keeps func's metadata, not its type


def policy_book(settings: Settings) -> PolicyBook:
    """The SLA policies of `settings`; a `click.ClickException` naming the file and what is wrong
    with it when they cannot be used (checked before a command starts anything)."""
    try:
        return load_policies(settings.policies_path)
    except PolicyError as exc:
        where = str(settings.policies_path)
        raise click.ClickException(str(exc) if where in str(exc) else f"SLA policy file {where}: {exc}") from exc


LISTEN_ERRORS = frozenset({errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL})
"""Errors of binding a listening socket: the address is taken, forbidden or not this host's."""


def listen_error(exc: OSError, host: str, port: int, option: str = "--port") -> click.ClickException | None:
    """The one-line error for a server that cannot listen on `host:port`, None when `exc` is
    another error."""
    if exc.errno not in LISTEN_ERRORS:
        return None
    return click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}; choose another {option}")


def run_web_app(app: Any, host: str, port: int, **options: Any) -> None:
    """`aiohttp.web.run_app`, with a listening address it cannot take reported in one line."""
    from aiohttp import web

    try:
        web.run_app(app, host=host, port=port, **options)
    except OSError as exc:
        error = listen_error(exc, host, port)
        if error is None:
            raise
        raise error from exc

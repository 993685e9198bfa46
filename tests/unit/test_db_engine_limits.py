"""The connection limits every database client gets: statement timeout, keepalives, busy timeout."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from sinks.db.engine import ConnectionLimits, make_engine, normalize_url, postgres_connect_args


def test_postgres_gets_keepalives_timeouts_and_the_statement_timeout() -> None:
    args = postgres_connect_args(normalize_url("postgresql://u:p@db/x"), ConnectionLimits())
    assert args == {
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 30_000,
        "options": "-c statement_timeout=120000",
    }


def test_the_urls_own_options_are_kept_and_the_statement_timeout_added() -> None:
    url = normalize_url("postgresql://u:p@db/x?options=-csearch_path%3Dmine")
    args = postgres_connect_args(url, ConnectionLimits(statement_timeout_s=2.5))
    assert args["options"] == "-csearch_path=mine -c statement_timeout=2500"


def test_a_statement_timeout_in_the_url_wins_and_zero_sets_none() -> None:
    url = normalize_url("postgresql://u:p@db/x?options=-c%20statement_timeout%3D7s")
    assert postgres_connect_args(url, ConnectionLimits())["options"] == "-c statement_timeout=7s"
    bare = postgres_connect_args(normalize_url("postgresql://db/x"), ConnectionLimits(statement_timeout_s=0))
    assert "options" not in bare


def test_the_limits_are_read_from_the_environment() -> None:
    limits = ConnectionLimits.from_env(
        {
            "TAWASUL_DB_STATEMENT_TIMEOUT_S": "3",
            "TAWASUL_DB_KEEPALIVES_IDLE_S": "4",
            "TAWASUL_DB_KEEPALIVES_INTERVAL_S": "2",
            "TAWASUL_DB_KEEPALIVES_COUNT": "6",
            "TAWASUL_DB_TCP_USER_TIMEOUT_S": "9",
            "TAWASUL_DB_CONNECT_TIMEOUT_S": "8",
            "TAWASUL_DB_BUSY_TIMEOUT_S": "1.5",
        }
    )
    assert limits == ConnectionLimits(
        statement_timeout_s=3,
        connect_timeout_s=8,
        keepalives_idle_s=4,
        keepalives_interval_s=2,
        keepalives_count=6,
        tcp_user_timeout_s=9,
        sqlite_busy_timeout_s=1.5,
    )
    assert ConnectionLimits.from_env({}) == ConnectionLimits()


@pytest.mark.parametrize("raw", ["soon", "-1"])
def test_a_bad_setting_is_named(raw: str) -> None:
    with pytest.raises(ValueError, match="TAWASUL_DB_KEEPALIVES_COUNT"):
        ConnectionLimits.from_env({"TAWASUL_DB_KEEPALIVES_COUNT": raw})


def test_sqlite_uses_the_configured_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}", ConnectionLimits(sqlite_busy_timeout_s=1.25))
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA busy_timeout")).scalar_one() == 1250
    finally:
        engine.dispose()

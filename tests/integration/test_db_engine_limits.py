"""On a real PostgreSQL server: a statement stuck behind a lock fails by Tawasul's statement
timeout instead of waiting for ever, and the client's socket has the keepalives."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from sinks.db.engine import ConnectionLimits, make_engine

pytestmark = pytest.mark.postgres


@pytest.fixture()
def postgres_schema_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    return database_url


def _keepalive_idle(connection: Any) -> int:
    """TCP_KEEPIDLE of the client's own socket (0 when keepalives are off)."""
    fd = connection.connection.dbapi_connection.pgconn.socket
    probe = socket.socket(fileno=socket.dup(fd))
    try:
        if not probe.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE):
            return 0
        return probe.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
    finally:
        probe.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_statement_waiting_for_a_lock_fails_by_the_statement_timeout(postgres_schema_url: str) -> None:
    holder = make_engine(postgres_schema_url, ConnectionLimits(statement_timeout_s=0))
    waiter = make_engine(postgres_schema_url, ConnectionLimits(statement_timeout_s=1.5, keepalives_idle_s=7))
    try:
        with holder.begin() as connection:
            connection.execute(text("CREATE TABLE locked (id integer primary key)"))
        with holder.connect() as holding, waiter.connect() as waiting:
            assert waiting.execute(text("SHOW statement_timeout")).scalar_one() == "1500ms"
            assert _keepalive_idle(waiting) == 7
            # The URL's own options (the schema) are kept next to the timeout.
            assert (
                waiting.execute(text("SELECT current_schema()")).scalar_one()
                == holding.execute(text("SELECT current_schema()")).scalar_one()
                != "public"
            )
            holding.commit()
            waiting.rollback()
            holding.execute(text("LOCK TABLE locked IN ACCESS EXCLUSIVE MODE"))
            started = time.monotonic()
            with pytest.raises(OperationalError, match="statement timeout"):
                waiting.execute(text("SELECT count(*) FROM locked"))
            waited = time.monotonic() - started
            holding.rollback()
        assert 1.4 <= waited < 30, waited
    finally:
        holder.dispose()
        waiter.dispose()

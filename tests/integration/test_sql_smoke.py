"""The same SQLAlchemy smoke test on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select
from sqlalchemy.dialects import postgresql, sqlite


def test_create_upsert_and_read_back(database_url: str) -> None:
    engine = create_engine(database_url)
    metadata = MetaData()
    things = Table("things", metadata, Column("id", String, primary_key=True), Column("count", Integer))
    metadata.create_all(engine)
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with engine.begin() as connection:
        for _ in range(3):
            statement = insert(things).values(id="a", count=1)
            connection.execute(
                statement.on_conflict_do_update(index_elements=["id"], set_={"count": things.c.count + 1})
            )
    with engine.connect() as connection:
        rows = connection.execute(select(things.c.id, things.c.count)).all()
    assert rows == [("a", 3)]
    assert engine.dialect.name in {"sqlite", "postgresql"}
    engine.dispose()

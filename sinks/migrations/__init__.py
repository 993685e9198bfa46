"""Alembic migrations of the Tawasul database (run through `sinks.db.migrate`)."""

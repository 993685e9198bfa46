"""Policy books: every SLA policy book a worker or replay ran with, and the hash of the book on
each SLA outcome, ticket and ticket target.

Revision ID: 0002_16s_policy_books
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_16s_policy_books"
down_revision: str | None = "0002_15g_gateway_nonces"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HASHED_TABLES = ("sla_outcomes", "tickets", "ticket_targets")


def upgrade() -> None:
    op.create_table(
        "policy_books",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("yaml", sa.Text(), nullable=False),
        sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_policy_books")),
    )
    for table in HASHED_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("policies_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in HASHED_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("policies_sha256")
    op.drop_table("policy_books")

"""The HTTP gateway's replay protection: signatures accepted recently, shared by every gateway instance.

Revision ID: 0002_15g_gateway_nonces
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_15g_gateway_nonces"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_nonces",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_gateway_nonces")),
    )
    op.create_index("ix_gateway_nonces_expires_at", "gateway_nonces", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_gateway_nonces_expires_at", table_name="gateway_nonces")
    op.drop_table("gateway_nonces")

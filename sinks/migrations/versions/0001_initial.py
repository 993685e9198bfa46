"""Initial schema: events, tickets, ticket_targets, calls, visits, surveys, sla_outcomes, kpi_snapshots.

Revision ID: 0001
Revises:
Create Date: 2025-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = True) -> sa.Column[object]:
    """Timestamps are `timestamptz` on PostgreSQL, UTC text on SQLite (see `models.UtcDateTime`)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _indexes(table: str, *indexes: tuple[str, list[str]]) -> None:
    for name, columns in indexes:
        op.create_index(name, table, columns, unique=False)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        _timestamp("time", nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        _timestamp("stored_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    _indexes("events", ("ix_events_time", ["time"]), ("ix_events_subject_time", ["subject", "time"]),
             ("ix_events_type_time", ["type", "time"]))

    op.create_table(
        "tickets",
        sa.Column("ticket_id", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("department", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("policy", sa.Text(), nullable=True),
        _timestamp("opened_at"),
        _timestamp("resolved_at"),
        _timestamp("closed_at"),
        _timestamp("updated_at"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_tickets")),
    )
    _indexes("tickets", ("ix_tickets_status_channel", ["status", "channel"]),
             ("ix_tickets_channel_opened_at", ["channel", "opened_at"]),
             ("ix_tickets_opened_at", ["opened_at"]), ("ix_tickets_updated_at", ["updated_at"]))

    op.create_table(
        "ticket_targets",
        sa.Column("ticket_id", sa.Text(), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        _timestamp("deadline"),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("warned", sa.Boolean(), nullable=False),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.ticket_id"],
                                name=op.f("fk_ticket_targets_ticket_id_tickets"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("ticket_id", "target", name=op.f("pk_ticket_targets")),
    )
    _indexes("ticket_targets", ("ix_ticket_targets_state_deadline", ["state", "deadline"]))

    op.create_table(
        "calls",
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("queue", sa.Text(), nullable=True),
        sa.Column("agent", sa.Text(), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        _timestamp("offered_at"),
        _timestamp("answered_at"),
        _timestamp("abandoned_at"),
        _timestamp("ended_at"),
        sa.Column("wrap_up_seconds", sa.Float(), nullable=True),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
        sa.Column("handle_seconds", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_calls")),
    )
    _indexes("calls", ("ix_calls_offered_at", ["offered_at"]), ("ix_calls_queue_offered_at", ["queue", "offered_at"]))

    op.create_table(
        "visits",
        sa.Column("visit_id", sa.Text(), nullable=False),
        sa.Column("centre", sa.Text(), nullable=True),
        sa.Column("service", sa.Text(), nullable=True),
        sa.Column("counter", sa.Text(), nullable=True),
        _timestamp("checked_in_at"),
        _timestamp("called_at"),
        _timestamp("completed_at"),
        _timestamp("no_show_at"),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("visit_id", name=op.f("pk_visits")),
    )
    _indexes("visits", ("ix_visits_checked_in_at", ["checked_in_at"]),
             ("ix_visits_centre_checked_in_at", ["centre", "checked_in_at"]))

    op.create_table(
        "surveys",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("scale", sa.Integer(), nullable=False),
        sa.Column("satisfied", sa.Boolean(), nullable=False),
        _timestamp("time", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys")),
    )
    _indexes("surveys", ("ix_surveys_time", ["time"]), ("ix_surveys_channel_time", ["channel", "time"]),
             ("ix_surveys_subject", ["subject"]))

    op.create_table(
        "sla_outcomes",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("ticket_id", sa.Text(), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        _timestamp("deadline", nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        _timestamp("time", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_outcomes")),
    )
    _indexes("sla_outcomes", ("ix_sla_outcomes_time", ["time"]), ("ix_sla_outcomes_type_time", ["type", "time"]),
             ("ix_sla_outcomes_channel_time", ["channel", "time"]),
             ("ix_sla_outcomes_ticket_id_target", ["ticket_id", "target"]))

    op.create_table(
        "kpi_snapshots",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("figure", sa.Text(), nullable=False),
        sa.Column("window", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=True),
        _timestamp("as_of", nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_kpi_snapshots")),
    )
    _indexes("kpi_snapshots", ("ix_kpi_snapshots_figure_window", ["figure", "window"]))


def downgrade() -> None:
    for table in ("kpi_snapshots", "sla_outcomes", "surveys", "visits", "calls", "ticket_targets", "tickets", "events"):
        op.drop_table(table)

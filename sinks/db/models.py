"""The SQL schema of Tawasul's history (SQLAlchemy 2.x declarative, typed).

`events` is append-only (one row per accepted event id); the other tables hold current
state derived from the pipeline's messages. Every timestamp is stored and returned as an
aware UTC `datetime` (`UtcDateTime`), on SQLite as well as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class NaiveTimestamp(ValueError):
    """A timestamp without a UTC offset was about to be stored."""


class UtcDateTime(TypeDecorator[datetime]):
    """`DateTime(timezone=True)` that accepts only aware values and returns aware UTC.

    PostgreSQL stores `timestamptz`. SQLite has no time zones: values are stored as UTC text
    (`YYYY-MM-DD HH:MM:SS.ffffff`, which sorts and compares in time order) and read back
    with `tzinfo=UTC`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveTimestamp("timestamps must carry a UTC offset")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if when.tzinfo is None:
            return when.replace(tzinfo=UTC)
        return when.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable names for migrations)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StoredEvent(Base):
    """Every accepted event, exactly once (`id` = the CloudEvent id)."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text)
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    source: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    """The event as `Event.to_json()` wrote it (UTF-8 decoded); `schemas.parse_event` reads it back."""
    stored_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_events_time", "time"),
        Index("ix_events_subject_time", "subject", "time"),
        Index("ix_events_type_time", "type", "time"),
    )


class Ticket(Base):
    """A ticket's current state, from `tawasul.tickets.state` (highest `version` wins)."""

    __tablename__ = "tickets"

    ticket_id: Mapped[str] = mapped_column(Text, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    policy: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer)
    policies_sha256: Mapped[str | None] = mapped_column(String(64))
    """The policy book that produced the state (`policy_books.sha256`)."""

    __table_args__ = (
        Index("ix_tickets_status_channel", "status", "channel"),
        Index("ix_tickets_channel_opened_at", "channel", "opened_at"),
        Index("ix_tickets_opened_at", "opened_at"),
        Index("ix_tickets_updated_at", "updated_at"),
    )


class TicketTarget(Base):
    """One SLA target of a ticket, as of the ticket state `version` it came with."""

    __tablename__ = "ticket_targets"

    ticket_id: Mapped[str] = mapped_column(Text, ForeignKey("tickets.ticket_id", ondelete="CASCADE"), primary_key=True)
    target: Mapped[str] = mapped_column(String(32), primary_key=True)
    deadline: Mapped[datetime | None] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(16))
    warned: Mapped[bool] = mapped_column(Boolean)
    breached: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[int] = mapped_column(Integer)
    policies_sha256: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_ticket_targets_state_deadline", "state", "deadline"),)


class Call(Base):
    """A contact-centre call, merged from its `call.*` events (earliest time of each kind wins)."""

    __tablename__ = "calls"

    call_id: Mapped[str] = mapped_column(Text, primary_key=True)
    queue: Mapped[str | None] = mapped_column(Text)
    agent: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    offered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    abandoned_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    wrap_up_seconds: Mapped[float | None] = mapped_column(Float)
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    """Offered to answered, or offered to abandoned."""
    handle_seconds: Mapped[float | None] = mapped_column(Float)
    """Answered to ended plus wrap-up."""

    __table_args__ = (
        Index("ix_calls_offered_at", "offered_at"),
        Index("ix_calls_queue_offered_at", "queue", "offered_at"),
    )


class Visit(Base):
    """A walk-in visit, merged from its `visit.*` events."""

    __tablename__ = "visits"

    visit_id: Mapped[str] = mapped_column(Text, primary_key=True)
    centre: Mapped[str | None] = mapped_column(Text)
    service: Mapped[str | None] = mapped_column(Text)
    counter: Mapped[str | None] = mapped_column(Text)
    checked_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    called_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    no_show_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    """Checked in to called."""

    __table_args__ = (
        Index("ix_visits_checked_in_at", "checked_in_at"),
        Index("ix_visits_centre_checked_in_at", "centre", "checked_in_at"),
    )


class Survey(Base):
    """One `survey.submitted` event (`id` = its CloudEvent id)."""

    __tablename__ = "surveys"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(32))
    score: Mapped[int] = mapped_column(Integer)
    scale: Mapped[int] = mapped_column(Integer)
    satisfied: Mapped[bool] = mapped_column(Boolean)
    time: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_surveys_time", "time"),
        Index("ix_surveys_channel_time", "channel", "time"),
        Index("ix_surveys_subject", "subject"),
    )


class SlaOutcome(Base):
    """One `sla.warning|sla.breached|sla.met` event (`id` = the outcome's deterministic id)."""

    __tablename__ = "sla_outcomes"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(String(32))
    policy: Mapped[str] = mapped_column(Text)
    deadline: Mapped[datetime] = mapped_column(UtcDateTime())
    channel: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(16))
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    policies_sha256: Mapped[str | None] = mapped_column(String(64))
    """The policy book that decided it (`policy_books.sha256`)."""

    __table_args__ = (
        Index("ix_sla_outcomes_time", "time"),
        Index("ix_sla_outcomes_type_time", "type", "time"),
        Index("ix_sla_outcomes_channel_time", "channel", "time"),
        Index("ix_sla_outcomes_ticket_id_target", "ticket_id", "target"),
    )


class KpiSnapshot(Base):
    """The latest `kpi.snapshot` of a figure, window and scope (newest `as_of` wins)."""

    __tablename__ = "kpi_snapshots"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    """`figure|window|scope`, scope as `k=v` pairs sorted by key and joined with `,`."""
    figure: Mapped[str] = mapped_column(Text)
    window: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    """The scope object as compact JSON with sorted keys."""
    value: Mapped[float | None] = mapped_column(Float)
    count: Mapped[int | None] = mapped_column(BigInteger)
    as_of: Mapped[datetime] = mapped_column(UtcDateTime())
    event_id: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    """The whole `kpi.snapshot` event as `Event.to_json()` wrote it."""

    __table_args__ = (Index("ix_kpi_snapshots_figure_window", "figure", "window"),)


class GatewayNonce(Base):
    """A signature the HTTP gateway accepted, kept until it can no longer be replayed (then purged).

    `key` is the SHA-256 (hex) of the adapter name and the signature; shared by every gateway
    instance on this database, so a signature used on one is refused on all, restarts included.
    """

    __tablename__ = "gateway_nonces"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)

    __table_args__ = (Index("ix_gateway_nonces_expires_at", "expires_at"),)


class StoredPolicyBook(Base):
    """Every SLA policy book a worker or a replay ran with (`tawasul.policies`), by its hash."""

    __tablename__ = "policy_books"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    yaml: Mapped[str] = mapped_column(Text)
    first_used_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime] = mapped_column(UtcDateTime())
    """The latest start with it, or the latest batch of outcomes or ticket states that carried its hash."""


metadata = Base.metadata

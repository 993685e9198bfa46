"""The report judges each ticket with the stored book it was processed with (SQLite and
PostgreSQL): a period processed with two books says so and counts each ticket under its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from schemas import new_event
from sinks.db import migrate
from sinks.db.engine import make_engine
from sinks.db.policy_books import decode_policy_book
from sinks.db.records import TicketState
from sinks.db.writer import DbWriter
from sinks.report_cmd import report
from tawasul.domain.policies import default_policy_path
from tawasul.infra.policy_books import PolicyFile, read_policy_file
from tests.e2e.test_policy_books_replay import STRICT

OPENED = datetime(2026, 1, 5, 5, 0, tzinfo=UTC)  # Monday 09:00 in Dubai


def ticket_events(ticket: str) -> list[object]:
    """A complaint resolved after 6 business hours: breached under a 4h target, met under 40h."""
    data = {"channel": "crm", "kind": "complaint", "category": "fees", "priority": "normal"}
    return [
        new_event("ticket.opened", ticket, OPENED, data, "/tests", id=f"{ticket}-o"),
        new_event("ticket.acknowledged", ticket, OPENED + timedelta(minutes=30), {}, "/tests", id=f"{ticket}-a"),
        new_event("ticket.resolved", ticket, OPENED + timedelta(hours=6), {}, "/tests", id=f"{ticket}-r"),
    ]


def state(ticket: str, sha: str) -> TicketState:
    return TicketState.from_dict(
        {
            "ticket_id": ticket,
            "channel": "crm",
            "kind": "complaint",
            "category": "fees",
            "priority": "normal",
            "status": "resolved",
            "version": 3,
            "opened_at": OPENED.isoformat(),
            "policies_sha256": sha,
            "targets": {},
        }
    )


def test_a_period_processed_with_two_books(database_url: str, tmp_path: Path) -> None:
    strict_path = tmp_path / "strict.yaml"
    strict_path.write_text(STRICT, encoding="utf-8")
    strict, default = read_policy_file(strict_path), read_policy_file(default_policy_path())
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    writer = DbWriter(engine)
    books: list[tuple[PolicyFile, datetime]] = [(strict, OPENED - timedelta(days=1)), (default, OPENED)]
    for policy, used in books:
        writer.add(decode_policy_book(policy.message("worker", used)[1]))
    for ticket, policy in (("T-strict", strict), ("T-lenient", default)):
        for event in ticket_events(ticket):
            writer.add(event)  # type: ignore[arg-type]
        writer.add(state(ticket, policy.sha256))
    for event in ticket_events("T-unrecorded"):  # no stored state: judged with the period's main book
        writer.add(event)  # type: ignore[arg-type]
    writer.flush()
    engine.dispose()

    done = CliRunner().invoke(
        report, ["--from", "2026-01-05", "--to", "2026-01-12", "--db", database_url], catch_exceptions=False
    )
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    policies = result["policies"]
    assert (policies["source"], policies["mixed"], policies["sha256"]) == ("stored", True, None)
    assert [(b["name"], b["sha256"], b["tickets"]) for b in policies["books"]] == [
        ("strict.yaml", strict.sha256, 1),
        ("default.yaml", default.sha256, 1),
    ]
    assert "unrecorded_tickets" not in policies  # T-unrecorded has no state row at all
    resolution = result["tickets"]["resolution"]
    # T-strict breached (6h > 4h), T-lenient met (6h <= 40h); T-unrecorded under the main book: the
    # books tie on tickets and on last use (this batch), so the one first used last (default) judges it: met
    assert (resolution["met"], resolution["breached"]) == (2, 1)

    markdown = (
        CliRunner()
        .invoke(
            report,
            ["--from", "2026-01-05", "--to", "2026-01-12", "--db", database_url, "--format", "md"],
            catch_exceptions=False,
        )
        .stdout
    )
    assert "this period was processed with 2 policy books: `strict.yaml`" in markdown

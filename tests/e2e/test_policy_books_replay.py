"""One source of truth for the policies, end to end on the real broker (SQLite and PostgreSQL):
`tawasul replay --policies X` stores X; `tawasul report` without `--policies` then judges the
tickets with X and gives exactly the stored outcomes; `--policies` is a marked what-if."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from sinks.db.engine import make_engine
from sinks.db.models import SlaOutcome, Ticket, TicketTarget
from sinks.db.policy_books import read_books
from tawasul.domain.policies import default_policy_path, load_policies, policies_sha256

REPO = Path(__file__).resolve().parents[2]
DUBAI = ZoneInfo("Asia/Dubai")
STRICT = """# a strict book: complaints within 1h / 4h, everything else 2h / 8h of government hours
calendars:
  gov:
    hours: {mon: ["07:30-15:30"], tue: ["07:30-15:30"], wed: ["07:30-15:30"], thu: ["07:30-15:30"],
            fri: ["07:30-12:00"]}
    holidays: {country: AE}
policies:
  - {name: strict-complaint, match: {kind: complaint}, calendar: gov, first_response: 1h, resolution: 4h}
  - {name: strict-other, calendar: gov, first_response: 2h, resolution: 8h}
"""
FROM, TO = "2026-01-05", "2026-01-31"


def _event(n: int, kind: str, subject: str, when: datetime, data: dict[str, object]) -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"pb-{n}",
            "source": "/tests/policy-books",
            "type": kind,
            "time": when.isoformat(),
            "subject": subject,
            "data": data,
        }
    )


def tickets_file(path: Path) -> Path:
    """24 tickets opened on weekdays of January 2026, acknowledged after 20 min to 5 h and
    resolved after 2 h to 3 days, all closed: every target decided before the period ends."""
    lines: list[tuple[datetime, str]] = []
    n = 0
    for i in range(24):
        opened = datetime(2026, 1, 5 + (i % 10), 8 + i % 6, 10, tzinfo=DUBAI)
        subject = f"PB-{i:03d}"
        kind = ("complaint", "request", "inquiry")[i % 3]
        steps = [
            (
                "ticket.opened",
                opened,
                {
                    "channel": ("crm", "web", "call")[i % 3],
                    "kind": kind,
                    "category": f"cat.{i % 4}",
                    "priority": "normal",
                },
            ),
            ("ticket.acknowledged", opened + timedelta(minutes=20 + 13 * i), {}),
            ("ticket.resolved", opened + timedelta(hours=2 + 3 * i), {}),
            ("ticket.closed", opened + timedelta(hours=3 + 3 * i), {}),
        ]
        for kind_, when, data in steps:
            n += 1
            lines.append((when, _event(n, kind_, subject, when, data)))
    path.write_text("\n".join(line for _, line in sorted(lines)) + "\n", encoding="utf-8")  # in time order
    return path


def _tawasul(*args: str, db: str, kafka: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TAWASUL_KAFKA": kafka, "TAWASUL_DATABASE_URL": db, "TAWASUL_LOG_LEVEL": "warning"}
    env.pop("TAWASUL_POLICIES", None)
    return subprocess.run(
        [sys.executable, "-m", "tawasul", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=600
    )


def _report(db: str, kafka: str, *extra: str) -> dict[str, object]:
    done = _tawasul("report", "--from", FROM, "--to", TO, *extra, db=db, kafka=kafka)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "md" not in extra else {"md": done.stdout}


@pytest.mark.kafka
def test_the_report_uses_the_book_the_replay_ran_with(database_url: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text(STRICT, encoding="utf-8")
    replay = _tawasul(
        "replay",
        str(tickets_file(tmp_path / "tickets.jsonl")),
        "--no-progress",
        "--policies",
        str(strict),
        db=database_url,
        kafka=kafka_bootstrap,
    )
    assert replay.returncode == 0, replay.stderr[-3000:]

    engine = make_engine(database_url)
    try:
        [book] = read_books(engine).values()
        assert (book.name, book.sha256, book.yaml) == ("strict.yaml", policies_sha256(STRICT), STRICT)
        assert book.first_used_at <= book.last_used_at
        with engine.connect() as connection:
            targets = connection.execute(
                select(TicketTarget.target, TicketTarget.state, TicketTarget.policies_sha256)
            ).all()
            outcomes = connection.execute(
                select(
                    SlaOutcome.type,
                    SlaOutcome.target,
                    SlaOutcome.policies_sha256,
                    SlaOutcome.ticket_id,
                    SlaOutcome.time,
                )
            ).all()
            tickets = connection.execute(select(Ticket.policy, Ticket.policies_sha256)).all()
    finally:
        engine.dispose()
    assert len(tickets) == 24 and {sha for _, sha in tickets} == {book.sha256}
    assert {p for p, _ in tickets} == {"strict-complaint", "strict-other"}
    assert {sha for *_, sha in targets} == {book.sha256} and {o[2] for o in outcomes} == {book.sha256}
    stored = Counter((target, state) for target, state, _ in targets)
    assert set(stored) <= {(t, s) for t in ("first_response", "resolution") for s in ("met", "breached")}
    latest = {
        (ticket, target): kind
        for kind, target, _, ticket, _ in sorted(outcomes, key=lambda o: o[4])
        if kind != "sla.warning"
    }  # consumers keep the latest outcome per ticket and target
    stored_outcomes = Counter((kind.removeprefix("sla."), target) for (_, target), kind in latest.items())

    report = _report(database_url, kafka_bootstrap, "--format", "json")
    assert report["policies"] == {
        "source": "stored",
        "sha256": book.sha256,
        "name": "strict.yaml",
        "books": [{**book.to_json(), "tickets": 24}],
        "mixed": False,
    }
    tickets_json = report["tickets"]
    assert tickets_json["opened"] == 24
    for target in ("first_response", "resolution"):
        figures = tickets_json[target]
        assert (figures["met"], figures["breached"]) == (stored[(target, "met")], stored[(target, "breached")])
        assert (figures["met"], figures["breached"]) == (
            stored_outcomes[("met", target)],
            stored_outcomes[("breached", target)],
        )
    assert tickets_json["resolution"]["breached"] > 0 and tickets_json["resolution"]["met"] > 0

    # an explicit --policies is a what-if: the default book judges more leniently, and says so
    default = load_policies(default_policy_path())
    what_if = _report(database_url, kafka_bootstrap, "--format", "json", "--policies", str(default_policy_path()))
    assert what_if["policies"] == {"source": "what-if", "sha256": default.sha256, "name": "default.yaml"}
    assert what_if["tickets"]["resolution"]["breached"] < tickets_json["resolution"]["breached"]
    markdown = _report(database_url, kafka_bootstrap, "--format", "md")["md"]
    assert f"the book the data was processed with, `strict.yaml` (SHA-256 `{book.sha256[:12]}`)" in markdown

"""`tawasul ticket ID` on a real database (SQLite and PostgreSQL): the hand-computed National Day
scenario of `tests/unit/test_ticket_story.py`, told with the stored policy book, its outcomes
beside the ones the pipeline stored."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from sinks.db import migrate
from sinks.db.decoding import decode_pipeline_event, decode_ticket_state
from sinks.db.engine import make_engine
from sinks.db.policy_books import decode_policy_book
from sinks.db.writer import DbWriter
from sinks.ticket_cmd import ticket
from stream_processors.outcome_event import encode_outcome
from stream_processors.sla_step import Stored
from stream_processors.ticket_state import encode_state, ticket_state
from tawasul.domain import sla
from tawasul.domain.calendars import to_us
from tawasul.domain.policies import default_policy_path, load_policies
from tawasul.domain.ticket_story import build_story
from tawasul.infra.policy_books import read_policy_file
from tests.unit.test_ticket_story import at, scenario

SHORTER = """
calendars:
  gov:
    hours: {mon: ["07:30-15:30"], tue: ["07:30-15:30"], wed: ["07:30-15:30"], thu: ["07:30-15:30"],
            fri: ["07:30-12:00"]}
    holidays: {country: AE}
policies:
  - {name: quick-complaint, match: {kind: complaint, channel: [crm, web]}, calendar: gov, first_response: 2h,
     resolution: 8h}
"""


def store_pipeline_run(url: str) -> None:
    """The scenario's events, the default book and the outcomes the engine emitted with it, as the sink stores them."""
    migrate.upgrade(url)
    engine = make_engine(url)
    policy = read_policy_file(default_policy_path())
    writer = DbWriter(engine)
    for event in scenario():
        writer.add(event)
    writer.add(decode_policy_book(policy.message("replay", at(12, 31))[1]))
    for outcome in build_story("T-77", scenario(), policy.book, at(12, 31)).outcomes:
        if outcome.type != "sla.warning" or outcome.target != "first_response":  # one the pipeline missed
            writer.add(decode_pipeline_event(encode_outcome(outcome, policy.sha256)))
    state = None
    for event in scenario():
        state, _ = sla.apply(state, event, policy.book)
    assert state is not None
    view = ticket_state(Stored(state), to_us(at(12, 31)), policy.book)  # the engine's ticket-state message
    assert view is not None
    writer.add(decode_ticket_state(encode_state(view)))
    writer.flush()
    engine.dispose()


def run(*args: str) -> Result:
    return CliRunner().invoke(ticket, list(args), catch_exceptions=False)


def test_story_json_and_text_from_the_database(database_url: str, tmp_path: Path) -> None:
    store_pipeline_run(database_url)
    done = run("T-77", "--db", database_url, "--format", "json", "--at", "2025-12-31")
    assert done.exit_code == 0, done.output
    story = json.loads(done.stdout)
    book = load_policies(default_policy_path())
    assert story["policies"] == {"source": "stored", "sha256": book.sha256, "name": "default.yaml"}
    first, resolution = story["targets"]
    assert (first["deadline"], first["warning_at"]) == ("2025-12-03T09:30:00+04:00", "2025-12-03T07:54:00+04:00")
    assert (resolution["deadline"], resolution["warning_at"]) == (
        "2025-12-10T11:30:00+04:00",
        "2025-12-09T11:30:00+04:00",
    )
    assert resolution["deadline_basis"]["remaining"] == "31h30m"
    assert [d["name"] for d in first["segments"][0]["counted"]["skipped_days"] if d["reason"] == "holiday"] == [
        "National Day",
        "National Day",
    ]
    verdicts = {row["id"]: row["verdict"] for row in story["outcome_comparison"]}
    assert verdicts == {
        "T-77:first_response:sla.warning:0": "computed only",
        "T-77:first_response:sla.met:0": "agree",
        "T-77:resolution:sla.warning:0": "agree",
        "T-77:resolution:sla.breached:0": "agree",
    }
    assert story["stored"]["ticket"]["policies_sha256"] == book.sha256
    assert [(t["target"], t["state"], t["deadline"]) for t in story["stored"]["targets"]] == [
        ("first_response", "met", "2025-12-03T09:30:00+04:00"),
        ("resolution", "breached", "2025-12-10T11:30:00+04:00"),
    ]

    text = run("T-77", "--db", database_url, "--at", "2025-12-31")
    assert text.exit_code == 0, text.output
    assert "deadline Wed 10 Dec 2025 11:30 = 31h30m of business time from Thu 04 Dec 2025 08:30" in text.stdout
    assert "skipped Mon 01 Dec 2025 (holiday: National Day)" in text.stdout
    assert "paused: Wed 03 Dec 2025 10:00 - Thu 04 Dec 2025 08:30, 6h30m of working time not counted" in text.stdout
    assert "[ignored: after ticket.closed]" in text.stdout
    assert "stored by the pipeline: breached, deadline Wed 10 Dec 2025 11:30" in text.stdout

    # --policies is a what-if: another book, other deadlines, and outcomes that differ from the stored ones
    shorter = tmp_path / "shorter.yaml"
    shorter.write_text(SHORTER, encoding="utf-8")
    what_if = json.loads(
        run("T-77", "--db", database_url, "--format", "json", "--at", "2025-12-31", "--policies", str(shorter)).stdout
    )
    assert what_if["policies"]["source"] == "what-if" and what_if["policies"]["name"] == "shorter.yaml"
    assert what_if["targets"][0]["policy"]["match"] == {"channel": ["crm", "web"], "kind": ["complaint"]}
    # 2h from Thu 14:00: 1h30m on Thursday, 30m on Friday morning
    assert what_if["targets"][0]["deadline"] == "2025-11-28T08:00:00+04:00"
    assert {row["verdict"] for row in what_if["outcome_comparison"]} >= {"differ"}


def test_unknown_ticket_and_missing_database(database_url: str, tmp_path: Path) -> None:
    store_pipeline_run(database_url)
    missing = run("T-404", "--db", database_url)
    assert missing.exit_code == 1 and "no stored event of ticket 'T-404'" in missing.output
    nowhere = run("T-77", "--db", f"sqlite:///{tmp_path / 'none.db'}")
    assert nowhere.exit_code == 1 and "no database at" in nowhere.output
    assert not (tmp_path / "none.db").exists()
    late = run("T-77", "--db", database_url, "--at", "2025-12-03T12:00", "--format", "json")
    targets = json.loads(late.stdout)["targets"]
    assert [t["status"] for t in targets] == ["met", "paused"] and targets[1]["deadline"] is None
    assert timedelta(seconds=targets[1]["elapsed_seconds"]) == timedelta(hours=8, minutes=30)

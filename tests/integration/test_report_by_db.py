"""`tawasul report --by agent|team` on a real database (SQLite and PostgreSQL) gives
`build_report_by` of the stored events, as JSON and Markdown."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from sinks.db import migrate
from sinks.db.engine import make_engine
from sinks.db.writer import DbWriter
from sinks.report_cmd import report
from tawasul.domain.report_by import build_report_by
from tests.unit.test_report_by import BOOK, END, START, scenario

BOOK_TEXT = """
calendars: {always: {always_open: true}}
policies: [{name: all, calendar: always, first_response: 1h, resolution: 4h}]
"""


def test_report_by_agent_and_team(database_url: str, tmp_path: Path) -> None:
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    writer = DbWriter(engine)
    for event in scenario():
        writer.add(event)
    writer.flush()
    engine.dispose()
    policies = tmp_path / "all.yaml"
    policies.write_text(BOOK_TEXT, encoding="utf-8")
    args = ["--from", "2026-01-05", "--to", "2026-01-06", "--db", database_url, "--policies", str(policies)]
    for by in ("agent", "team"):
        done = CliRunner().invoke(report, [*args, "--by", by], catch_exceptions=False)
        assert done.exit_code == 0, done.output
        printed = json.loads(done.stdout)
        assert printed.pop("policies")["source"] == "what-if"
        assert printed == build_report_by(scenario(), START, END, BOOK, by=by).to_json()  # type: ignore[arg-type]
        assert len(printed["groups"]) >= 4
    md = CliRunner().invoke(report, [*args, "--by", "agent", "--format", "md"], catch_exceptions=False).stdout
    assert "# Customer service report per agent" in md
    assert "| `a-1` | 2 | 220.0 s | 0 |" in md and "| (unassigned) |" in md
    ar = (
        CliRunner()
        .invoke(report, [*args, "--by", "team", "--format", "md", "--lang", "ar"], catch_exceptions=False)
        .stdout
    )
    assert ar.startswith('<div dir="rtl" lang="ar">') and "| `general` | 2 | 320.0 ثانية |" in ar

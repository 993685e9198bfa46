"""`tawasul report` on a real database (SQLite and PostgreSQL) gives `build_report` of the same events."""

from __future__ import annotations

import json
import random
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from producers.simulator import Params, iter_events, parse_when
from schemas import Event, parse_event
from sinks.db import migrate
from sinks.db.engine import make_engine
from sinks.db.writer import DbWriter
from sinks.report_cmd import report
from sinks.report_query import load_report_events
from tawasul.domain.period import parse_instant
from tawasul.domain.policies import default_policy_path, load_policies, load_policies_text
from tawasul.domain.report import FIRST_EVENT_TYPES, build_report
from tests.unit.test_report import BOOK_TEXT, END, EXPECTED, START, scenario


def simulated() -> list[Event]:
    params = Params(parse_when("2025-03-03"), parse_when("2025-03-10"), seed=5, scale=0.04, tail=True, tag="rdb")
    return [parse_event(raw) for raw in iter_events(params)]


def store(url: str, events: list[Event]) -> None:
    """Migrate, then store the events with the sink's writer in a few batches, duplicates included."""
    migrate.upgrade(url)
    engine = make_engine(url)
    writer = DbWriter(engine)
    rnd = random.Random(1)
    for i, event in enumerate(events + rnd.sample(events, len(events) // 10)):
        writer.add(event)
        if i % 500 == 499:
            writer.flush()
    writer.flush()
    engine.dispose()


def run(*args: str) -> Result:
    return CliRunner().invoke(report, list(args), catch_exceptions=False)


def test_the_command_gives_build_report_of_the_stored_events(database_url: str, tmp_path: Path) -> None:
    events = simulated()
    hand = scenario()
    store(database_url, events + hand)
    book = load_policies(default_policy_path())
    start, end = "2025-03-04", "2025-03-08T12:00"
    done = run("--from", start, "--to", end, "--db", database_url, "--format", "json")
    assert done.exit_code == 0, done.output
    printed = json.loads(done.stdout)
    expected = build_report(events + hand, parse_instant(start), parse_instant(end), book).to_json()
    # events stored without a pipeline run record no policy book: the settings' file is used, and said so
    assert printed.pop("policies") == {"source": "file", "sha256": book.sha256, "name": "default.yaml"}
    assert printed == expected
    assert printed["calls"]["offered"] > 0 and printed["tickets"]["surveys"] > 0
    assert printed["walk_in"]["visits"] > 0 and printed["tickets"]["by_channel"]
    assert printed["period"] == {"from": "2025-03-04T00:00:00+04:00", "to": "2025-03-08T12:00:00+04:00"}

    policies = tmp_path / "policies.yaml"
    policies.write_text(BOOK_TEXT, encoding="utf-8")
    day = run("--from", "2025-03-02", "--to", "2025-03-03", "--db", database_url, "--policies", str(policies))
    assert day.exit_code == 0, day.output
    what_if = json.loads(day.stdout)
    assert what_if.pop("policies") == {
        "source": "what-if",
        "sha256": load_policies_text(BOOK_TEXT).sha256,
        "name": "policies.yaml",
    }
    assert what_if == EXPECTED

    wide = run(
        "--from",
        "2025-03-02",
        "--to",
        "2025-03-03",
        "--db",
        database_url,
        "--policies",
        str(policies),
        "--threshold-seconds",
        "45",
        "--format",
        "md",
        "--lang",
        "ar",
    )
    assert wide.exit_code == 0, wide.output
    assert "| مستوى الخدمة | 80.0% |" in wide.stdout and "الرد خلال 45 ثانية" in wide.stdout
    assert "**افتراضي (ماذا لو)**" in wide.stdout


def test_only_the_needed_events_are_loaded(database_url: str) -> None:
    events = scenario() + simulated()
    store(database_url, events)
    start, end = START, END
    unique = {e.id: e for e in events}.values()
    firsts: dict[str, datetime] = {}
    for e in unique:
        if e.type in FIRST_EVENT_TYPES and e.time < end:
            firsts[e.subject] = min(e.time, firsts.get(e.subject, e.time))
    in_period = {s for s, t in firsts.items() if start <= t}
    surveys = {e.id for e in unique if e.type == "survey.submitted" and start <= e.time < end}
    survey_subjects = {e.subject for e in unique if e.id in surveys}
    wanted = {
        e.id
        for e in unique
        if e.subject in in_period
        and e.time < end
        and e.type != "survey.submitted"
        and not e.type.startswith(("sla.", "kpi."))
    }
    wanted |= surveys
    wanted |= {e.id for e in unique if e.subject in survey_subjects and e.type in FIRST_EVENT_TYPES and e.time < end}
    engine = make_engine(database_url)
    loaded = list(load_report_events(engine, start, end))
    engine.dispose()
    assert {e.id for e in loaded} == wanted
    assert len(wanted) < len(unique) / 2
    book = load_policies_text(BOOK_TEXT)
    assert build_report(loaded, start, end, book).to_json() == EXPECTED


def test_a_database_without_tables_is_explained(database_url: str) -> None:
    done = run("--from", "2025-01-01", "--to", "2025-07-01", "--db", database_url)
    assert done.exit_code == 1
    assert "tawasul db upgrade" in done.output
    if database_url.startswith("sqlite"):
        assert not Path(database_url.removeprefix("sqlite:///")).exists()  # nothing created by the report


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2025-02-30", "--to", "2025-07-01"), "--from: '2025-02-30' is not an ISO 8601 date"),
        (("--from", "2025-07-01", "--to", "2025-01-01"), "must be after --from"),
        (("--from", "2025-07-01", "--to", "2025-07-01T00:00:00+04:00"), "must be after --from"),
        (("--from", "2025-01-01", "--to", "2025-07-01", "--format", "pdf"), "'pdf' is not one of"),
        (("--from", "2025-01-01", "--to", "2025-07-01", "--threshold-seconds", "-1"), "--threshold-seconds"),
    ],
)
def test_bad_options_are_refused(args: tuple[str, ...], message: str) -> None:
    done = run(*args, "--db", "sqlite:///never-created.db")
    assert done.exit_code == 2
    assert message in done.output
    assert not Path("never-created.db").exists()


def test_a_bad_policy_file_is_named(tmp_path: Path) -> None:
    policies = tmp_path / "policies.yaml"
    policies.write_text(
        "calendars: {always: {always_open: true}}\npolicies:\n  - name: x\n    calendar: gvo\n    resolution: 4h\n",
        encoding="utf-8",
    )
    done = run(
        "--from",
        "2025-01-01",
        "--to",
        "2025-07-01",
        "--policies",
        str(policies),
        "--db",
        f"sqlite:///{tmp_path / 'x.db'}",
    )
    assert done.exit_code == 1
    assert "unknown calendar 'gvo'" in done.output

"""The traffic simulator: contract validity, causality, determinism and H1 2025 calibration."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from click.testing import CliRunner

import schemas
from producers.simulate_cmd import simulate
from producers.simulator import (
    DUBAI,
    Params,
    SimulatorError,
    disorder,
    iter_events,
    pace,
    parse_when,
    to_json_line,
)
from producers.simulator.business import BusinessCalendar
from producers.simulator.days import Almanac

H1_FROM = "2025-01-01"
H1_TO = "2025-07-01"
RAMADAN = (date(2025, 3, 1), date(2025, 3, 29))
CENTRES = {
    "main_building",
    "mbr_islamic_culture_centre",
    "mosque_engineering_building",
    "maktoum_quran_centre",
}
FACILITY_CATEGORIES = {
    "mosque.air_conditioning",
    "mosque.cleaning",
    "mosque.electrical",
    "mosque.plumbing",
    "mosque.sound_system",
    "mosque.carpets",
}
HEX_REF = re.compile(r"^[0-9a-f]{16}$")

# Allowed previous state for each event type, per subject kind ("" = no event yet).
CALL_RULES = {
    "call.offered": {""},
    "call.answered": {"call.offered"},
    "call.abandoned": {"call.offered"},
    "call.ended": {"call.answered"},
    "survey.submitted": {"call.ended"},
}
VISIT_RULES = {
    "visit.checked_in": {""},
    "visit.called": {"visit.checked_in"},
    "visit.completed": {"visit.called"},
    "visit.no_show": {"visit.called"},
    "survey.submitted": {"visit.completed"},
}
_TICKET_OPEN = {
    "ticket.opened",
    "ticket.acknowledged",
    "ticket.assigned",
    "ticket.resumed",
    "ticket.priority_changed",
    "ticket.reopened",
}
TICKET_RULES = {
    "ticket.opened": {""},
    "ticket.acknowledged": _TICKET_OPEN | {"ticket.paused"},
    "ticket.assigned": _TICKET_OPEN | {"ticket.paused"},
    "ticket.priority_changed": _TICKET_OPEN | {"ticket.paused"},
    "ticket.paused": _TICKET_OPEN,
    "ticket.resumed": {"ticket.paused"},
    "ticket.resolved": _TICKET_OPEN,
    "ticket.reopened": {"ticket.resolved", "survey.submitted"},
    "survey.submitted": {"ticket.resolved"},
    "ticket.closed": {"ticket.resolved", "survey.submitted"},
}
RULES = {"C": CALL_RULES, "V": VISIT_RULES, "T": TICKET_RULES}


def as_int(value: object) -> int:
    assert isinstance(value, int)
    return value


def satisfied(data: dict[str, object]) -> bool:
    score, scale = as_int(data["score"]), as_int(data.get("scale", 5))
    return score == 3 if scale == 3 else score in (4, 5)


@dataclass
class Tally:
    """What one pass over a simulated period found."""

    events: int = 0
    invalid: list[str] = field(default_factory=list)
    causality: list[str] = field(default_factory=list)
    unordered: int = 0
    types: Counter[str] = field(default_factory=Counter)
    offered_at: dict[str, datetime] = field(default_factory=dict)
    answered_within_20: int = 0
    ticket: dict[str, dict[str, object]] = field(default_factory=dict)
    opened_at: dict[str, datetime] = field(default_factory=dict)
    resolved_at: dict[str, datetime] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)
    escalated: set[str] = field(default_factory=set)
    surveys: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    scales: Counter[int] = field(default_factory=Counter)
    crm_arrivals: list[datetime] = field(default_factory=list)
    visit_arrivals: list[datetime] = field(default_factory=list)
    centres: Counter[str] = field(default_factory=Counter)
    facility_categories: Counter[str] = field(default_factory=Counter)
    facility_channels: Counter[str] = field(default_factory=Counter)
    facility_priorities: Counter[str] = field(default_factory=Counter)
    bad_refs: int = 0
    states: dict[str, str] = field(default_factory=dict)
    last_time: dict[str, datetime] = field(default_factory=dict)


def tally(events: Iterable[dict[str, object]]) -> Tally:
    """Validate every event with `schemas` and collect the figures the tests check."""
    out = Tally()
    previous: datetime | None = None
    for raw in events:
        out.events += 1
        try:
            event = schemas.parse_event(raw)
        except schemas.InvalidEvent as exc:
            out.invalid.append(f"{raw.get('type')}: {exc}")
            continue
        assert str(raw["time"]).endswith("+04:00")
        moment = event.time
        if previous is not None and moment < previous:
            out.unordered += 1
        previous = moment
        subject, kind, data = event.subject, event.type, raw["data"]
        assert isinstance(data, dict)
        out.types[kind] += 1
        state = out.states.get(subject, "")
        if state == "ticket.closed" or state not in RULES[subject[0]].get(kind, set()):
            out.causality.append(f"{subject}: {kind} after {state or 'nothing'}")
        if subject in out.last_time and moment < out.last_time[subject]:
            out.causality.append(f"{subject}: {kind} earlier than the previous event")
        out.states[subject] = kind
        out.last_time[subject] = moment
        if kind == "call.offered":
            out.offered_at[subject] = moment
            if not HEX_REF.match(str(data["caller_ref"])):
                out.bad_refs += 1
        elif kind == "call.answered":
            out.answered_within_20 += (moment - out.offered_at[subject]).total_seconds() <= 20
        elif kind == "ticket.opened":
            out.ticket[subject] = data
            out.opened_at[subject] = moment
            if data["channel"] == "crm":
                out.crm_arrivals.append(moment)
            if data["kind"] == "facility_report":
                out.facility_categories[str(data["category"])] += 1
                out.facility_channels[str(data["channel"])] += 1
                out.facility_priorities[str(data["priority"])] += 1
            if "customer_ref" in data and not HEX_REF.match(str(data["customer_ref"])):
                out.bad_refs += 1
        elif kind == "ticket.paused":
            out.paused.add(subject)
        elif kind == "ticket.priority_changed":
            out.escalated.add(subject)
        elif kind == "ticket.resolved" and subject not in out.resolved_at:
            out.resolved_at[subject] = moment
        elif kind == "visit.checked_in":
            out.visit_arrivals.append(moment)
            out.centres[str(data["centre"])] += 1
        elif kind == "survey.submitted":
            out.scales[as_int(data["scale"])] += 1
            if subject[0] == "T":
                ticket = out.ticket[subject]
                section = "crm" if ticket["channel"] == "crm" else str(ticket["kind"])
            else:
                section = {"C": "call", "V": "walk_in"}[subject[0]]
            out.surveys[section][0] += satisfied(data)
            out.surveys[section][1] += 1
    return out


@pytest.fixture(scope="module")
def half_year() -> Tally:
    """The whole of H1 2025 at scale 1 (about 380,000 events), validated event by event."""
    return tally(iter_events(Params(parse_when(H1_FROM), parse_when(H1_TO), seed=7)))


def share(found: dict[str, list[int]], section: str) -> float:
    good, total = found[section]
    return good / total


# --- contract and causality -------------------------------------------------------------


def test_every_event_is_valid_ordered_and_causal(half_year: Tally) -> None:
    assert half_year.invalid == []
    assert half_year.unordered == 0
    assert half_year.causality == []
    assert half_year.bad_refs == 0
    assert 350_000 <= half_year.events <= 450_000


def test_full_lifecycles_with_tail_end_closed() -> None:
    params = Params(parse_when("2025-05-05"), parse_when("2025-05-08"), seed=3, scale=0.5, tail=True)
    found = tally(iter_events(params))
    assert found.invalid == [] and found.causality == [] and found.unordered == 0
    tickets = [s for s in found.states if s.startswith("T-")]
    assert tickets and all(found.states[s] in ("ticket.closed",) for s in tickets)
    calls = [s for s in found.states if s.startswith("C-")]
    ends = Counter(found.states[s] for s in calls)
    assert set(ends) <= {"call.ended", "call.abandoned", "survey.submitted"}
    assert ends["call.ended"] + ends["survey.submitted"] > ends["call.abandoned"] > 0


# --- calibration on the half-year report ------------------------------------------------


def test_calls_calibrated(half_year: Tally) -> None:
    offered = half_year.types["call.offered"]
    answered = half_year.types["call.answered"]
    abandoned = half_year.types["call.abandoned"]
    assert abs(answered - 20_000) <= 2_000
    assert abs(offered - 22_000) <= 2_200
    assert offered == answered + abandoned
    assert 0.02 <= abandoned / offered <= 0.12
    service_level = half_year.answered_within_20 / (answered + abandoned)
    assert 0.75 <= service_level <= 0.86
    assert abs(share(half_year.surveys, "call") - 0.98) <= 0.015
    assert 0.30 <= half_year.surveys["call"][1] / half_year.types["call.ended"] <= 0.40


def test_crm_requests_calibrated(half_year: Tally) -> None:
    crm = [s for s, t in half_year.ticket.items() if t["channel"] == "crm"]
    assert abs(len(crm) - 27_000) <= 2_700
    assert abs(share(half_year.surveys, "crm") - 0.93) <= 0.02
    assert 0.20 <= half_year.surveys["crm"][1] / len(crm) <= 0.30


def test_facility_reports_calibrated(half_year: Tally) -> None:
    reports = [t for t in half_year.ticket.values() if t["kind"] == "facility_report"]
    assert abs(len(reports) - 12_000) <= 1_200
    locations = [t["location"] for t in reports]
    assert all(isinstance(loc, dict) and loc["mosque_id"] and loc["area"] for loc in locations)
    assert FACILITY_CATEGORIES <= set(half_year.facility_categories)
    channels = half_year.facility_channels
    assert channels["complaints_platform"] / len(reports) > 0.6
    assert set(channels) == {"complaints_platform", "call", "app", "web"}
    assert 0.02 <= half_year.facility_priorities["urgent"] / len(reports) <= 0.10
    assert share(half_year.surveys, "facility_report") >= 0.92


def test_other_contacts_at_smaller_volumes(half_year: Tally) -> None:
    kinds = Counter(str(t["kind"]) for t in half_year.ticket.values())
    for kind in ("complaint", "suggestion", "inquiry"):
        assert 500 <= kinds[kind] < 12_000
    assert set(half_year.centres) == CENTRES
    visits = half_year.types["visit.checked_in"]
    assert visits == half_year.types["visit.called"]
    assert visits == half_year.types["visit.completed"] + half_year.types["visit.no_show"]
    assert share(half_year.surveys, "walk_in") >= 0.93
    assert half_year.scales[5] > 0.8 * sum(half_year.scales.values()) and half_year.scales[3] > 0


def test_some_tickets_late_most_in_time(half_year: Tally) -> None:
    """CRM requests: 24 business hours (gov calendar); urgent mosque faults: 4 hours."""
    gov = BusinessCalendar("gov", Almanac())
    crm_late = crm_total = urgent_late = urgent_total = 0
    for subject, ticket in half_year.ticket.items():
        if subject not in half_year.resolved_at or subject in half_year.paused:
            continue
        opened, resolved = half_year.opened_at[subject], half_year.resolved_at[subject]
        if ticket["channel"] == "crm":
            deadline = gov.add(opened.timestamp(), 24 * 3600)
            crm_total += 1
            crm_late += resolved.timestamp() > deadline
        elif ticket["priority"] == "urgent" and ticket["kind"] == "facility_report":
            urgent_total += 1
            urgent_late += resolved - opened > timedelta(hours=4)
    assert 0.01 <= crm_late / crm_total <= 0.12
    assert 0.01 <= urgent_late / urgent_total <= 0.15
    assert half_year.types["ticket.reopened"] > 0 and half_year.escalated
    assert half_year.types["ticket.paused"] >= half_year.types["ticket.resumed"] > 0


def _local(moments: list[datetime]) -> list[datetime]:
    return [moment.astimezone(DUBAI) for moment in moments]


def test_office_channels_follow_the_working_week(half_year: Tally) -> None:
    holidays = {
        date(2025, 1, 1),
        date(2025, 3, 31),
        date(2025, 4, 1),
        date(2025, 6, 5),
        date(2025, 6, 6),
        date(2025, 6, 27),
    }
    for moment in _local(half_year.crm_arrivals + half_year.visit_arrivals):
        minute = moment.hour * 60 + moment.minute
        assert moment.weekday() < 5, moment
        assert moment.date() not in holidays, moment
        ramadan = RAMADAN[0] <= moment.date() <= RAMADAN[1]
        opens = 9 * 60 if ramadan else 7 * 60 + 30
        if moment.weekday() == 4:
            closes = 12 * 60
        else:
            closes = 14 * 60 + 30 if ramadan else 15 * 60 + 30
        assert opens <= minute < closes, moment


def test_ramadan_has_fewer_office_arrivals(half_year: Tally) -> None:
    per_day: Counter[date] = Counter(m.date() for m in _local(half_year.crm_arrivals))
    ramadan = [n for d, n in per_day.items() if RAMADAN[0] <= d <= RAMADAN[1] and d.weekday() < 4]
    other = [n for d, n in per_day.items() if not RAMADAN[0] <= d <= RAMADAN[1] and d.weekday() < 4]
    assert len(ramadan) >= 14
    assert sum(ramadan) / len(ramadan) < 0.8 * sum(other) / len(other)


def test_contact_centre_runs_all_week_quieter_at_weekends(half_year: Tally) -> None:
    by_weekday: Counter[int] = Counter()
    for moment in half_year.offered_at.values():
        by_weekday[moment.astimezone(DUBAI).weekday()] += 1
    assert by_weekday[5] > 0 and by_weekday[6] > 0
    assert by_weekday[5] < 0.5 * by_weekday[1]


# --- determinism, command, scaling --------------------------------------------------------


def _run(*args: str) -> bytes:
    result = CliRunner().invoke(simulate, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def test_same_seed_same_bytes_other_seed_differs() -> None:
    args = ("--from", "2025-03-27", "--to", "2025-04-03", "--scale", "0.3")
    first = _run(*args, "--seed", "11")
    assert first and first == _run(*args, "--seed", "11")
    assert first != _run(*args, "--seed", "12")
    lines = first.decode("utf-8").splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == len(set(ids))


def test_out_file_equals_stdout_and_reports_progress(tmp_path: Path) -> None:
    args = ["--from", "2025-02-03", "--to", "2025-02-05T12:00", "--seed", "5", "--scale", "0.2"]
    target = tmp_path / "sample.jsonl"
    result = CliRunner().invoke(simulate, [*args, "--out", str(target)], catch_exceptions=False)
    assert result.exit_code == 0
    assert "events written to" in result.stderr
    assert target.read_bytes() == _run(*args)
    last = json.loads(target.read_bytes().splitlines()[-1])
    assert last["time"] < "2025-02-05T12:00:00+04:00"


def test_bad_range_is_a_usage_error() -> None:
    result = CliRunner().invoke(simulate, ["--from", "2025-02-05", "--to", "2025-02-01"])
    assert result.exit_code == 2 and "end must be after start" in result.output
    with pytest.raises(SimulatorError):
        parse_when("yesterday")


def test_a_day_is_the_same_whatever_the_range() -> None:
    wide = Params(parse_when("2025-02-03"), parse_when("2025-02-06"), seed=4, scale=0.3)
    narrow = Params(parse_when("2025-02-04"), parse_when("2025-02-05"), seed=4, scale=0.3)
    day = [e for e in iter_events(wide) if str(e["subject"])[2:10] == "20250204"]
    inside = [e for e in day if str(e["time"]) < "2025-02-05"]
    assert inside and inside == list(iter_events(narrow))


def test_scale_multiplies_volume() -> None:
    def opened(scale: float) -> int:
        params = Params(parse_when("2025-04-07"), parse_when("2025-04-12"), seed=2, scale=scale)
        return sum(1 for e in iter_events(params) if e["type"] in ("ticket.opened", "call.offered"))

    small, large = opened(0.1), opened(1.0)
    assert 0.07 * large <= small <= 0.13 * large


def test_tag_keeps_runs_apart() -> None:
    params = Params(parse_when("2025-02-03"), parse_when("2025-02-03T10:00"), seed=1, tag="demo2")
    subjects = {str(e["subject"]) for e in iter_events(params)}
    assert subjects and all(re.match(r"^[CTV]-demo2-20250203-\d{5}$", s) for s in subjects)


# --- disorder and pacing --------------------------------------------------------------------


def _sample() -> list[dict[str, object]]:
    return list(iter_events(Params(parse_when("2025-02-03"), parse_when("2025-02-04"), seed=9)))


def test_disorder_is_bounded_and_keeps_every_event() -> None:
    events = _sample()
    shuffled = list(disorder(events, 300, seed=1))
    assert sorted(map(to_json_line, shuffled)) == sorted(map(to_json_line, events))
    assert shuffled != events
    latest = float("-inf")
    for event in shuffled:
        moment = datetime.fromisoformat(str(event["time"])).timestamp()
        assert latest - moment <= 300
        latest = max(latest, moment)
    assert list(disorder(events, 300, seed=1)) == shuffled


class FakeClock:
    """Records sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float, /) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_pace_waits_for_accelerated_time_and_rebases() -> None:
    events: list[dict[str, object]] = []
    for event in _sample():
        if event["type"] == "call.offered" and (not events or event["time"] > events[-1]["time"]):
            events.append(event)
    events = events[:4]
    clock = FakeClock()
    start = clock.now
    paced = list(pace(events, speed=60, clock=clock, rebase=True))
    gaps = [
        (datetime.fromisoformat(str(b["time"])) - datetime.fromisoformat(str(a["time"]))).total_seconds()
        for a, b in pairwise(events)
    ]
    assert clock.sleeps == pytest.approx([gap / 60 for gap in gaps])
    assert clock.now == pytest.approx(start + sum(gaps) / 60)
    assert datetime.fromisoformat(str(paced[0]["time"])).timestamp() == pytest.approx(start)
    assert [e["id"] for e in paced] == [e["id"] for e in events]
    assert all(str(e["time"]).endswith("+04:00") for e in paced)
    unchanged = list(pace(events, speed=1e9, clock=FakeClock()))
    assert unchanged == events
    with pytest.raises(SimulatorError):
        list(pace(events, speed=0, clock=FakeClock()))


def test_customer_references_never_read_as_phone_numbers() -> None:
    """The intake refuses a reference that looks like a phone number: the simulator must never
    make one (seed 7 once gave `0022800297257486`, which reads as an international number)."""
    import random

    from producers.simulator.world import World
    from tawasul.infra.privacy import looks_like_phone_number

    start = parse_when("2025-01-01")
    world = World(Params(start, start + timedelta(days=1), seed=7))
    rng = random.Random(1)
    refs = {world.person_ref(rng) for _ in range(150_000)}
    assert len(refs) > 20_000
    assert not [ref for ref in refs if looks_like_phone_number(ref)]

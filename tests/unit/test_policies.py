"""SLA policy files: loading, matching, and clear errors naming the place."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from tawasul.domain.durations import format_duration, parse_duration
from tawasul.domain.errors import DurationError, PolicyError
from tawasul.domain.policies import (
    PolicyBook,
    build_book,
    default_policy_path,
    load_policies,
    load_policies_text,
)

CONTRACT_EXAMPLE = """
calendars:
  gov:
    timezone: Asia/Dubai
    hours:
      mon: ["07:30-15:30"]
      tue: ["07:30-15:30"]
      wed: ["07:30-15:30"]
      thu: ["07:30-15:30"]
      fri: ["07:30-12:00"]
    holidays: {country: AE}
    closed: ["2025-12-03"]
    ramadan_hours:
      mon: ["09:00-14:30"]
      tue: ["09:00-14:30"]
      wed: ["09:00-14:30"]
      thu: ["09:00-14:30"]
      fri: ["09:00-12:00"]
  always:
    timezone: Asia/Dubai
    always_open: true
policies:
  - name: mosque-urgent
    match: {kind: facility_report, priority: urgent}
    calendar: always
    first_response: 1h
    resolution: 4h
    warn_at: 0.75
  - name: crm-standard
    match: {channel: crm}
    calendar: gov
    first_response: 4h
    resolution: 24h
"""


def base() -> dict[str, object]:
    raw = yaml.safe_load(CONTRACT_EXAMPLE)
    assert isinstance(raw, dict)
    return raw


def test_contract_example_loads() -> None:
    book = load_policies_text(CONTRACT_EXAMPLE)
    urgent = book.match("app", "facility_report", "mosque.power", "urgent")
    assert urgent is not None and urgent.name == "mosque-urgent"
    assert urgent.first_response == timedelta(hours=1) and urgent.resolution == timedelta(hours=4)
    assert urgent.warn_at == 0.75
    crm = book.match("crm", "request", "certificates", "normal")
    assert crm is not None and crm.name == "crm-standard" and crm.warn_at == 0.75
    assert crm.target_us("resolution") == 24 * 3600 * 10**6
    assert book.match("email", "suggestion", "general", "low") is None
    assert book.calendar("gov").is_holiday(date(2025, 12, 3))
    assert book.calendar("always").always_open


def test_first_matching_policy_wins() -> None:
    book = load_policies_text(CONTRACT_EXAMPLE)
    found = book.match("crm", "facility_report", "mosque.power", "urgent")
    assert found is not None and found.name == "mosque-urgent"


def test_match_keys_lists_and_category_prefixes() -> None:
    raw = base()
    raw["policies"] = [
        {
            "name": "ac",
            "match": {
                "category": ["mosque.air_conditioning", "ablution.*"],
                "priority": ["high", "urgent"],
                "department": "facilities",
            },
            "calendar": "always",
            "resolution": "90m",
        },
        {"name": "mosques", "match": {"category": "mosque.*"}, "calendar": "gov", "first_response": "1h30m"},
    ]
    book = build_book(raw)

    def name(channel: str, kind: str, category: str, priority: str, department: str | None) -> str | None:
        policy = book.match(channel, kind, category, priority, department)
        return None if policy is None else policy.name

    assert name("web", "request", "mosque.air_conditioning", "high", "facilities") == "ac"
    assert name("web", "request", "ablution.water", "urgent", "facilities") == "ac"
    assert name("web", "request", "mosque.air_conditioning", "high", None) == "mosques"
    assert name("web", "request", "mosque.air_conditioning", "normal", "facilities") == "mosques"
    assert name("web", "request", "mosque", "high", "facilities") is None
    assert name("web", "request", "ablution", "high", "facilities") is None
    mosques = book.policy("mosques")
    assert mosques.first_response == timedelta(minutes=90) and mosques.resolution is None
    assert mosques.target("resolution") is None


def test_default_policy_file_is_valid_and_covers_every_ticket() -> None:
    path = default_policy_path()
    assert path.name == "default.yaml" and path.is_file()
    book = load_policies(path)
    cases = {
        ("complaints_platform", "facility_report", "mosque.power", "urgent"): ("mosque-urgent", "always"),
        ("app", "facility_report", "mosque.air_conditioning", "high"): ("mosque-high", "always"),
        ("call", "facility_report", "mosque.cleaning", "normal"): ("mosque-standard", "gov"),
        ("crm", "complaint", "staff", "normal"): ("complaint", "gov"),
        ("crm", "request", "certificates", "normal"): ("crm-standard", "gov"),
        ("web", "inquiry", "prayer_times", "low"): ("inquiry", "gov"),
        ("call", "request", "donations", "normal"): ("call-follow-up", "gov"),
        ("walk_in", "request", "quran_centre", "normal"): ("walk-in", "gov"),
        ("social", "compliment", "general", "low"): ("catch-all", "gov"),
    }
    for (channel, kind, category, priority), (expected, calendar) in cases.items():
        policy = book.match(channel, kind, category, priority)
        assert policy is not None and (policy.name, policy.calendar) == (expected, calendar)
        assert policy.first_response is not None and policy.resolution is not None
        assert policy.first_response <= policy.resolution
    gov = book.calendar("gov")
    assert gov.ramadan_week is not None and gov.is_holiday(date(2025, 3, 31))


def test_match_is_cached_per_profile() -> None:
    book = load_policies_text(CONTRACT_EXAMPLE)
    first = book.match("crm", "request", "a", "normal")
    assert book.match("crm", "request", "a", "normal") is first


def test_load_policies_from_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(CONTRACT_EXAMPLE, encoding="utf-8")
    assert isinstance(load_policies(path), PolicyBook)
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policies(tmp_path / "missing.yaml")


def _with(path: str, value: object) -> dict[str, object]:
    """The contract example with one value replaced; path like `policies.1.calendar`."""
    raw = base()
    node: object = raw
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]  # type: ignore[index]
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        assert isinstance(node, dict)
        node[last] = value
    return raw


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("policies.1.calendar", "gvo", r"^policies\[1\]\.calendar: unknown calendar 'gvo'$"),
        ("policies.1.resolution", "2d", r"^policies\[1\]\.resolution: bad duration '2d'"),
        ("policies.1.resolution", "1.5h", r"^policies\[1\]\.resolution: bad duration '1.5h'"),
        ("policies.1.first_response", 90, r"^policies\[1\]\.first_response: must be a string like '90m'"),
        ("policies.1.first_response", "0m", r"^policies\[1\]\.first_response: .*greater than zero"),
        ("policies.0.match", {"chanel": "crm"}, r"^policies\[0\]\.match\.chanel: unknown match key"),
        (
            "policies.0.match",
            {"kind": "facility-report"},
            r"^policies\[0\]\.match\.kind: unknown value 'facility-report'",
        ),
        ("policies.0.match", {"priority": []}, r"^policies\[0\]\.match\.priority: must be a non-empty"),
        ("policies.0.match", {"category": "mosque*"}, r"^policies\[0\]\.match\.category: a wildcard may only"),
        ("policies.0.match", "crm", r"^policies\[0\]\.match: must be a mapping"),
        ("policies.0.warn_at", 1, r"^policies\[0\]\.warn_at: must be a number between 0 and 1"),
        ("policies.0.warn_at", 0, r"^policies\[0\]\.warn_at: must be a number between 0 and 1"),
        ("policies.0.warn_at", True, r"^policies\[0\]\.warn_at"),
        ("policies.0.name", "", r"^policies\[0\]\.name: required"),
        ("policies.1.name", "mosque-urgent", r"^policies\[1\]\.name: duplicate policy name 'mosque-urgent'"),
        ("policies.0.deadline", "1h", r"^policies\[0\]\.deadline: unknown key"),
        ("policies.1", "crm", r"^policies\[1\]: must be a mapping"),
        ("policies", {"a": 1}, r"^policies: must be a list"),
        (
            "calendars.gov.hours",
            {"mon": ["07:30-15:30"], "fry": ["07:30-12:00"]},
            r"^calendars\.gov\.hours: unknown weekday 'fry'",
        ),
        (
            "calendars.gov.hours",
            {"mon": ["07:30-5:30"]},
            r"^calendars\.gov\.hours\.mon\[0\]: bad time range '07:30-5:30'",
        ),
        ("calendars.gov.ramadan_hours", {"fri": ["9-12"]}, r"^calendars\.gov\.ramadan_hours\.fri\[0\]: bad time range"),
        ("calendars.gov.timezone", "Asia/Dubia", r"^calendars\.gov\.timezone: unknown IANA time zone"),
        ("calendars.gov.holidays", {"country": "XX"}, r"^calendars\.gov\.holidays: unknown country"),
        ("calendars.gov.holidays", "AE", r"^calendars\.gov\.holidays: must be a mapping like \{country: AE\}"),
        ("calendars.gov.holidays", {"country": "AE", "year": 2025}, r"^calendars\.gov\.holidays\.year: unknown key"),
        ("calendars.gov.closed", ["2025-13-03"], r"^calendars\.gov\.closed\[0\]: bad date '2025-13-03'"),
        ("calendars.gov.closed", "2025-12-03", r"^calendars\.gov\.closed: must be a list of dates"),
        ("calendars.gov.opening", "x", r"^calendars\.gov\.opening: unknown key"),
        ("calendars.always.always_open", "yes", r"^calendars\.always\.always_open: must be true or false"),
        ("calendars.always.hours", {"mon": ["07:30-15:30"]}, r"^calendars\.always\.always_open: an always-open"),
        ("calendars", {}, r"^calendars: must be a non-empty mapping"),
        ("extra", 1, r"^extra: unknown key"),
    ],
)
def test_errors_name_the_place(path: str, value: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        build_book(_with(path, value))


def test_policy_needs_a_target() -> None:
    raw = base()
    raw["policies"] = [{"name": "x", "calendar": "gov"}]
    with pytest.raises(PolicyError, match=r"^policies\[0\]: needs first_response, resolution or both$"):
        build_book(raw)


def test_not_yaml_and_not_a_mapping() -> None:
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policies_text("calendars: [")
    with pytest.raises(PolicyError, match="must be a mapping with 'calendars' and 'policies'"):
        load_policies_text("- 1\n- 2\n")


def test_unquoted_yaml_dates_are_accepted() -> None:
    text = CONTRACT_EXAMPLE.replace('closed: ["2025-12-03"]', "closed: [2025-12-04]")
    assert load_policies_text(text).calendar("gov").is_holiday(date(2025, 12, 4))


def test_unknown_names() -> None:
    book = load_policies_text(CONTRACT_EXAMPLE)
    with pytest.raises(PolicyError, match="unknown calendar 'x'"):
        book.calendar("x")
    with pytest.raises(PolicyError, match="unknown policy 'x'"):
        book.policy("x")
    with pytest.raises(PolicyError, match="unknown target 'x'"):
        book.policy("crm-standard").target("x")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90m", 5400), ("4h", 14400), ("1h30m", 5400), ("45s", 45), ("2h0m5s", 7205), (" 24h ", 86400)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "h", "30m1h", "1d", "1.5h", "-1h", "4 h", "PT4H", "0s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(DurationError, match="duration"):
        parse_duration(text)


def test_format_duration_round_trips() -> None:
    for text in ("1h30m", "4h", "45s", "2h5s", "40h"):
        assert format_duration(parse_duration(text)) == text
    with pytest.raises(DurationError):
        format_duration(timedelta(microseconds=5))

"""SLA policies: which targets apply to a ticket, in which business calendar.

The YAML format is section 3 of the contract: `calendars` (name -> calendar) and `policies`
(an ordered list; the first policy whose `match` fits a ticket applies). Every error names its
place in the file, e.g. `policies[2].calendar: unknown calendar 'gvo'`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tawasul.domain.calendars import MICROSECOND, BusinessCalendar
from tawasul.domain.durations import parse_duration
from tawasul.domain.errors import CalendarError, DurationError, PolicyError

CHANNELS = frozenset({"call", "crm", "complaints_platform", "walk_in", "email", "web", "app", "social"})
KINDS = frozenset({"request", "complaint", "suggestion", "inquiry", "compliment", "facility_report"})
PRIORITIES = frozenset({"low", "normal", "high", "urgent"})
TARGETS: tuple[str, ...] = ("first_response", "resolution")
MATCH_KEYS: dict[str, frozenset[str] | None] = {
    "channel": CHANNELS,
    "kind": KINDS,
    "category": None,
    "priority": PRIORITIES,
    "department": None,
}
POLICY_KEYS = frozenset({"name", "match", "calendar", "first_response", "resolution", "warn_at", "grace"})
CALENDAR_KEYS = frozenset({"timezone", "hours", "holidays", "closed", "workdays", "ramadan_hours", "always_open"})
DEFAULT_WARN_AT = 0.75


@dataclass(frozen=True, slots=True)
class Match:
    """The `match` of a policy; a `None` field accepts any value."""

    channel: frozenset[str] | None = None
    kind: frozenset[str] | None = None
    category: frozenset[str] | None = None
    category_prefixes: tuple[str, ...] = ()
    priority: frozenset[str] | None = None
    department: frozenset[str] | None = None

    def fits(self, channel: str, kind: str, category: str, priority: str, department: str | None = None) -> bool:
        """True when every key of the match accepts the ticket's value."""
        if self.channel is not None and channel not in self.channel:
            return False
        if self.kind is not None and kind not in self.kind:
            return False
        if self.priority is not None and priority not in self.priority:
            return False
        if self.department is not None and department not in self.department:
            return False
        if self.category is not None or self.category_prefixes:
            exact = self.category is not None and category in self.category
            if not exact and not category.startswith(self.category_prefixes):
                return False
        return True


@dataclass(frozen=True, slots=True)
class Policy:
    """One SLA policy: targets in business time of `calendar`."""

    name: str
    match: Match
    calendar: str
    first_response: timedelta | None
    resolution: timedelta | None
    warn_at: float = DEFAULT_WARN_AT
    grace: timedelta = timedelta(0)
    """Wall time a live worker waits after a warning or breach instant before firing it (sources
    that deliver late); deadlines and the outcomes' instants are unchanged."""

    @property
    def grace_us(self) -> int:
        return self.grace // MICROSECOND

    def target(self, name: str) -> timedelta | None:
        """The business time allowed for target `name` (`first_response` or `resolution`)."""
        if name not in TARGETS:
            raise PolicyError(f"unknown target {name!r}, use {' or '.join(TARGETS)}")
        return self.first_response if name == "first_response" else self.resolution

    def target_us(self, name: str) -> int | None:
        """`target(name)` in microseconds."""
        value = self.target(name)
        return None if value is None else value // MICROSECOND


class PolicyBook:
    """Calendars and the ordered policies; `match` is cached per distinct ticket profile."""

    __slots__ = ("calendars", "policies", "_cache", "sha256")

    def __init__(self, calendars: Mapping[str, BusinessCalendar], policies: Iterable[Policy]) -> None:
        self.calendars: dict[str, BusinessCalendar] = dict(calendars)
        self.policies: tuple[Policy, ...] = tuple(policies)
        for i, policy in enumerate(self.policies):
            if policy.calendar not in self.calendars:
                raise PolicyError(f"policies[{i}].calendar: unknown calendar {policy.calendar!r}")
        self._cache: dict[tuple[str, str, str, str, str | None], Policy | None] = {}
        self.sha256: str | None = None
        """`policies_sha256` of the YAML text it was read from (`load_policies_text`), else None."""

    def match(
        self, channel: str, kind: str, category: str, priority: str, department: str | None = None
    ) -> Policy | None:
        """The first policy whose match fits the ticket, or None (no SLA)."""
        key = (channel, kind, category, priority, department)
        if key in self._cache:
            return self._cache[key]
        found = next((p for p in self.policies if p.match.fits(*key)), None)
        self._cache[key] = found
        return found

    def calendar(self, name: str) -> BusinessCalendar:
        """The calendar called `name`."""
        try:
            return self.calendars[name]
        except KeyError:
            raise PolicyError(f"unknown calendar {name!r}") from None

    def policy(self, name: str) -> Policy:
        """The policy called `name`."""
        for policy in self.policies:
            if policy.name == name:
                return policy
        raise PolicyError(f"unknown policy {name!r}")


def default_policy_path() -> Path:
    """The policy file shipped with the project (`tawasul/policies/default.yaml`)."""
    return Path(str(resources.files("tawasul.policies").joinpath("default.yaml")))


def load_policies(path: str | Path) -> PolicyBook:
    """Read and validate a policy file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {str(path)!r}: {exc.strerror}") from exc
    return load_policies_text(text)


def load_policies_text(text: str) -> PolicyBook:
    """Validate policy YAML given as text."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"not valid YAML: {exc}") from exc
    book = build_book(raw)
    book.sha256 = policies_sha256(text)
    return book


def policies_sha256(text: str) -> str:
    """The SHA-256 (hex) of a policy book's YAML text as read (UTF-8, newlines as `\\n`)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_book(raw: object) -> PolicyBook:
    """Validate already-parsed policy data (a mapping with `calendars` and `policies`)."""
    if not isinstance(raw, Mapping):
        raise PolicyError("the policy file must be a mapping with 'calendars' and 'policies'")
    unknown = sorted(set(map(str, raw)) - {"calendars", "policies"})
    if unknown:
        raise PolicyError(f"{unknown[0]}: unknown key, use 'calendars' and 'policies'")
    cals = raw.get("calendars")
    if not isinstance(cals, Mapping) or not cals:
        raise PolicyError("calendars: must be a non-empty mapping of name to calendar")
    calendars = {str(name): _calendar(str(name), spec) for name, spec in cals.items()}
    items = raw.get("policies")
    if not isinstance(items, list):
        raise PolicyError("policies: must be a list of policies")
    policies: list[Policy] = []
    for i, item in enumerate(items):
        policy = _policy(f"policies[{i}]", item, calendars)
        if any(p.name == policy.name for p in policies):
            raise PolicyError(f"policies[{i}].name: duplicate policy name {policy.name!r}")
        policies.append(policy)
    return PolicyBook(calendars, policies)


def _calendar(name: str, spec: object) -> BusinessCalendar:
    where = f"calendars.{name}"
    if not isinstance(spec, Mapping):
        raise PolicyError(f"{where}: must be a mapping")
    unknown = sorted(set(map(str, spec)) - CALENDAR_KEYS)
    if unknown:
        raise PolicyError(f"{where}.{unknown[0]}: unknown key, use {', '.join(sorted(CALENDAR_KEYS))}")
    always_open = spec.get("always_open", False)
    if not isinstance(always_open, bool):
        raise PolicyError(f"{where}.always_open: must be true or false")
    country, subdiv = _holidays(f"{where}.holidays", spec.get("holidays"))
    zone = spec.get("timezone", "Asia/Dubai")
    if not isinstance(zone, str):
        raise PolicyError(f"{where}.timezone: must be an IANA time zone name like 'Asia/Dubai'")
    try:
        return BusinessCalendar(
            name=name,
            timezone=zone,
            hours=spec.get("hours"),
            ramadan_hours=spec.get("ramadan_hours"),
            holidays_country=country,
            holidays_subdiv=subdiv,
            closed=_dates(f"{where}.closed", spec.get("closed")),
            workdays=_dates(f"{where}.workdays", spec.get("workdays")),
            always_open=always_open,
        )
    except CalendarError as exc:
        raise PolicyError(f"{where}.{exc}") from exc


def _holidays(where: str, spec: object) -> tuple[str | None, str | None]:
    if spec is None:
        return None, None
    if not isinstance(spec, Mapping) or not isinstance(spec.get("country"), str):
        raise PolicyError(f"{where}: must be a mapping like {{country: AE}}")
    unknown = sorted(set(map(str, spec)) - {"country", "subdiv"})
    if unknown:
        raise PolicyError(f"{where}.{unknown[0]}: unknown key, use country and subdiv")
    subdiv = spec.get("subdiv")
    if subdiv is not None and not isinstance(subdiv, str):
        raise PolicyError(f"{where}.subdiv: must be a string")
    return spec["country"], subdiv


def _dates(where: str, values: object) -> list[date]:
    if values is None:
        return []
    if not isinstance(values, list):
        raise PolicyError(f"{where}: must be a list of dates like ['2025-12-03']")
    out: list[date] = []
    for i, value in enumerate(values):
        if isinstance(value, date):
            out.append(value)
            continue
        try:
            out.append(date.fromisoformat(str(value)))
        except ValueError:
            raise PolicyError(f"{where}[{i}]: bad date {value!r}, expected YYYY-MM-DD") from None
    return out


def _policy(where: str, item: object, calendars: Mapping[str, BusinessCalendar]) -> Policy:
    if not isinstance(item, Mapping):
        raise PolicyError(f"{where}: must be a mapping")
    unknown = sorted(set(map(str, item)) - POLICY_KEYS)
    if unknown:
        raise PolicyError(f"{where}.{unknown[0]}: unknown key, use {', '.join(sorted(POLICY_KEYS))}")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PolicyError(f"{where}.name: required, a non-empty string")
    calendar = item.get("calendar")
    if not isinstance(calendar, str):
        raise PolicyError(f"{where}.calendar: required, the name of a calendar")
    if calendar not in calendars:
        raise PolicyError(f"{where}.calendar: unknown calendar {calendar!r}")
    targets = {t: _duration(f"{where}.{t}", item.get(t)) for t in TARGETS}
    if all(v is None for v in targets.values()):
        raise PolicyError(f"{where}: needs first_response, resolution or both")
    warn_at = item.get("warn_at", DEFAULT_WARN_AT)
    if isinstance(warn_at, bool) or not isinstance(warn_at, (int, float)) or not 0 < warn_at < 1:
        raise PolicyError(f"{where}.warn_at: must be a number between 0 and 1 (exclusive), got {warn_at!r}")
    grace = _duration(f"{where}.grace", item.get("grace")) or timedelta(0)
    return Policy(
        name=name,
        match=_match(f"{where}.match", item.get("match")),
        calendar=calendar,
        first_response=targets["first_response"],
        resolution=targets["resolution"],
        warn_at=float(warn_at),
        grace=grace,
    )


def _duration(where: str, value: object) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise PolicyError(f"{where}: {exc}") from exc


def _match(where: str, spec: object) -> Match:
    if spec is None:
        return Match()
    if not isinstance(spec, Mapping):
        raise PolicyError(f"{where}: must be a mapping like {{channel: crm}}")
    fields: dict[str, Any] = {}
    for key, value in spec.items():
        if key not in MATCH_KEYS:
            raise PolicyError(f"{where}.{key}: unknown match key, use {', '.join(MATCH_KEYS)}")
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            raise PolicyError(f"{where}.{key}: must be a non-empty string or list of strings")
        allowed = MATCH_KEYS[key]
        bad = [v for v in values if allowed is not None and v not in allowed]
        if bad:
            raise PolicyError(f"{where}.{key}: unknown value {bad[0]!r}, use {', '.join(sorted(allowed or ()))}")
        if key == "category":
            prefixes = tuple(v[:-1] for v in values if v.endswith(".*"))
            exact = frozenset(v for v in values if not v.endswith(".*"))
            if any("*" in v for v in exact):
                raise PolicyError(f"{where}.category: a wildcard may only end a prefix, like 'mosque.*'")
            fields["category"] = exact or None
            fields["category_prefixes"] = prefixes
        else:
            fields[key] = frozenset(values)
    return Match(**fields)

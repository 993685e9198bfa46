"""What one gateway credential may send: event types, channels and sources (from the secrets file).

```yaml
  - name: pbx-main
    event_types: ["call.*"]                    # exact types or a family prefix `<family>.*`
  - name: crm
    event_types: ["ticket.*", "survey.submitted"]
    channels: ["crm", "complaints_platform"]   # the `data.channel` of ticket.opened / survey.submitted
  - name: legacy
    allow: all                                 # every input type and channel, said explicitly
```

An adapter with neither `allow: all` nor `event_types` keeps the behaviour of older secrets
files (every input type, every channel) and is `implicit`: the gateway warns at start and
`--require-permissions` refuses to start with one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from schemas import CHANNELS, INPUT_EVENT_TYPES, Event
from schemas.registry import DATA_MODELS

CHANNEL_TYPES: Final[frozenset[str]] = frozenset(
    event_type
    for (event_type, _), model in DATA_MODELS.items()
    if event_type in INPUT_EVENT_TYPES and "channel" in model.model_fields
)
"""Input event types whose `data` names a channel (ticket.opened, survey.submitted)."""
ALL: Final = "all"
PERMISSION_KEYS: Final = frozenset({"allow", "event_types", "channels"})


class PermissionConfigError(ValueError):
    """An adapter's permission keys are malformed; the message names the key."""


@dataclass(frozen=True)
class Permissions:
    """Allowed event types (exact or `family.*`) and channels; None = any."""

    event_types: tuple[str, ...] | None = None
    channels: tuple[str, ...] | None = None
    implicit: bool = True
    """True when the secrets file says nothing (older files): any type and channel, with a warning."""

    def allows_type(self, event_type: str) -> bool:
        if self.event_types is None:
            return True
        return any(
            event_type == rule or (rule.endswith(".*") and event_type.startswith(rule[:-1]))
            for rule in self.event_types
        )

    def refusal(self, event: Event, adapter: str) -> str | None:
        """Why `event` may not be sent with these permissions (naming the field), or None."""
        if not self.allows_type(event.type):
            allowed = ", ".join(self.event_types or ())
            return f"type: {event.type!r} is not allowed for adapter {adapter} (allowed: {allowed})"
        channel = getattr(event.data, "channel", None)
        if self.channels is not None and event.type in CHANNEL_TYPES and str(channel) not in self.channels:
            allowed = ", ".join(self.channels) or "none"
            return f"data.channel: {str(channel)!r} is not allowed for adapter {adapter} (allowed: {allowed})"
        return None

    def describe(self) -> str:
        """A one-line summary for the start-up log."""
        types = ALL if self.event_types is None else ",".join(self.event_types)
        channels = ALL if self.channels is None else ",".join(self.channels) or "none"
        return f"types={types} channels={channels}"


def _strings(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item.strip() for item in value):
        raise PermissionConfigError(f"{where}: must be a non-empty list of strings")
    return tuple(dict.fromkeys(item.strip() for item in value))


def _event_types(value: object, where: str) -> tuple[str, ...]:
    rules = _strings(value, f"{where}.event_types")
    for rule in rules:
        if rule.endswith(".*"):
            family = rule[:-1]
            if not any(event_type.startswith(family) for event_type in INPUT_EVENT_TYPES):
                raise PermissionConfigError(f"{where}.event_types: {rule!r} matches no input event type")
        elif rule not in INPUT_EVENT_TYPES:
            known = ", ".join(sorted(INPUT_EVENT_TYPES))
            hint = " (use `allow: all` for every type)" if "*" in rule else ""
            raise PermissionConfigError(
                f"{where}.event_types: {rule!r} is not an input event type or a `family.*` prefix{hint}; known: {known}"
            )
    return rules


def _channels(value: object, where: str) -> tuple[str, ...] | None:
    if value == ALL:
        return None
    if value == []:
        return ()
    channels = _strings(value, f"{where}.channels")
    unknown = [channel for channel in channels if channel not in CHANNELS]
    if unknown:
        raise PermissionConfigError(
            f"{where}.channels: unknown channel {unknown[0]!r} (known: {', '.join(CHANNELS)}, or `all`)"
        )
    return channels


def parse_permissions(entry: Mapping[str, object], where: str) -> Permissions:
    """The permissions of one adapter entry of the secrets file."""
    allow, types, channels = entry.get("allow"), entry.get("event_types"), entry.get("channels")
    if allow is not None:
        if allow != ALL:
            raise PermissionConfigError(f"{where}.allow: the only value is `all`")
        if types is not None or channels is not None:
            raise PermissionConfigError(f"{where}: `allow: all` cannot be combined with event_types or channels")
        return Permissions(implicit=False)
    if types is None:
        if channels is not None:
            raise PermissionConfigError(f"{where}.channels: needs event_types too")
        return Permissions()
    event_types = _event_types(types, where)
    permissions = Permissions(event_types=event_types, channels=(), implicit=False)
    carrying = sorted(t for t in CHANNEL_TYPES if permissions.allows_type(t))
    if channels is None:
        if carrying:
            raise PermissionConfigError(
                f"{where}.channels: required because event_types allows {', '.join(carrying)} "
                "(list the channels it may send, or `channels: all`)"
            )
        return permissions
    return Permissions(event_types=event_types, channels=_channels(channels, where), implicit=False)

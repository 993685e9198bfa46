"""Asterisk `queue_log` adapter: parses queue_log lines and translates them to call events.

A queue_log line is `epoch|callid|queuename|agent|event|data1|data2|...`. Call events become
CloudEvents (raw dicts per the contract): ENTERQUEUE -> `call.offered`, CONNECT ->
`call.answered`, ABANDON / EXITWITHTIMEOUT / EXITWITHKEY / EXITEMPTY -> `call.abandoned`,
COMPLETEAGENT / COMPLETECALLER / TRANSFER / BLINDTRANSFER / ATTENDEDTRANSFER -> `call.ended`.
Every other event (agent log-ins, pauses, ring-no-answer, queue start, reloads, ...) is skipped.
Event ids are derived from the line, so reading the same log twice yields the same ids.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from tawasul.infra.pseudonymise import PseudonymiseError, Pseudonymiser

DEFAULT_TIMEZONE = "Asia/Dubai"
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:tawasul:adapter:queue_log")

OFFERED = frozenset({"ENTERQUEUE"})
ANSWERED = frozenset({"CONNECT"})
ABANDONED = frozenset({"ABANDON", "EXITWITHTIMEOUT", "EXITWITHKEY", "EXITEMPTY"})
ENDED = frozenset({"COMPLETEAGENT", "COMPLETECALLER", "TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER"})
CALL_EVENTS = OFFERED | ANSWERED | ABANDONED | ENDED

# Data fields of each call event as Asterisk's app_queue writes them, how many leading fields
# every Asterisk version fills, and which fields must be integers when present.
_POSITIONS = ("position", "origposition", "waittime")
_TIMES = ("holdtime", "calltime", "origposition")
_LAYOUTS: Mapping[str, tuple[tuple[str, ...], int, frozenset[str]]] = MappingProxyType(
    {
        "ENTERQUEUE": (("url", "callerid", "position"), 0, frozenset({"position"})),
        "CONNECT": (("holdtime", "bridged-uniqueid", "ringtime"), 1, frozenset({"holdtime", "ringtime"})),
        "ABANDON": (_POSITIONS, 1, frozenset(_POSITIONS)),
        "EXITWITHTIMEOUT": (_POSITIONS, 1, frozenset(_POSITIONS)),
        "EXITEMPTY": (_POSITIONS, 1, frozenset(_POSITIONS)),
        "EXITWITHKEY": (("key", *_POSITIONS), 1, frozenset(_POSITIONS)),
        "COMPLETEAGENT": (_TIMES, 2, frozenset(_TIMES)),
        "COMPLETECALLER": (_TIMES, 2, frozenset(_TIMES)),
        "TRANSFER": (("extension", "context", *_TIMES), 0, frozenset(_TIMES)),
        "BLINDTRANSFER": (("extension", "context", *_TIMES), 0, frozenset(_TIMES)),
    }
)

_EPOCH = re.compile(r"^\d{1,12}(\.\d{1,9})?$")
_INTEGER = re.compile(r"^-?\d+$")
_NO_CALLER = frozenset({"", "anonymous", "unknown", "<unknown>", "restricted", "private", "withheld", "unavailable"})
_NOT_AN_AGENT = frozenset({"", "NONE"})


class QueueLogError(Exception):
    """The queue_log adapter's options or configuration file are unusable."""


class QueueLogFormatError(ValueError):
    """A queue_log line does not have the documented layout (the message names what is wrong)."""


@dataclass(frozen=True)
class AdapterError:
    """A line or row an adapter could not turn into an event, with the reason (no personal data)."""

    line_no: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason}"


@dataclass(frozen=True)
class QueueLogLine:
    """One parsed queue_log line (`epoch` is kept as written: it feeds the event id)."""

    epoch: str
    time: datetime
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]


@dataclass(frozen=True)
class QueueLogOptions:
    """How queue_log lines become events.

    `prefix` makes call ids unique across PBXs (subject = `<prefix>-<uniqueid>`); `source`
    defaults to `/channels/pbx/<prefix>`; `languages` maps queue -> `ar`/`en`;
    `wrap_up_seconds` (or `queue_wrap_up` per queue) is added to `call.ended`; `agents` maps a
    queue_log agent/member name to the agent id to publish.
    """

    prefix: str
    pseudonymiser: Pseudonymiser
    source: str | None = None
    languages: Mapping[str, str] = field(default_factory=dict)
    wrap_up_seconds: int | None = None
    queue_wrap_up: Mapping[str, int] = field(default_factory=dict)
    agents: Mapping[str, str] = field(default_factory=dict)
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        if not self.prefix or any(ch.isspace() or ch == "|" for ch in self.prefix):
            raise QueueLogError("prefix must be a non-empty string without spaces or '|'")
        if self.source is not None and not self.source.strip():
            raise QueueLogError("source must not be empty")
        for name, seconds in [("wrap_up_seconds", self.wrap_up_seconds), *self.queue_wrap_up.items()]:
            if seconds is not None and (not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0):
                raise QueueLogError(f"wrap-up for {name!r} must be a whole number of seconds >= 0")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise QueueLogError(f"unknown time zone {self.timezone!r}") from None
        object.__setattr__(self, "languages", MappingProxyType(dict(self.languages)))
        object.__setattr__(self, "queue_wrap_up", MappingProxyType(dict(self.queue_wrap_up)))
        object.__setattr__(self, "agents", MappingProxyType(dict(self.agents)))

    @property
    def event_source(self) -> str:
        return self.source or f"/channels/pbx/{self.prefix}"


def default_prefix(host: str | None = None) -> str:
    """`pbx-<host>` for this machine (or `host`): the short host name, lower-cased, as a slug."""
    name = (host if host is not None else socket.gethostname()).split(".", 1)[0].lower()
    slug = re.sub(r"[^a-z0-9]+", "-", name).strip("-")
    return f"pbx-{slug or 'local'}"


def load_options(path: str | Path, *, pseudonymiser: Pseudonymiser, prefix: str | None = None) -> QueueLogOptions:
    """Options from a YAML file (keys: prefix, source, timezone, languages, wrap_up_seconds,
    queue_wrap_up, agents); a `prefix` argument wins over the file's."""
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise QueueLogError(f"cannot read queue_log options {path}: {exc}") from None
    if not isinstance(loaded, dict):
        raise QueueLogError(f"{path}: expected a mapping at the top level")
    known = {"prefix", "source", "timezone", "languages", "wrap_up_seconds", "queue_wrap_up", "agents"}
    unknown = sorted(set(loaded) - known)
    if unknown:
        raise QueueLogError(f"{path}: unknown keys {', '.join(map(str, unknown))}")
    for key in ("languages", "queue_wrap_up", "agents"):
        if not isinstance(loaded.get(key, {}), dict):
            raise QueueLogError(f"{path}: {key} must be a mapping")
    chosen_prefix = prefix or loaded.get("prefix")
    if not chosen_prefix:
        raise QueueLogError(f"{path}: no prefix given")
    return QueueLogOptions(
        prefix=str(chosen_prefix),
        pseudonymiser=pseudonymiser,
        source=loaded.get("source"),
        languages={str(k): str(v) for k, v in loaded.get("languages", {}).items()},
        wrap_up_seconds=loaded.get("wrap_up_seconds"),
        queue_wrap_up={str(k): v for k, v in loaded.get("queue_wrap_up", {}).items()},
        agents={str(k): str(v) for k, v in loaded.get("agents", {}).items()},
        timezone=str(loaded.get("timezone", DEFAULT_TIMEZONE)),
    )


def parse_line(text: str, timezone: str = DEFAULT_TIMEZONE) -> QueueLogLine:
    """Split and check one line; raises `QueueLogFormatError` naming the bad field."""
    fields = text.rstrip("\r\n").split("|")
    if len(fields) < 5:
        raise QueueLogFormatError(
            f"expected at least 5 '|'-separated fields (epoch|callid|queue|agent|event), found {len(fields)}"
        )
    epoch, callid, queue, agent, event, *data = fields
    if not _EPOCH.match(epoch):
        raise QueueLogFormatError("field 1 (epoch) is not a Unix time in seconds")
    try:
        when = datetime.fromtimestamp(float(epoch), ZoneInfo(timezone))
    except (OverflowError, OSError, ValueError):
        raise QueueLogFormatError("field 1 (epoch) is out of range") from None
    if not event or not event.replace("_", "").isalnum():
        raise QueueLogFormatError("field 5 (event) is empty or not an event name")
    return QueueLogLine(epoch, when, callid.strip(), queue.strip(), agent.strip(), event.upper(), tuple(data))


def _check_call_line(line: QueueLogLine) -> dict[str, str]:
    """Check the parts of a call event line that the translation relies on; named data fields."""
    if not line.callid or line.callid == "NONE" or any(ch.isspace() for ch in line.callid):
        raise QueueLogFormatError(f"field 2 (callid) of {line.event} is missing or not a call id")
    if not line.queue or line.queue == "NONE":
        raise QueueLogFormatError(f"field 3 (queue) of {line.event} is missing")
    if line.event == "ATTENDEDTRANSFER":
        # The layout depends on the transfer kind; the last three are holdtime|calltime|origposition.
        tail = line.data[-3:]
        if len(tail) < 3 or not all(_INTEGER.match(value) for value in tail if value):
            raise QueueLogFormatError("ATTENDEDTRANSFER data must end with holdtime|calltime|origposition")
        return {}
    names, minimum, integers = _LAYOUTS[line.event]
    named = dict(zip(names, (value.strip() for value in line.data), strict=False))
    for position, name in enumerate(names, start=6):
        value = named.get(name, "")
        if not value and position - 6 < minimum:
            raise QueueLogFormatError(f"field {position} ({name}) of {line.event} is missing")
        if name in integers and value and not _INTEGER.match(value):
            raise QueueLogFormatError(f"field {position} ({name}) of {line.event} is not an integer")
    return named


def normalise_agent(member: str, agents: Mapping[str, str] | None = None) -> str | None:
    """The published agent id for a queue_log agent/member field, or None for no agent.

    An explicit mapping wins; otherwise the technology and context are stripped
    (`PJSIP/1001`, `Agent/1001`, `Local/1001@from-queue/n` -> `agent-1001`) and what remains
    is lower-cased with runs of other characters turned into `-`.
    """
    name = member.strip()
    if name in _NOT_AN_AGENT:
        return None
    if agents and name in agents:
        return agents[name]
    core = name.split("/", 1)[1] if "/" in name else name
    core = core.split("@", 1)[0].split("/", 1)[0]
    slug = re.sub(r"[\W_]+", "-", core.lower()).strip("-")
    if not slug:
        return None
    return slug if slug.startswith("agent-") else f"agent-{slug}"


def event_id(prefix: str, line: QueueLogLine) -> str:
    """Deterministic id from (prefix, callid, queue, event, epoch)."""
    return str(uuid.uuid5(ID_NAMESPACE, "|".join((prefix, line.callid, line.queue, line.event, line.epoch))))


def _caller_ref(named: Mapping[str, str], pseudonymiser: Pseudonymiser) -> str | None:
    caller = named.get("callerid", "").strip()
    if caller.lower() in _NO_CALLER:
        return None
    return pseudonymiser.ref(caller)


def _call_data(line: QueueLogLine, named: Mapping[str, str], options: QueueLogOptions) -> tuple[str, dict[str, Any]]:
    data: dict[str, Any] = {"queue": line.queue}
    if line.event in OFFERED:
        language = options.languages.get(line.queue)
        if language:
            data["language"] = language
        ref = _caller_ref(named, options.pseudonymiser)
        if ref:
            data["caller_ref"] = ref
        return "call.offered", data
    if line.event in ABANDONED:
        return "call.abandoned", data
    agent = normalise_agent(line.agent, options.agents)
    if line.event in ANSWERED:
        if agent is None:
            raise QueueLogFormatError("field 4 (agent) of CONNECT is missing")
        data["agent"] = agent
        return "call.answered", data
    if agent is not None:
        data["agent"] = agent
    wrap_up = options.queue_wrap_up.get(line.queue, options.wrap_up_seconds)
    if wrap_up is not None:
        data["wrap_up_seconds"] = wrap_up
    return "call.ended", data


def translate_line(options: QueueLogOptions, line_no: int, text: str) -> dict[str, Any] | AdapterError | None:
    """One line -> an event dict, an `AdapterError`, or None for a blank line or a skipped event."""
    if not text.strip():
        return None
    try:
        line = parse_line(text, options.timezone)
        if line.event not in CALL_EVENTS:
            return None
        named = _check_call_line(line)
        event_type, data = _call_data(line, named, options)
    except (QueueLogFormatError, PseudonymiseError) as exc:
        return AdapterError(line_no, str(exc))
    return {
        "specversion": "1.0",
        "id": event_id(options.prefix, line),
        "source": options.event_source,
        "type": event_type,
        "time": line.time.isoformat(),
        "subject": f"{options.prefix}-{line.callid}",
        "datacontenttype": "application/json",
        "data": data,
    }


def translate_numbered(
    lines: Iterable[tuple[int, str]], options: QueueLogOptions
) -> Iterator[tuple[int, dict[str, Any] | AdapterError]]:
    """Translate `(line_no, text)` pairs (as `producers.follow` yields them), lazily, in order."""
    for line_no, text in lines:
        result = translate_line(options, line_no, text)
        if result is not None:
            yield line_no, result


def translate_queue_log(
    lines: Iterable[str],
    *,
    prefix: str,
    pseudonymiser: Pseudonymiser,
    source: str | None = None,
    languages: Mapping[str, str] | None = None,
    wrap_up_seconds: int | None = None,
    queue_wrap_up: Mapping[str, int] | None = None,
    agents: Mapping[str, str] | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    first_line_no: int = 1,
) -> Iterator[tuple[int, dict[str, Any] | AdapterError]]:
    """Translate queue_log lines to `(line_no, event dict)` or `(line_no, AdapterError)` pairs.

    Blank lines and non-call events yield nothing; a malformed line yields an error and the
    lines around it are translated as usual. Raises `QueueLogError` at once for bad options.
    """
    options = QueueLogOptions(
        prefix=prefix,
        pseudonymiser=pseudonymiser,
        source=source,
        languages=languages or {},
        wrap_up_seconds=wrap_up_seconds,
        queue_wrap_up=queue_wrap_up or {},
        agents=agents or {},
        timezone=timezone,
    )
    return translate_numbered(enumerate(lines, start=first_line_no), options)

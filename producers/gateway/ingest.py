"""From an authenticated HTTP body to one intake outcome per event (no I/O here).

A single event (`application/cloudevents+json`) is one JSON object; a batch
(`application/cloudevents-batch+json`) a JSON array of them. Each event goes through the shared
intake (`producers.intake`: contract checks and phone-number scrubbing) and then the adapter's
permissions (`sources`, `event_types`, `channels`): an event it may not send is rejected with
category `forbidden` (answered 403). Dead-letter origins are `http:<request-id>` for a single event or a whole body
that is not a batch, and `http:<request-id>#<index>` for a batch element.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Final, Literal

from producers.gateway.config import Adapter
from producers.intake import Accepted, Outcome, Rejected, accept_line, accept_object, reject
from tawasul.infra.pseudonymise import Pseudonymiser

BodyKind = Literal["single", "batch"]
SINGLE_TYPE: Final = "application/cloudevents+json"
BATCH_TYPE: Final = "application/cloudevents-batch+json"
CONTENT_TYPES: Final[dict[str, BodyKind]] = {SINGLE_TYPE: "single", BATCH_TYPE: "batch"}
MAX_ECHOED_ID_CHARS: Final = 256
FORBIDDEN: Final = "forbidden"
"""`Rejected.category` of an event the adapter may not send (its source, type or channel)."""


@dataclass(frozen=True)
class Item:
    """One event of a request: its place in the batch (None for a whole-body rejection), id and outcome."""

    index: int | None
    event_id: str | None
    outcome: Outcome

    @property
    def accepted(self) -> bool:
        return isinstance(self.outcome, Accepted)

    @property
    def forbidden(self) -> bool:
        return isinstance(self.outcome, Rejected) and self.outcome.category == FORBIDDEN


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _echoed_id(value: object) -> str | None:
    """The event's own `id`, when it is an object with a usable one, to name it in the answer."""
    event_id = value.get("id") if isinstance(value, dict) else None
    if isinstance(event_id, str) and event_id and len(event_id) <= MAX_ECHOED_ID_CHARS:
        return event_id
    return None


def _peek_id(body: bytes) -> str | None:
    try:
        return _echoed_id(json.loads(body))
    except (ValueError, RecursionError):
        return None


def _refusal(outcome: Accepted, adapter: Adapter) -> str | None:
    if not adapter.allows_source(outcome.event.source):
        return f"source: not allowed for adapter {adapter.name} (allowed: {', '.join(adapter.sources)})"
    return adapter.permissions.refusal(outcome.event, adapter.name)


def _check_permissions(outcome: Outcome, adapter: Adapter) -> Outcome:
    """The outcome, or a `forbidden` rejection when the adapter may not send this event."""
    if isinstance(outcome, Rejected):
        return outcome
    reason = _refusal(outcome, adapter)
    if reason is None:
        return outcome
    return dataclasses.replace(reject(outcome.value, reason, outcome.origin), category=FORBIDDEN)


def _single(body: bytes, adapter: Adapter, origin: str, pseudonymiser: Pseudonymiser | None) -> list[Item]:
    outcome = _check_permissions(accept_line(body, origin, pseudonymiser), adapter)
    event_id = outcome.event.id if isinstance(outcome, Accepted) else _peek_id(body)
    return [Item(0, event_id, outcome)]


def _batch(body: bytes, adapter: Adapter, origin: str, pseudonymiser: Pseudonymiser | None) -> list[Item]:
    try:
        elements = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        return [Item(None, None, reject(body, f"batch: not valid UTF-8 (byte {exc.start})", origin, "not_utf8"))]
    except json.JSONDecodeError as exc:
        reason = f"batch: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        return [Item(None, None, reject(body, reason, origin, "not_json"))]
    except (ValueError, RecursionError) as exc:
        return [Item(None, None, reject(body, f"batch: not valid JSON: {exc}", origin, "not_json"))]
    if not isinstance(elements, list):
        return [Item(None, None, reject(body, "batch: must be a JSON array of events", origin, "not_object"))]
    items: list[Item] = []
    for index, element in enumerate(elements):
        outcome = accept_object(element, f"{origin}#{index}", pseudonymiser)
        outcome = _check_permissions(outcome, adapter)
        event_id = outcome.event.id if isinstance(outcome, Accepted) else _echoed_id(element)
        items.append(Item(index, event_id, outcome))
    return items


def evaluate(
    body: bytes,
    kind: BodyKind,
    adapter: Adapter,
    request_id: str,
    pseudonymiser: Pseudonymiser | None,
) -> list[Item]:
    """Every event of the body, accepted or rejected, in body order."""
    origin = f"http:{request_id}"
    if kind == "single":
        return _single(body, adapter, origin, pseudonymiser)
    return _batch(body, adapter, origin, pseudonymiser)

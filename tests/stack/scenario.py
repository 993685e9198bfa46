"""The events of the stack test's scenario, sent through the gateway as the channel adapters would."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from producers.gateway.auth import signature_headers
from schemas import new_event

BATCH = "application/cloudevents-batch+json"
CRM_SOURCE = "/channels/crm/stack-test"
PBX_SOURCE = "/channels/pbx/stack-test"


def at(ago: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) - ago).isoformat(timespec="milliseconds")


def event(kind: str, subject: str, data: dict[str, Any], source: str, ago: timedelta = timedelta()) -> dict[str, Any]:
    return new_event(kind, subject, at(ago), data, source).to_dict()


def ticket_opened(ticket: str, channel: str, kind: str, priority: str, ago: timedelta = timedelta()) -> dict[str, Any]:
    category = "mosque.air_conditioning" if kind == "facility_report" else f"services.{kind}"
    return event(
        "ticket.opened",
        ticket,
        {"channel": channel, "kind": kind, "category": category, "priority": priority},
        CRM_SOURCE,
        ago,
    )


def ticket_resolved(ticket: str) -> dict[str, Any]:
    return event("ticket.resolved", ticket, {"resolution": "done"}, CRM_SOURCE)


def survey(subject: str, channel: str, score: int) -> dict[str, Any]:
    """A survey as its channel's adapter sends it: the PBX's IVR for calls, the CRM for the rest."""
    source = PBX_SOURCE if channel == "call" else CRM_SOURCE
    return event("survey.submitted", subject, {"channel": channel, "score": score, "scale": 5}, source)


def call_offered(call: str, queue: str, ago: timedelta) -> dict[str, Any]:
    return event("call.offered", call, {"queue": queue, "language": "ar"}, PBX_SOURCE, ago)


def call_answered(call: str, queue: str) -> dict[str, Any]:
    return event("call.answered", call, {"queue": queue, "agent": "a-1"}, PBX_SOURCE)


def visit_checked_in(visit: str, centre: str) -> dict[str, Any]:
    return event("visit.checked_in", visit, {"centre": centre, "service": "certificate"}, CRM_SOURCE)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Adapter:
    """A channel adapter of deploy/gateway/secrets.example.yaml, with the secret the test gave it."""

    name: str
    secret: bytes


@dataclass(frozen=True)
class Gateway:
    port: int
    crm: Adapter
    pbx: Adapter

    def post(self, events: Iterable[dict[str, Any]], adapter: Adapter | None = None) -> tuple[int, Any]:
        body = json.dumps(list(events)).encode()
        adapter = adapter or self.crm
        headers = {"Content-Type": BATCH, **signature_headers(adapter.name, adapter.secret, body)}
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("POST", "/v1/events", body=body, headers=headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            connection.close()

    def send(self, events: Iterable[dict[str, Any]], adapter: Adapter | None = None) -> None:
        status, answer = self.post(events, adapter)
        assert status == 202, (status, answer)

"""Validate a request's events and publish them, waiting for Kafka's confirmation (runs in a worker thread)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from producers.gateway.config import Adapter
from producers.gateway.health import PublisherSlot, UnavailableError
from producers.gateway.ingest import BodyKind, evaluate
from producers.intake import Outcome, Rejected
from producers.publisher import EventPublisher, PublishError
from tawasul.infra.pseudonymise import Pseudonymiser

SOURCE_KIND = "http"


@dataclass(frozen=True)
class RejectedItem:
    """One rejected event as the answer names it."""

    index: int | None
    event_id: str | None
    reason: str


@dataclass(frozen=True)
class Published:
    """A processed request: the ids Kafka confirmed and the rejected events (dead-lettered, confirmed too)."""

    accepted: tuple[str, ...]
    rejected: tuple[RejectedItem, ...]
    forbidden: int = 0
    """How many of the rejected events the adapter may not send (answered 403)."""


class Dispatcher:
    """Turns a body into events, sends them and their dead letters, and waits for every confirmation."""

    def __init__(self, slot: PublisherSlot, pseudonymiser: Pseudonymiser | None, *, ack_timeout_s: float) -> None:
        self._slot = slot
        self._pseudonymiser = pseudonymiser
        self._ack_timeout_s = ack_timeout_s

    def process(self, body: bytes, kind: BodyKind, adapter: Adapter, request_id: str) -> Published:
        """Blocking. Raises UnavailableError when Kafka did not confirm every send in time."""
        items = evaluate(body, kind, adapter, request_id, self._pseudonymiser)
        publisher = self._slot.get()
        deadline = time.monotonic() + self._ack_timeout_s
        futures = [self._send(publisher, item.outcome) for item in items]
        for future in futures:
            try:
                future.get(timeout=max(deadline - time.monotonic(), 0.001))
            except KafkaError as exc:
                raise UnavailableError(f"Kafka did not confirm the events: {type(exc).__name__}") from None
        return Published(
            accepted=tuple(item.event_id or "" for item in items if item.accepted),
            rejected=tuple(
                RejectedItem(item.index, item.event_id, item.outcome.reason)
                for item in items
                if isinstance(item.outcome, Rejected)
            ),
            forbidden=sum(item.forbidden for item in items),
        )

    @staticmethod
    def _send(publisher: EventPublisher, outcome: Outcome) -> FutureRecordMetadata:
        try:
            return publisher.route(outcome, source_kind=SOURCE_KIND)
        except PublishError:
            # The publisher reports (once) sends of earlier requests that failed, before sending this
            # one; those requests were answered 503 already. Nothing of this outcome was sent: retry once.
            pass
        try:
            if isinstance(outcome, Rejected):  # counted as rejected by the first attempt
                return publisher.dead_letter(outcome.letter, source_kind=SOURCE_KIND)
            return publisher.publish(outcome.event, outcome.value)
        except PublishError as exc:
            raise UnavailableError(f"Kafka refused the events: {exc}") from None

"""What the database sink cannot store, kept on the dead-letter topic with the reason.

A message that does not decode, and a record the database refuses on its own, are skipped so
that one bad message never stops the sink; they are not dropped. Each becomes a dead letter
(`tawasul.infra.deadletter`: the original bytes, redacted of phone numbers, the reason and the
origin), and the sink commits a batch's offsets only once Kafka has confirmed the batch's dead
letters: a letter not confirmed is sent again, and its message read again after a restart.

Origins: `kafka:<topic>/<partition>@<offset>` for a message, `sink:<record type>` for a
record the database refused (its stored form as JSON is the letter's original).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

from schemas import Event
from sinks.db.records import EventRecord
from sinks.db.writer import Record
from tawasul.infra.deadletter import DeadLetter
from tawasul.infra.privacy import redact, redact_text
from tawasul.infra.publisher import KafkaPublisher

SOURCE_KIND = "sink"
"""The `source_kind` label of the sink's dead letters in `tawasul_dead_letters_total`."""


def message_origin(topic: str, partition: int, offset: int) -> str:
    return f"kafka:{topic}/{partition}@{offset}"


def record_origin(record: Record) -> str:
    return f"sink:{type(record).__name__}"


def record_bytes(record: Record) -> bytes:
    """The record as JSON: the event's own text for events, the stored fields otherwise."""
    if isinstance(record, EventRecord):
        return record.payload.encode("utf-8", "surrogatepass")
    if isinstance(record, Event):
        return record.to_json()
    fields = dataclasses.asdict(record)
    return json.dumps(
        fields,
        default=lambda value: value.isoformat() if isinstance(value, datetime) else str(value),
        ensure_ascii=False,
    ).encode("utf-8", "surrogatepass")


class DeadLetterOutbox:
    """The sink's dead letters of the current batch, sent and confirmed before its offsets."""

    def __init__(self, publisher: KafkaPublisher) -> None:
        self.publisher = publisher
        self.pending: list[DeadLetter] = []

    def add(self, original: bytes, reason: str, origin: str) -> None:
        self.pending.append(DeadLetter(original=redact(original), reason=redact_text(reason), origin=origin))

    def __len__(self) -> int:
        return len(self.pending)

    def confirm(self, timeout_s: float = 30.0) -> None:
        """Send the pending letters and wait for Kafka's confirmation; raises `PublishError`
        (and keeps them pending, to be sent again) when it does not come in `timeout_s`."""
        if not self.pending:
            return
        for letter in self.pending:
            self.publisher.dead_letter(letter, source_kind=SOURCE_KIND)
        self.publisher.flush(timeout_s)
        self.pending.clear()

    def close(self) -> None:
        self.publisher.close()

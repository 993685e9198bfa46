"""The KPI aggregator's input batches and table, without faust: what `KpiProcessor` runs per message.

A message of `tawasul.kpis.input` is a JSON array of events or of ticket states, told apart by
the `tawasul-kind` header. `fold_batch` folds its items through `tawasul.domain.kpi_fold.KpiFold`
into a `TableStore`: the records decoded in memory, written through to the changelog-backed
table as JSON (key = subject). Unreadable items are skipped with a warning; an item whose
processing raises anything else is returned as poison (for the dead-letter topic), and never
stops the batch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from schemas import InvalidEvent, parse_event
from tawasul.domain.kpi_fold import KpiFold
from tawasul.domain.kpi_records import KpiStateError, SubjectRecord
from tawasul.domain.kpi_ticket_state import as_message

log = logging.getLogger("stream_processors.kpi_agent")

__all__ = [
    "EVENT",
    "KIND_HEADER",
    "STATE",
    "Poisoned",
    "TableStore",
    "batch_kind",
    "decode_record",
    "encode_record",
    "fold_batch",
    "pack",
]

KIND_HEADER = "tawasul-kind"
EVENT, STATE = b"event", b"ticket-state"

Poisoned = list[tuple[Any, Exception]]
"""Items whose processing raised, with why (sent as dead letters)."""


def batch_kind(headers: Any) -> bytes:
    """`EVENT` or `STATE`, by the message's `tawasul-kind` header (events when it has none)."""
    items: Iterable[tuple[str, bytes]] = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, value in items:
        if name == KIND_HEADER:
            return bytes(value)
    return EVENT


def encode_record(record: SubjectRecord) -> bytes:
    return json.dumps(record.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()


def decode_record(value: bytes | None) -> SubjectRecord | None:
    if value is None:
        return None
    try:
        return SubjectRecord.from_dict(json.loads(value))
    except (ValueError, TypeError, KpiStateError):
        log.warning("kpi: unreadable table value ignored")
        return None


def pack(values: Iterable[bytes]) -> bytes:
    """Several JSON objects (events or ticket states, as received) as one JSON array."""
    return b"[" + b",".join(values) + b"]"


class TableStore:
    """The records, decoded in memory and written through to the table (bytes key and value)."""

    def __init__(self, table: MutableMapping[bytes, bytes], records: Iterable[SubjectRecord] = ()) -> None:
        self.table = table
        self.records: dict[str, SubjectRecord] = {r.subject: r for r in records}

    def get(self, subject: str) -> SubjectRecord | None:
        return self.records.get(subject)

    def put(self, record: SubjectRecord) -> None:
        encoded = encode_record(record)  # first: a record that cannot be stored changes nothing
        self.records[record.subject] = record
        self.table[record.subject.encode()] = encoded

    def delete(self, subject: str) -> None:
        self.records.pop(subject, None)
        gone = subject.encode()
        if gone in self.table:
            del self.table[gone]


def fold_batch(fold: KpiFold, value: bytes | None, kind: bytes) -> Poisoned | None:
    """Fold one input message's items (settling the book after each); None when the message is
    not a JSON array (skipped with a warning), else the poisoned items."""
    try:
        items = json.loads(value) if value is not None else []
    except ValueError:
        items = None
    if not isinstance(items, list):
        log.warning("kpi: unreadable input batch skipped")
        return None
    states = kind == STATE
    poisoned: Poisoned = []
    for item in items:
        try:
            if states:
                fold.on_state(as_message(item))
            else:
                fold.on_event(parse_event(item))
        except (InvalidEvent, KpiStateError) as exc:
            log.warning("kpi: unreadable input skipped", extra={"reason": str(exc)[:200]})
            continue
        except Exception as exc:  # noqa: BLE001 - a poison item goes to the dead letters
            poisoned.append((item, exc))
            continue
        try:
            fold.settle()
        except Exception as exc:  # noqa: BLE001 - as above
            poisoned.append((item, exc))
    return poisoned

"""What the database sink refuses to store: counted, logged (never the personal data) and
dead-lettered, so that one bad message or row never stops the sink and is never lost.

* a message that does not decode (`undecodable`);
* a record the database refuses on its own, found by storing a failed batch in halves
  (`store_around_bad_rows`);
* an event id stored before with other content (`conflicting_duplicate`).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from schemas import InvalidEvent
from sinks.db.records import BadRecord
from sinks.db.writer import Conflict, DbWriter, FlushResult, Record
from sinks.dead_letters import DeadLetterOutbox, message_origin, record_bytes, record_origin
from sinks.sink_retry import error_name
from tawasul.infra.metrics import Metrics
from tawasul.infra.privacy import redact_text

log = logging.getLogger("tawasul.sink")

UNDECODABLE = (InvalidEvent, ValueError, ArithmeticError, KeyError, TypeError)
"""What a decoder or `DbWriter.add` raises on one bad message (never stops the sink)."""


class Refusals:
    """Counts, logs and dead-letters what the sink refuses (`dead_letters` None: not kept)."""

    def __init__(self, metrics: Metrics, dead_letters: DeadLetterOutbox | None) -> None:
        self.metrics, self.dead_letters = metrics, dead_letters
        self.skipped = 0
        self.conflicts = 0

    def undecodable(self, topic: str, partition: int, message: Any, exc: BaseException) -> None:
        self.skipped += 1
        self.metrics.events_rejected.labels(source_kind="sink", reason="undecodable").inc()
        reason = redact_text(str(exc)) if isinstance(exc, InvalidEvent | BadRecord) else type(exc).__name__
        log.warning(
            "skipped a message the sink cannot decode; dead-lettered",
            extra={
                "event": "sink_undecodable",
                "topic": topic,
                "partition": partition,
                "offset": message.offset,
                "reason": reason,
            },
        )
        if self.dead_letters is not None:
            self.dead_letters.add(message.value, reason, message_origin(topic, partition, message.offset))

    def rejected_row(self, record: Record, exc: BaseException) -> None:
        self.skipped += 1
        self.metrics.db_errors.labels(kind="rejected_row").inc()
        log.error(
            "the database rejected a record; skipped and dead-lettered",
            extra={"event": "sink_row_rejected", "record": type(record).__name__, "error": error_name(exc)},
        )
        if self.dead_letters is not None:
            self.dead_letters.add(
                record_bytes(record), f"the database refused it: {error_name(exc)}", record_origin(record)
            )

    def conflicting_duplicate(self, conflict: Conflict) -> None:
        """An event id stored before with other content."""
        self.conflicts += 1
        self.metrics.conflicting_duplicates.labels(stage="sink").inc()
        log.warning(
            "an event id was already stored with other content; dead-lettered",
            extra={
                "event": "sink_conflicting_duplicate",
                "id": redact_text(conflict.record.id)[:200],
                "stored_sha256": conflict.stored_digest,
                "sha256": conflict.digest,
            },
        )
        if self.dead_letters is not None:
            self.dead_letters.add(record_bytes(conflict.record), conflict.reason, record_origin(conflict.record))


def store_around_bad_rows(writer: DbWriter, refusals: Refusals) -> FlushResult | None:
    """After a batch failed on a bad row: store it in halves, down to the records that fail alone.

    Those are refused (`Refusals.rejected_row`); everything else is stored. Returns None when
    the database became unreachable meanwhile (what is not stored yet stays buffered).
    """
    groups = [writer.take()]
    records, rows, conflicts = 0, dict[str, int](), list[Conflict]()
    while groups:
        group = groups.pop()
        for record in group:
            writer.add(record)
        try:
            part = writer.flush()
        except (IntegrityError, DataError) as exc:
            writer.take()
            if len(group) > 1:
                middle = len(group) // 2
                groups += [group[middle:], group[:middle]]
                continue
            refusals.rejected_row(group[0], exc)
            continue
        except SQLAlchemyError:
            for rest in reversed(groups):
                for record in rest:
                    writer.add(record)
            return None
        records += part.records
        conflicts += part.conflicts
        for table, count in part.rows.items():
            rows[table] = rows.get(table, 0) + count
    return FlushResult(records=records, rows=rows, conflicts=tuple(conflicts))

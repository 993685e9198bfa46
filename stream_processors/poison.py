"""Poison events: a processing step that raises on one event never stops its partition.

The event goes to the dead-letter topic (`tawasul.deadletter`, `tawasul.infra.deadletter` format)
with the exception's type and text as the reason and `<topic>:<partition>:<offset>` as the
origin; `tawasul_dead_letters_total{source_kind="processor"}` counts it, a log line names the
stage and the error (never the event's content), and the processor goes on with the next one.
"""

from __future__ import annotations

import logging

import faust

from stream_processors.context import ProcessorContext
from tawasul.infra.deadletter import DeadLetter
from tawasul.infra.privacy import redact
from tawasul.infra.topics import DEAD_LETTER

log = logging.getLogger(__name__)

SOURCE_KIND = "processor"
MAX_REASON_CHARS = 500
POISON_MESSAGE = "poison event sent to the dead-letter topic"


def poison_letter(original: bytes, stage: str, exc: BaseException, origin: str) -> DeadLetter:
    """The dead letter of an event whose processing raised `exc` in `stage` (`sla`, `kpi`)."""
    reason = f"{stage}: {type(exc).__name__}: {exc}"[:MAX_REASON_CHARS]
    return DeadLetter(original=redact(original), reason=reason, origin=origin)


class PoisonOutbox:
    """Sends poison events of one processor to the dead-letter topic."""

    def __init__(self, app: faust.App, ctx: ProcessorContext, stage: str) -> None:
        self.ctx, self.stage = ctx, stage
        self.topic = app.topic(ctx.settings.topic(DEAD_LETTER.name), key_serializer="raw", value_serializer="raw")

    async def send(self, original: bytes | None, exc: BaseException, origin: str) -> None:
        letter = poison_letter(original or b"", self.stage, exc, origin)
        log.error(POISON_MESSAGE, extra={"stage": self.stage, "origin": origin, "error": type(exc).__name__})
        await self.topic.send(value=letter.to_json(), headers=letter.headers())
        self.ctx.metrics.dead_letters.labels(source_kind=SOURCE_KIND).inc()

"""Structured (JSON lines) logging for every Tawasul process. Never log personal data."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class KnownNoise(logging.Filter):
    """Drops library messages that report normal operation at warning or error level:

    * kafka-python's `Metadata refresh: failed Cancelled`, logged whenever a client is closed
      while a metadata refresh is under way (a short replay's sink, say): the refresh was
      abandoned with the client;
    * faust's `producer buffer full size N`: its buffer of table writes passed 100 messages
      during a burst and is being flushed before the stream goes on (normal back-pressure).
    """

    LOGGERS = ("kafka.cluster", "faust.transport.producer")

    def filter(self, record: logging.LogRecord) -> bool:
        from kafka.errors import Cancelled

        if record.name == "faust.transport.producer":
            return not str(record.msg).startswith("producer buffer full size ")
        args = record.args if isinstance(record.args, tuple) else ()
        return not (record.msg == "Metadata refresh: failed %s" and len(args) == 1 and isinstance(args[0], Cancelled))


def configure_logging(level: str = "info", stream: object = None) -> None:
    """Route the root logger to stderr as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]  # any object with write() and flush()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "faust", "mode", "alembic"):
        logging.getLogger(noisy).setLevel(max(root.level, logging.WARNING))
    # kafka-python warns about its own event loop being slow whenever the CPU is busy: not actionable.
    logging.getLogger("kafka").setLevel(max(root.level, logging.ERROR))
    for name in KnownNoise.LOGGERS:
        chatty = logging.getLogger(name)
        if not any(isinstance(f, KnownNoise) for f in chatty.filters):
            chatty.addFilter(KnownNoise())

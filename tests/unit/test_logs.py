from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from kafka.errors import Cancelled, KafkaConnectionError

from tawasul.infra.logs import KnownNoise, configure_logging


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """`configure_logging` into a buffer (twice: filters are added once), restored afterwards."""
    root = logging.getLogger()
    names = ("kafka", "aiokafka", "faust", "mode", "alembic", *KnownNoise.LOGGERS)
    saved = (
        root.handlers[:],
        root.level,
        {name: (logging.getLogger(name).level, logging.getLogger(name).filters[:]) for name in names},
    )
    out = io.StringIO()
    configure_logging("info", out)
    configure_logging("info", out)
    yield out
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, (level, filters) in saved[2].items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).filters[:] = filters


def messages(out: io.StringIO) -> list[tuple[str, str]]:
    return [(line["level"], line["message"]) for line in map(json.loads, out.getvalue().splitlines())]


def test_a_refresh_cancelled_by_closing_a_client_is_not_reported_as_an_error(logged: io.StringIO) -> None:
    cluster = logging.getLogger("kafka.cluster")
    cluster.error("Metadata refresh: failed %s", Cancelled())
    cluster.error("Metadata refresh: failed %s", KafkaConnectionError("broker down"))
    assert messages(logged) == [("error", "Metadata refresh: failed KafkaConnectionError: broker down")]
    assert sum(isinstance(f, KnownNoise) for f in cluster.filters) == 1


def test_faust_table_write_back_pressure_is_not_reported(logged: io.StringIO) -> None:
    producer = logging.getLogger("faust.transport.producer")
    producer.warning("producer buffer full size 318")
    producer.warning("Producer stopped responding")
    assert messages(logged) == [("warning", "Producer stopped responding")]

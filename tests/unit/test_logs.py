from __future__ import annotations

import io
import json
import logging

from kafka.errors import Cancelled, KafkaConnectionError

from tawasul.logs import configure_logging


def test_a_refresh_cancelled_by_closing_a_client_is_not_reported_as_an_error() -> None:
    root, cluster = logging.getLogger(), logging.getLogger("kafka.cluster")
    saved = (root.handlers[:], root.level, cluster.filters[:], {
        name: logging.getLogger(name).level for name in ("kafka", "aiokafka", "faust", "mode", "alembic")})
    out = io.StringIO()
    configure_logging("info", out)
    configure_logging("info", out)            # set up twice: one filter
    try:
        cluster.error("Metadata refresh: failed %s", Cancelled())
        cluster.error("Metadata refresh: failed %s", KafkaConnectionError("broker down"))
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [line["message"] for line in lines] == ["Metadata refresh: failed KafkaConnectionError: broker down"]
        assert lines[0]["level"] == "error"
        assert len(cluster.filters) == 1
    finally:
        root.handlers[:], cluster.filters[:] = saved[0], saved[2]
        root.setLevel(saved[1])
        for name, level in saved[3].items():
            logging.getLogger(name).setLevel(level)

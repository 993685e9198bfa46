"""The database sink's lag gauge (`tawasul_consumer_lag_messages`, stage "sink"): per topic,
the messages it has not stored yet.

Set after each stored batch from the end offsets the consumer's fetches saw, and refreshed
every `LAG_REFRESH_S` seconds from the broker (one request for every partition), also while
the sink waits for its database: an outage shows as growing lag.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from kafka import TopicPartition
from kafka.errors import KafkaError

from tawasul.infra.metrics import Metrics

log = logging.getLogger("tawasul.sink")

LAG_REFRESH_S = 2.0
"""Seconds between refreshes of the lag gauge from the broker's end offsets (idle, busy or retrying)."""


class LagGauge:
    """The gauge of one sink; `unstored_from` is the first offset read but not yet stored, per
    partition of the buffered batch (the sink fills it as it reads, clears it at commit)."""

    def __init__(self, consumer: Any, metrics: Metrics, base_names: Mapping[str, str]) -> None:
        self.consumer, self.metrics, self.base_names = consumer, metrics, base_names
        self.unstored_from: dict[TopicPartition, int] = {}
        self.due = 0.0

    def after_commit(self) -> None:
        """From the end offsets the consumer's last fetches saw (no request; stale while paused)."""
        self.report({tp: self.consumer.highwater(tp) for tp in self.consumer.assignment()})

    def report(self, ends: Mapping[TopicPartition, int | None]) -> None:
        """Set the gauge per topic: end offset minus the first offset not stored yet (the
        buffered batch's first offset while a batch waits for the database, else the position)."""
        lag: dict[str, int] = {}
        for tp, high in ends.items():
            if high is None:
                continue
            start = self.unstored_from.get(tp)
            if start is None:
                start = self.consumer.position(tp, timeout_ms=1000) or 0
            name = self.base_names.get(tp.topic, tp.topic)
            lag[name] = lag.get(name, 0) + max(high - start, 0)
        for name, value in lag.items():
            self.metrics.consumer_lag.labels(stage="sink", topic=name).set(value)
        self.due = time.monotonic() + LAG_REFRESH_S

    def refresh_when_due(self) -> None:
        """Every `LAG_REFRESH_S`: the lag from the broker's end offsets, so the gauge moves while
        nothing is stored (idle, or the database away)."""
        if time.monotonic() < self.due:
            return
        self.due = time.monotonic() + LAG_REFRESH_S
        owned = list(self.consumer.assignment())
        if not owned:
            return
        try:
            ends = self.consumer.end_offsets(owned, timeout_ms=1000)
        except KafkaError as exc:  # the broker is away too: the next refresh tries again
            log.debug(
                "end offsets unavailable; lag not refreshed",
                extra={"event": "sink_lag_unavailable", "error": type(exc).__name__},
            )
            return
        self.report(ends)

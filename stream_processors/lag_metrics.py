"""The worker's progress per stage and input partition, for Prometheus (contract: monitoring).

```python
watch_progress(app, metrics, settings.topic(EVENTS.name))   # in `tawasul worker`, before it starts
```

A faust sensor sees each input event a stage's stream takes (`tawasul-sla` is the `sla` stage,
`tawasul-kpi-*` the `kpis` stage) and records, per (stage, partition) of `tawasul.events`, the
next offset to process and the Kafka timestamp of the newest event. Every second a timer of the
app sets `tawasul_worker_consumer_lag_messages` = the partition's end offset minus that position,
and `tawasul_worker_held_writes` = the SLA engine's unconfirmed writes;
`tawasul_worker_event_age_seconds` is computed at each scrape (now minus that timestamp), so it
keeps growing while a stage processes nothing.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import faust
from faust.sensors import Sensor
from faust.types import TP, EventT, StreamT

from tawasul.infra.metrics import Metrics

log = logging.getLogger(__name__)

STAGE_OF_AGENT: Final = (("tawasul-sla", "sla"), ("tawasul-kpi", "kpis"))
"""Agent name prefix -> stage label (the KPI processor's forwarder reads the events)."""
SLA_AGENT: Final = "tawasul-sla"
REFRESH_S: Final = 1.0


def stage_of(agent_name: str) -> str | None:
    """The stage label of an agent (its name may be qualified: `module.tawasul-sla`)."""
    short = agent_name.rsplit(".", 1)[-1]
    for prefix, stage in STAGE_OF_AGENT:
        if short.startswith(prefix):
            return stage
    return None


def topics_of(channel: Any) -> frozenset[str]:
    return frozenset(str(topic) for topic in getattr(channel, "topics", ()) or ())


def stages_by_topics(app: faust.App) -> dict[frozenset[str], str]:
    """The stage of each agent, keyed by the topics it reads (a stream derived with `noack()`
    loses the agent's name, never its topics)."""
    found: dict[frozenset[str], str] = {}
    for name, agent in app.agents.items():
        stage = stage_of(str(name))
        if stage is not None:
            found[topics_of(agent.channel)] = stage
    return found


class StageProgress(Sensor):  # type: ignore[misc]  # faust's Sensor is untyped
    """Position and newest event time per (stage, partition) of the events topic."""

    def __init__(self, metrics: Metrics, events_topic: str, stages: dict[frozenset[str], str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics
        self.events_topic = events_topic
        self.stages = stages
        self.position: dict[tuple[str, int], int] = {}
        self.newest: dict[tuple[str, int], float] = {}

    def on_stream_event_in(self, tp: TP, offset: int, stream: StreamT, event: EventT) -> None:
        if tp.topic != self.events_topic:
            return None
        stage = stage_of(str(getattr(stream, "prefix", "") or "")) or self.stages.get(topics_of(stream.channel))
        if stage is None:
            return None
        key = (stage, tp.partition)
        known = key in self.position
        self.position[key] = max(self.position.get(key, 0), offset + 1)
        self.newest[key] = max(self.newest.get(key, 0.0), float(event.message.timestamp))
        if not known:
            newest = self.newest
            self.metrics.worker_event_age.labels(stage=stage, partition=str(tp.partition)).set_function(
                lambda: max(0.0, time.time() - newest[key])
            )
        return None

    def refresh_lag(self, highwater: Any) -> None:
        """Set the lag gauges from `highwater(tp)` (the partition's end offset, None if unknown)."""
        for (stage, partition), position in list(self.position.items()):
            end = highwater(TP(self.events_topic, partition))
            if end is not None:
                self.metrics.worker_lag.labels(stage=stage, partition=str(partition)).set(max(0, end - position))


def held_writes(app: faust.App) -> int | None:
    """The SLA engine's held (unconfirmed) input messages, None when this worker runs no SLA engine."""
    for name, agent in app.agents.items():
        if str(name).rsplit(".", 1)[-1] == SLA_AGENT:
            held = getattr(getattr(agent.fun, "__self__", None), "held", None)
            if held is not None:
                return int(sum(held.pending(p) for p in held.partitions()))
    return None


def watch_progress(app: faust.App, metrics: Metrics, events_topic: str) -> StageProgress:
    """Install the sensor and the refresh timer on `app` (before it starts)."""
    progress = StageProgress(metrics, events_topic, stages_by_topics(app))
    app.sensors.add(progress)

    @app.timer(REFRESH_S)  # type: ignore[untyped-decorator]  # faust is untyped (follow_imports = skip)
    async def _refresh() -> None:
        try:
            progress.refresh_lag(app.consumer.highwater)
        except Exception as exc:  # noqa: BLE001 - a metric must never stop the worker
            log.debug("worker lag not refreshed", extra={"error": type(exc).__name__})
        held = held_writes(app)
        if held is not None:
            metrics.worker_held_writes.set(held)

    return progress

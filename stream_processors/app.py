"""Build the faust app of the stream processors (no module-level app: each call builds a fresh one)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

import faust

from stream_processors import commit_guard, seek_guard
from stream_processors.clock import DEFAULT_LATENESS
from stream_processors.context import Mode, ProcessorContext, Registrar
from stream_processors.sla_agent import register_sla
from tawasul.domain.policies import load_policies
from tawasul.infra.kafka_security import faust_options
from tawasul.infra.metrics import Metrics
from tawasul.infra.settings import Settings
from tawasul.infra.topics import EVENTS, SLA_TICKS, cluster_replication

LIVE_APP_ID = "tawasul-stream-processors"
REPLAY_APP_ID = "tawasul-replay"


def default_app_id(settings: Settings, mode: Mode) -> str:
    """Live: one stable consumer group per topic prefix (restarts resume it). Replay: a fresh one."""
    if mode == "live":
        return settings.topic(LIVE_APP_ID)
    return settings.topic(f"{REPLAY_APP_ID}-{uuid.uuid4().hex[:12]}")


def broker_urls(kafka: str) -> list[str]:
    """`host:port[,host:port...]` as faust broker URLs."""
    return [f"kafka://{server.strip()}" for server in kafka.split(",") if server.strip()]


def build_app(
    settings: Settings,
    *,
    mode: Mode,
    app_id: str | None = None,
    lateness: timedelta = DEFAULT_LATENESS,
    extra_registrars: Iterable[Registrar] = (),
    metrics: Metrics | None = None,
    datadir: Path | None = None,
    commit_interval_s: float = 1.0,
    instance_id: str | None = None,
    session_timeout_s: float = 30.0,
    with_sla: bool = True,
    durable_tables: bool | None = None,
) -> faust.App:
    """A faust app running the SLA engine (and any `extra_registrars`) on the wall clock or event time.

    The app reads `settings.topic("tawasul.events")` from its earliest offset when its consumer
    group is new; the topics must exist (`tawasul.infra.topics.ensure_topics`). The SLA table is kept
    in RocksDB under `datadir` when `durable_tables` (default: live mode), else in memory; either
    way its changelog topic `<app_id>-sla-changelog` rebuilds it on a machine without that copy.
    `instance_id` turns on Kafka static group membership: a worker restarted with the same id
    takes its partitions back at once instead of waiting `session_timeout_s` for the group to
    drop its dead predecessor.
    """
    if mode not in ("live", "replay"):
        raise ValueError(f"mode must be 'live' or 'replay', not {mode!r}")
    app_id = app_id or default_app_id(settings, mode)
    commit_guard.install()  # faust #606: never commit past a held message
    seek_guard.install()  # never skip the records fetched while a recovery ends
    datadir = datadir or Path(tempfile.gettempdir()) / "tawasul-faust" / app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        broker=broker_urls(settings.kafka),
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        datadir=str(datadir),
        topic_partitions=EVENTS.partitions,
        topic_replication_factor=cluster_replication(settings.kafka).factor,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        broker_commit_interval=commit_interval_s,
        stream_wait_empty=False,
        producer_linger=0.005,
        consumer_group_instance_id=instance_id,
        broker_session_timeout=session_timeout_s,
        broker_heartbeat_interval=min(3.0, session_timeout_s / 3),
        key_serializer="raw",
        value_serializer="raw",
        **faust_options(),
    )
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    ctx = ProcessorContext(
        settings=settings,
        mode=mode,
        lateness=lateness,
        book=load_policies(settings.policies_path),
        metrics=metrics or Metrics(),
        events=app.topic(settings.topic(EVENTS.name), partitions=EVENTS.partitions, **raw),
        ticks=app.topic(settings.topic(SLA_TICKS.name), partitions=SLA_TICKS.partitions, **raw),
    )
    if with_sla:
        register_sla(app, ctx, durable=mode == "live" if durable_tables is None else durable_tables)
    for registrar in extra_registrars:
        registrar(app, ctx)
    for table in app.tables.values():  # changelogs: min in-sync replicas as every topic Tawasul creates
        changelog = table.changelog_topic
        changelog.config = {**cluster_replication(settings.kafka).topic_config(), **(changelog.config or {})}
    return app

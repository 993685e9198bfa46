"""Every Kafka topic Tawasul uses, declared once and created idempotently."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

DAY_MS = 24 * 60 * 60 * 1000
EXIT_KAFKA = 3
"""Exit status of a command that could not use Kafka."""


ENV_CONNECT_TIMEOUT = "TAWASUL_KAFKA_CONNECT_TIMEOUT"
"""Seconds a command waits for a Kafka bootstrap server to answer before it gives up (30)."""


class KafkaUnavailableError(RuntimeError):
    """The Kafka bootstrap servers do not answer."""


class KafkaSettingError(ValueError):
    """A Kafka setting of the environment is not usable."""


class TopicLayoutError(KafkaSettingError):
    """A topic exists with another partition count than Tawasul needs."""


def connect_timeout_ms() -> int:
    """`TAWASUL_KAFKA_CONNECT_TIMEOUT` (seconds) in milliseconds; 30 s when unset."""
    text = os.environ.get(ENV_CONNECT_TIMEOUT, "").strip() or "30"
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise KafkaSettingError(f"{ENV_CONNECT_TIMEOUT}={text!r}: expected seconds, more than 0 and at most 3600")
    return int(seconds * 1000)


@dataclass(frozen=True)
class TopicSpec:
    """A topic's name (without run prefix), partition count and topic-level configuration."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    description: str = ""


EVENTS = TopicSpec(
    "tawasul.events", 6, {"retention.ms": str(30 * DAY_MS), "cleanup.policy": "delete"},
    "every valid input event; key = subject",
)
DEAD_LETTER = TopicSpec(
    "tawasul.deadletter", 1, {"retention.ms": str(30 * DAY_MS), "cleanup.policy": "delete"},
    "rejected input with the reason and the original bytes",
)
SLA_OUTCOMES = TopicSpec(
    "tawasul.sla.outcomes", 6, {"retention.ms": str(30 * DAY_MS), "cleanup.policy": "delete"},
    "sla.warning / sla.breached / sla.met CloudEvents; key = ticket id",
)
TICKET_STATE = TopicSpec(
    "tawasul.tickets.state", 6, {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
    "each ticket's current SLA state; key = ticket id",
)
SLA_TICKS = TopicSpec(
    "tawasul.sla.ticks", 6, {"retention.ms": str(DAY_MS), "cleanup.policy": "delete"},
    "internal: timer ticks and end-of-input watermarks for the SLA engine, co-partitioned with events",
)
KPI_INPUT = TopicSpec(
    "tawasul.kpis.input", 1, {"retention.ms": str(7 * DAY_MS), "cleanup.policy": "delete"},
    "internal: the KPI events and ticket states funnelled into one partition for the KPI aggregator",
)
KPIS = TopicSpec(
    "tawasul.kpis", 1, {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
    "KPI snapshots; key = figure + window + scope",
)
POLICIES = TopicSpec(
    "tawasul.policies", 1, {"cleanup.policy": "compact"},
    "every SLA policy book a worker or replay ran with (name, SHA-256, YAML); key = SHA-256",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (EVENTS, DEAD_LETTER, SLA_OUTCOMES, SLA_TICKS, TICKET_STATE, KPI_INPUT, KPIS,
                                     POLICIES)


def ensure_topics(bootstrap: str, prefix: str = "", specs: tuple[TopicSpec, ...] = ALL_TOPICS) -> list[str]:
    """Create the missing topics; returns the names created. Safe to call any number of times."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = _admin(bootstrap, "tawasul-topics")
    try:
        existing = set(admin.list_topics())
        wanted = [spec for spec in specs if f"{prefix}{spec.name}" not in existing]
        created: list[str] = []
        for spec in wanted:
            topic = NewTopic(
                name=f"{prefix}{spec.name}", num_partitions=spec.partitions,
                replication_factor=1, topic_configs=dict(spec.config),
            )
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                continue
        _wait_for_leaders(admin, {f"{prefix}{spec.name}": spec.partitions for spec in wanted})
        _check_partitions(admin, {f"{prefix}{spec.name}": spec.partitions for spec in specs
                                  if f"{prefix}{spec.name}" in existing})
        return created
    finally:
        admin.close()


def _check_partitions(admin: Any, expected: dict[str, int]) -> None:
    """Raise `TopicLayoutError` when a topic that already existed has another partition count
    than Tawasul's: the SLA ticks are co-partitioned with the events, and the KPI aggregator
    reads one partition."""
    if not expected:
        return
    wrong = sorted((topic["name"], len(topic.get("partitions") or ()), expected[topic["name"]])
                   for topic in admin.describe_topics(list(expected))
                   if topic.get("error_code") == 0 and len(topic.get("partitions") or ()) != expected[topic["name"]])
    if wrong:
        found = ", ".join(f"{name} has {count} partition(s), Tawasul needs {needed}" for name, count, needed in wrong)
        raise TopicLayoutError(f"{found}: delete the topic(s) and let Tawasul create them (`tawasul topics create`), "
                               "or use another TAWASUL_TOPIC_PREFIX")


def _admin(bootstrap: str, client_id: str) -> Any:
    """A `KafkaAdminClient`; raises `KafkaUnavailableError` when no bootstrap server answers."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaConnectionError, KafkaTimeoutError

    try:
        return KafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id,
                                bootstrap_timeout_ms=connect_timeout_ms())
    except (KafkaTimeoutError, KafkaConnectionError) as exc:
        raise KafkaUnavailableError(
            f"Kafka at {bootstrap} does not answer ({exc}); start one with `tawasul kafka start`, "
            "or point --kafka / TAWASUL_KAFKA at yours") from exc


class TopicsNotReadyError(RuntimeError):
    """Created topics did not get a leader for every partition in time."""


def _wait_for_leaders(admin: Any, wanted: dict[str, int], timeout_s: float = 30.0) -> None:
    """Return once every partition of the new topics has a leader, so that clients started
    right after `ensure_topics` find them in the metadata (a just-started broker lags a little)."""
    from kafka.errors import KafkaError

    give_up = time.monotonic() + timeout_s
    waiting = dict(wanted)
    while waiting:
        try:
            described = admin.describe_topics(list(waiting))
        except KafkaError:          # a topic not in the metadata yet: ask again
            described = []
        for topic in described:
            partitions = topic.get("partitions") or []
            if topic.get("error_code") == 0 and len(partitions) >= waiting.get(topic["name"], 0) and all(
                    p.get("leader_id", -1) >= 0 for p in partitions):
                waiting.pop(topic["name"], None)
        if not waiting:
            return
        if time.monotonic() > give_up:
            raise TopicsNotReadyError(f"topics without a leader after {timeout_s:.0f} s: {', '.join(sorted(waiting))}")
        time.sleep(0.1)


def assignable_partitions(consumer: Any, topics: tuple[str, ...] | list[str],
                          timeout_s: float = 30.0) -> list[Any]:
    """Every `TopicPartition` of `topics`, once the consumer's metadata knows them all (for
    `consumer.assign`); raises `TopicsNotReadyError` after `timeout_s`."""
    from kafka import TopicPartition

    give_up = time.monotonic() + timeout_s
    while True:
        found = {topic: consumer.partitions_for_topic(topic) for topic in topics}
        if all(found.values()):
            return [TopicPartition(topic, p) for topic, parts in found.items() for p in sorted(parts or ())]
        if time.monotonic() > give_up:
            missing = ", ".join(topic for topic, parts in found.items() if not parts)
            raise TopicsNotReadyError(f"topics not in the metadata after {timeout_s:.0f} s: {missing}")
        time.sleep(0.2)


def partition_end_offsets(bootstrap: str, topics: list[str] | tuple[str, ...]) -> dict[tuple[str, int], int]:
    """The end offset (next offset to be written) of every partition of `topics`, by
    (topic, partition); a topic that does not exist has no entries."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        return {(tp.topic, tp.partition): offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()

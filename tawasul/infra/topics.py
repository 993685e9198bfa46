"""Every Kafka topic Tawasul uses, declared once and created idempotently."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

DAY_MS = 24 * 60 * 60 * 1000


ENV_CONNECT_TIMEOUT = "TAWASUL_KAFKA_CONNECT_TIMEOUT"
"""Seconds a command waits for a Kafka bootstrap server to answer before it gives up (30)."""

FIRST_ATTEMPT_MS = 5000
"""After this long without a connection, the client asks why (refused credentials or TLS are
reported at once) before it waits out the rest of the connect timeout."""


class KafkaUnavailableError(RuntimeError):
    """The Kafka bootstrap servers do not answer."""


class KafkaSettingError(ValueError):
    """A Kafka setting of the environment is not usable."""


class TopicLayoutError(KafkaSettingError):
    """A topic exists with another partition count than Tawasul needs, or fewer replicas."""


class KafkaAccessError(KafkaUnavailableError):
    """The broker answers but refuses this client: wrong credentials, no TLS, an untrusted certificate."""


ENV_REPLICATION_FACTOR = "TAWASUL_KAFKA_REPLICATION_FACTOR"
ENV_MIN_INSYNC_REPLICAS = "TAWASUL_KAFKA_MIN_INSYNC_REPLICAS"


@dataclass(frozen=True)
class Replication:
    """Replicas of every topic Tawasul creates, and how many must confirm a write (`acks=all`)."""

    factor: int
    min_insync: int

    def topic_config(self) -> dict[str, str]:
        return {"min.insync.replicas": str(self.min_insync)}


def _count_setting(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise KafkaSettingError(f"{name}={text!r}: expected a whole number, 1 or more")
    return value


def replication_for(brokers: int, environ: dict[str, str] | None = None) -> Replication:
    """`TAWASUL_KAFKA_REPLICATION_FACTOR` (default 3, or `brokers` when fewer) and
    `TAWASUL_KAFKA_MIN_INSYNC_REPLICAS` (default factor - 1, at least 1)."""
    env = os.environ if environ is None else environ
    factor_text = (env.get(ENV_REPLICATION_FACTOR) or "").strip()
    factor = _count_setting(ENV_REPLICATION_FACTOR, factor_text) if factor_text else max(1, min(3, brokers))
    if factor > brokers:
        raise KafkaSettingError(f"{ENV_REPLICATION_FACTOR}={factor}: the cluster has {brokers} broker(s)")
    isr_text = (env.get(ENV_MIN_INSYNC_REPLICAS) or "").strip()
    min_insync = _count_setting(ENV_MIN_INSYNC_REPLICAS, isr_text) if isr_text else max(1, factor - 1)
    if min_insync > factor:
        raise KafkaSettingError(f"{ENV_MIN_INSYNC_REPLICAS}={min_insync}: more than the replication factor {factor}")
    return Replication(factor, min_insync)


_replication_cache: dict[str, Replication] = {}


def cluster_replication(bootstrap: str) -> Replication:
    """`replication_for` the number of brokers of the cluster at `bootstrap` (asked once per process)."""
    if bootstrap not in _replication_cache:
        admin = _admin(bootstrap, "tawasul-topics")
        try:
            _replication_cache[bootstrap] = _replication(admin)
        finally:
            admin.close()
    return _replication_cache[bootstrap]


def _replication(admin: Any) -> Replication:
    brokers = len(admin.describe_cluster().get("brokers") or ()) or 1
    return replication_for(brokers)


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
    "tawasul.events",
    6,
    {"retention.ms": str(30 * DAY_MS), "cleanup.policy": "delete"},
    "every valid input event; key = subject",
)
DEAD_LETTER = TopicSpec(
    "tawasul.deadletter",
    1,
    {"retention.ms": str(30 * DAY_MS), "cleanup.policy": "delete"},
    "rejected input with the reason and the original bytes",
)
SLA_OUTCOMES = TopicSpec(
    "tawasul.sla.outcomes",
    6,
    {"retention.ms": str(30 * DAY_MS), "cleanup.policy": "delete"},
    "sla.warning / sla.breached / sla.met CloudEvents; key = ticket id",
)
TICKET_STATE = TopicSpec(
    "tawasul.tickets.state",
    6,
    {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
    "each ticket's current SLA state; key = ticket id",
)
SLA_TICKS = TopicSpec(
    "tawasul.sla.ticks",
    6,
    {"retention.ms": str(DAY_MS), "cleanup.policy": "delete"},
    "internal: timer ticks and end-of-input watermarks for the SLA engine, co-partitioned with events",
)
KPI_INPUT = TopicSpec(
    "tawasul.kpis.input",
    1,
    {"retention.ms": str(7 * DAY_MS), "cleanup.policy": "delete"},
    "internal: the KPI events and ticket states funnelled into one partition for the KPI aggregator",
)
KPIS = TopicSpec(
    "tawasul.kpis",
    1,
    {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
    "KPI snapshots; key = figure + window + scope",
)
POLICIES = TopicSpec(
    "tawasul.policies",
    1,
    {"cleanup.policy": "compact"},
    "every SLA policy book a worker or replay ran with (name, SHA-256, YAML); key = SHA-256",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    EVENTS,
    DEAD_LETTER,
    SLA_OUTCOMES,
    SLA_TICKS,
    TICKET_STATE,
    KPI_INPUT,
    KPIS,
    POLICIES,
)


def ensure_topics(bootstrap: str, prefix: str = "", specs: tuple[TopicSpec, ...] = ALL_TOPICS) -> list[str]:
    """Create the missing topics; returns the names created. Safe to call any number of times."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = _admin(bootstrap, "tawasul-topics")
    try:
        replication = _replication(admin)
        _replication_cache[bootstrap] = replication
        existing = set(admin.list_topics())
        wanted = [spec for spec in specs if f"{prefix}{spec.name}" not in existing]
        created: list[str] = []
        for spec in wanted:
            topic = NewTopic(
                name=f"{prefix}{spec.name}",
                num_partitions=spec.partitions,
                replication_factor=replication.factor,
                topic_configs={**replication.topic_config(), **spec.config},
            )
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                continue
        _wait_for_leaders(admin, {f"{prefix}{spec.name}": spec.partitions for spec in wanted})
        _check_partitions(
            admin,
            {f"{prefix}{spec.name}": spec.partitions for spec in specs if f"{prefix}{spec.name}" in existing},
            replication.factor,
        )
        return created
    finally:
        admin.close()


def _check_partitions(admin: Any, expected: dict[str, int], replicas: int = 1) -> None:
    """Raise `TopicLayoutError` when a topic that already existed has another partition count
    than Tawasul's (the SLA ticks are co-partitioned with the events, and the KPI aggregator
    reads one partition), or fewer replicas than `replicas` (losing a broker would lose data)."""
    if not expected:
        return
    described = [topic for topic in admin.describe_topics(list(expected)) if topic.get("error_code") == 0]
    wrong = sorted(
        (topic["name"], len(topic.get("partitions") or ()), expected[topic["name"]])
        for topic in described
        if len(topic.get("partitions") or ()) != expected[topic["name"]]
    )
    if wrong:
        found = ", ".join(f"{name} has {count} partition(s), Tawasul needs {needed}" for name, count, needed in wrong)
        raise TopicLayoutError(
            f"{found}: delete the topic(s) and let Tawasul create them (`tawasul topics create`), "
            "or use another TAWASUL_TOPIC_PREFIX"
        )
    few = sorted(
        (topic["name"], min(len(p.get("replica_nodes") or ()) for p in topic["partitions"]))
        for topic in described
        if topic.get("partitions") and min(len(p.get("replica_nodes") or ()) for p in topic["partitions"]) < replicas
    )
    if few:
        found = ", ".join(f"{name} has {count} replica(s)" for name, count in few)
        raise TopicLayoutError(
            f"{found}, {ENV_REPLICATION_FACTOR} is {replicas}: add replicas "
            "(kafka-reassign-partitions) or delete the topic(s) and let Tawasul create them, "
            f"or set {ENV_REPLICATION_FACTOR} lower"
        )


def _admin(bootstrap: str, client_id: str) -> Any:
    """A `KafkaAdminClient`; raises `KafkaUnavailableError` when no bootstrap server answers."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaConnectionError, KafkaTimeoutError

    from tawasul.infra.kafka_security import collected_client_messages, current, refusal_reason

    security = current()
    total_ms = connect_timeout_ms()
    first_ms = min(total_ms, FIRST_ATTEMPT_MS)
    with collected_client_messages() as messages:
        try:
            return KafkaAdminClient(
                bootstrap_servers=bootstrap,
                client_id=client_id,
                bootstrap_timeout_ms=first_ms,
                **security.kafka_python(),
            )
        except (KafkaTimeoutError, KafkaConnectionError) as exc:
            failure: Exception = exc
    refusal = refusal_reason(bootstrap, security, messages)
    if refusal:
        raise KafkaAccessError(refusal) from failure
    if total_ms > first_ms:  # not refused: a broker still starting, or far away
        try:
            return KafkaAdminClient(
                bootstrap_servers=bootstrap,
                client_id=client_id,
                bootstrap_timeout_ms=total_ms - first_ms,
                **security.kafka_python(),
            )
        except (KafkaTimeoutError, KafkaConnectionError) as exc:
            failure = exc
    raise KafkaUnavailableError(
        f"Kafka at {bootstrap} does not answer ({failure}); start one with `tawasul kafka start`, "
        "or point --kafka / TAWASUL_KAFKA at yours"
    ) from failure


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
        except KafkaError:  # a topic not in the metadata yet: ask again
            described = []
        for topic in described:
            partitions = topic.get("partitions") or []
            if (
                topic.get("error_code") == 0
                and len(partitions) >= waiting.get(topic["name"], 0)
                and all(p.get("leader_id", -1) >= 0 for p in partitions)
            ):
                waiting.pop(topic["name"], None)
        if not waiting:
            return
        if time.monotonic() > give_up:
            raise TopicsNotReadyError(f"topics without a leader after {timeout_s:.0f} s: {', '.join(sorted(waiting))}")
        time.sleep(0.1)


def assignable_partitions(consumer: Any, topics: tuple[str, ...] | list[str], timeout_s: float = 30.0) -> list[Any]:
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

    from tawasul.infra.kafka_security import kafka_python_options

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **kafka_python_options())
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        return {(tp.topic, tp.partition): offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()

"""Local single-node Apache Kafka (KRaft) for development, demos and tests."""

from __future__ import annotations

from tawasul.infra.kafka_local.broker import BrokerLayout, default_home, start, status, stop
from tawasul.infra.kafka_local.errors import BrokerError
from tawasul.infra.kafka_local.java import KAFKA_VERSION

__all__ = ["KAFKA_VERSION", "BrokerError", "BrokerLayout", "default_home", "start", "status", "stop"]

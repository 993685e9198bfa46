"""The broker version pinned in Python and in the Maven pom agree."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from importlib import resources

from tawasul.kafka_local.broker import KAFKA_VERSION


def test_pom_pins_the_same_kafka_version() -> None:
    pom = resources.files("tawasul.kafka_local").joinpath("pom.xml").read_text(encoding="utf-8")
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = ET.fromstring(pom).find("m:properties/m:kafka.version", namespace)
    assert version is not None and version.text == KAFKA_VERSION
    assert KAFKA_VERSION.split(".")[0] == "4"


def test_broker_config_disables_auto_topic_creation() -> None:
    template = resources.files("tawasul.kafka_local").joinpath("server.properties.template").read_text("utf-8")
    settings = dict(line.split("=", 1) for line in template.splitlines() if line and not line.startswith("#"))
    assert settings["auto.create.topics.enable"] == "false"
    assert settings["process.roles"] == "broker,controller"
    assert settings["offsets.topic.replication.factor"] == "1"
    assert settings["transaction.state.log.replication.factor"] == "1"

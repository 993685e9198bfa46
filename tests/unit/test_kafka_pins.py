"""The broker version pinned in Python and in the Maven pom agree."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

from tawasul.infra.kafka_local.broker import KAFKA_VERSION


def test_pom_pins_the_same_kafka_version() -> None:
    pom = resources.files("tawasul.infra.kafka_local").joinpath("pom.xml").read_text(encoding="utf-8")
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = ET.fromstring(pom).find("m:properties/m:kafka.version", namespace)
    assert version is not None and version.text == KAFKA_VERSION
    assert KAFKA_VERSION.split(".")[0] == "4"


def _written_config(tmp_path: Path, **layout: object) -> dict[str, str]:
    from tawasul.infra.kafka_local.broker import BrokerLayout, _write_config

    node = BrokerLayout(home=tmp_path, **layout)  # type: ignore[arg-type]
    _write_config(node)
    text = node.config_file.read_text(encoding="utf-8")
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_broker_config_disables_auto_topic_creation(tmp_path: Path) -> None:
    settings = _written_config(tmp_path)
    assert settings["auto.create.topics.enable"] == "false"
    assert settings["process.roles"] == "broker,controller"
    assert settings["offsets.topic.replication.factor"] == "1"
    assert settings["transaction.state.log.replication.factor"] == "1"
    assert settings["min.insync.replicas"] == "1"
    assert settings["controller.quorum.voters"] == "1@localhost:19093"
    assert settings["listeners"] == "PLAINTEXT://localhost:9092,CONTROLLER://localhost:19093"


def test_a_node_of_three_replicates_internal_topics_three_times_and_knows_every_voter(tmp_path: Path) -> None:
    voters = "1@localhost:29292,2@localhost:29293,3@localhost:29294"
    settings = _written_config(
        tmp_path,
        port=29093,
        controller_port=29293,
        node_id=2,
        voters=voters,
        replicas=3,
        listener="SASL_SSL",
        extra_properties="sasl.enabled.mechanisms=SCRAM-SHA-512\n",
    )
    assert settings["node.id"] == "2"
    assert settings["controller.quorum.voters"] == voters
    assert settings["offsets.topic.replication.factor"] == "3"
    assert settings["transaction.state.log.min.isr"] == "2"
    assert settings["min.insync.replicas"] == "2"
    assert settings["advertised.listeners"] == "SASL_SSL://localhost:29093"
    assert settings["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
    assert settings["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"

"""The shape of a local cluster (`tawasul kafka start --brokers N [--secure]`), without a broker."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tawasul.infra.kafka_local import cluster as local
from tawasul.infra.kafka_local.errors import BrokerError


def test_nodes_are_placed_a_port_step_apart_and_all_vote() -> None:
    plan = local.ClusterPlan(brokers=3)
    assert plan.ports() == [(1, 9092, 19093), (2, 9192, 19193), (3, 9292, 19293)]
    assert plan.bootstrap == "localhost:9092,localhost:9192,localhost:9292"


def test_the_saved_shape_is_used_when_no_flag_says_otherwise(tmp_path: Path) -> None:
    first = local.resolve(tmp_path, brokers=3, port=29092, port_step=1, controller_port=29292)
    local._save(first)
    again = local.resolve(tmp_path)
    assert again.plan == first.plan and again.cluster_id == first.cluster_id
    layouts = again.layouts()
    assert [(node.node_id, node.port, node.controller_port) for node in layouts] == [
        (1, 29092, 29292),
        (2, 29093, 29293),
        (3, 29094, 29294),
    ]
    assert {node.voters for node in layouts} == {"1@localhost:29292,2@localhost:29293,3@localhost:29294"}
    assert {node.replicas for node in layouts} == {3}


def test_another_shape_over_existing_data_is_refused(tmp_path: Path) -> None:
    single = local.resolve(tmp_path, port=29092, controller_port=29292)
    local._save(single)
    (tmp_path / "kafka-data-29092").mkdir()
    (tmp_path / "kafka-data-29092" / "meta.properties").write_text("cluster.id=x\n")
    with pytest.raises(BrokerError) as refused:
        local.resolve(tmp_path, brokers=3)
    assert "holds a 1-node cluster on localhost:29092" in str(refused.value)
    assert local.resolve(tmp_path).plan == single.plan


def test_a_secured_cluster_has_private_secrets_and_prints_its_settings(tmp_path: Path) -> None:
    secured = local.resolve(tmp_path, secure=True, port=29092, controller_port=29292)
    assert secured.secrets is not None
    folder = secured.secrets.folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(secured.secrets.keystore_file.stat().st_mode) == 0o600
    keystore = secured.secrets.keystore_file.read_text(encoding="utf-8")
    assert "BEGIN PRIVATE KEY" in keystore and keystore.count("BEGIN CERTIFICATE") == 2
    node = secured.layouts()[0]
    assert node.listener == "SASL_SSL" and "sasl.enabled.mechanisms=SCRAM-SHA-512" in node.extra_properties
    exports = dict(line.removeprefix("export ").split("=", 1) for line in secured.exports())
    assert exports["TAWASUL_KAFKA"] == "localhost:29092"
    assert exports["TAWASUL_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert exports["TAWASUL_KAFKA_SASL_PASSWORD"].strip("'") == secured.secrets.client_password
    assert secured.secrets.client_password not in repr(secured)
    local._save(secured)  # the same secrets the next time: a restart prints the same settings
    assert local.resolve(tmp_path).secrets == secured.secrets


def test_the_broker_certificate_is_signed_by_the_ca_and_names_localhost(tmp_path: Path) -> None:
    from cryptography import x509

    secured = local.resolve(tmp_path, secure=True)
    assert secured.secrets is not None
    ca = x509.load_pem_x509_certificate(secured.secrets.ca_file.read_bytes())
    chain = x509.load_pem_x509_certificates(
        secured.secrets.keystore_file.read_bytes().split(b"-----END PRIVATE KEY-----\n")[1]
    )
    leaf = chain[0]
    leaf.verify_directly_issued_by(ca)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)

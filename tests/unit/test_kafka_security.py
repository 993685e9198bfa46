"""Client settings for a real cluster: read from the environment, handed to each client library."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from tawasul.infra.kafka_security import KafkaSecurity, refusal_reason
from tawasul.infra.topics import KafkaSettingError, Replication, replication_for

SECRET = "s3cr3t-never-shown"


def _sasl_ssl(cafile: Path | None = None) -> dict[str, str]:
    env = {
        "TAWASUL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "TAWASUL_KAFKA_SASL_USERNAME": "ops",
        "TAWASUL_KAFKA_SASL_PASSWORD": SECRET,
    }
    if cafile is not None:
        env["TAWASUL_KAFKA_SSL_CAFILE"] = str(cafile)
    return env


def test_plaintext_is_the_default_and_adds_nothing_to_faust() -> None:
    security = KafkaSecurity.from_environ({})
    assert security.protocol == "PLAINTEXT" and security.mechanism == "SCRAM-SHA-512"
    assert security.kafka_python() == {"security_protocol": "PLAINTEXT"}
    assert security.aiokafka() == {"security_protocol": "PLAINTEXT"}
    assert security.faust() == {}


def test_sasl_ssl_reaches_every_client_library_alike() -> None:
    security = KafkaSecurity.from_environ({**_sasl_ssl(), "TAWASUL_KAFKA_SASL_MECHANISM": "scram-sha-256"})
    for options in (security.kafka_python(), security.aiokafka()):
        assert options["security_protocol"] == "SASL_SSL"
        assert options["sasl_mechanism"] == "SCRAM-SHA-256"
        assert options["sasl_plain_username"] == "ops" and options["sasl_plain_password"] == SECRET
        assert isinstance(options["ssl_context"], ssl.SSLContext)
        assert options["ssl_context"].check_hostname and options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    credentials = security.faust()["broker_credentials"]
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    faust_options = credentials_to_aiokafka_auth(credentials)
    assert faust_options["security_protocol"] == "SASL_SSL"
    assert faust_options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert faust_options["sasl_plain_password"] == SECRET


def test_tls_alone_gives_faust_ssl_credentials() -> None:
    security = KafkaSecurity.from_environ({"TAWASUL_KAFKA_SECURITY_PROTOCOL": "ssl"})
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    assert credentials_to_aiokafka_auth(security.faust()["broker_credentials"])["security_protocol"] == "SSL"
    assert "sasl_mechanism" not in security.kafka_python()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TAWASUL_KAFKA_SECURITY_PROTOCOL": "TLS"}, "TAWASUL_KAFKA_SECURITY_PROTOCOL='TLS': expected one of"),
        ({"TAWASUL_KAFKA_SASL_MECHANISM": "GSSAPI"}, "TAWASUL_KAFKA_SASL_MECHANISM='GSSAPI': expected one of"),
        (
            {"TAWASUL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "TAWASUL_KAFKA_SASL_USERNAME": "ops"},
            "TAWASUL_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs TAWASUL_KAFKA_SASL_PASSWORD",
        ),
        ({**_sasl_ssl(), "TAWASUL_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "TAWASUL_KAFKA_SSL_CAFILE="),
    ],
)
def test_an_unusable_setting_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(KafkaSettingError) as raised:
        KafkaSecurity.from_environ(env)
    assert named in str(raised.value)
    assert SECRET not in str(raised.value)


def test_the_password_is_not_in_the_repr_nor_the_description() -> None:
    security = KafkaSecurity.from_environ(_sasl_ssl())
    assert SECRET not in repr(security) and SECRET not in security.describe()
    assert SECRET not in repr(security.faust()["broker_credentials"])


def test_refusals_are_named_from_what_the_client_logged() -> None:
    security = KafkaSecurity.from_environ(_sasl_ssl())
    sasl = [
        "Connection lost: [Error 58] SaslAuthenticationFailedError: Authentication failed during "
        "authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
    ]
    reason = refusal_reason("127.0.0.1:1", security, sasl)
    assert reason is not None and "refused SASL user 'ops'" in reason and SECRET not in reason
    untrusted = [
        "Handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed "
        "certificate in certificate chain (_ssl.c:1006)"
    ]
    reason = refusal_reason("127.0.0.1:1", KafkaSecurity("SSL"), untrusted)
    assert reason == (
        "Kafka at 127.0.0.1:1: its TLS certificate is not trusted (self-signed certificate in "
        "certificate chain); set TAWASUL_KAFKA_SSL_CAFILE to the file of the CA that signed it"
    )
    assert refusal_reason("127.0.0.1:1", KafkaSecurity(), ["ECONNREFUSED"]) is None


@pytest.mark.parametrize(
    ("brokers", "env", "expected"),
    [
        (1, {}, Replication(1, 1)),
        (2, {}, Replication(2, 1)),
        (3, {}, Replication(3, 2)),
        (5, {}, Replication(3, 2)),
        (5, {"TAWASUL_KAFKA_REPLICATION_FACTOR": "5"}, Replication(5, 4)),
        (3, {"TAWASUL_KAFKA_MIN_INSYNC_REPLICAS": "3"}, Replication(3, 3)),
    ],
)
def test_replication_defaults_follow_the_cluster(brokers: int, env: dict[str, str], expected: Replication) -> None:
    assert replication_for(brokers, env) == expected
    assert expected.topic_config() == {"min.insync.replicas": str(expected.min_insync)}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TAWASUL_KAFKA_REPLICATION_FACTOR": "4"}, "TAWASUL_KAFKA_REPLICATION_FACTOR=4: the cluster has 3 broker(s)"),
        ({"TAWASUL_KAFKA_REPLICATION_FACTOR": "three"}, "TAWASUL_KAFKA_REPLICATION_FACTOR='three'"),
        ({"TAWASUL_KAFKA_MIN_INSYNC_REPLICAS": "0"}, "TAWASUL_KAFKA_MIN_INSYNC_REPLICAS='0'"),
        ({"TAWASUL_KAFKA_MIN_INSYNC_REPLICAS": "4"}, "more than the replication factor 3"),
    ],
)
def test_impossible_replication_is_refused(env: dict[str, str], named: str) -> None:
    with pytest.raises(KafkaSettingError) as raised:
        replication_for(3, env)
    assert named in str(raised.value)


def test_a_logged_configuration_dict_hides_the_password() -> None:
    security = KafkaSecurity.from_environ(_sasl_ssl())
    for options in (security.kafka_python(), security.aiokafka()):
        assert SECRET not in repr(options) and SECRET not in "%s" % (options,)  # noqa: UP031  # %-formatting is what is checked
        assert options["sasl_plain_password"] == SECRET
        assert options["sasl_plain_password"].encode("utf-8") == SECRET.encode("utf-8")

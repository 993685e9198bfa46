"""The pipeline against `tawasul kafka start --secure` (SASL_SSL, SCRAM-SHA-512 only), driven by
nothing but the environment variables the start printed: the same results as on plaintext;
a wrong password, a client without TLS or one that does not trust the CA is refused in one
line with exit status 3, and the password never shows in a log line."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from schemas import parse_event
from tawasul.domain.period import parse_period
from tawasul.domain.policies import default_policy_path, load_policies
from tawasul.domain.report import build_report
from tawasul.infra.kafka_security import KafkaSecurity
from tawasul.infra.topics import ALL_TOPICS
from tests.faults.conftest import (
    FULL,
    LocalCluster,
    judged_report,
    read_values,
    run_tawasul,
    run_tawasul_shell,
    simulated,
)

pytestmark = pytest.mark.kafka
DAYS = ("2025-03-02", "2025-03-03")


@pytest.fixture(scope="module")
def one_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulated(tmp_path_factory, "secure-day", scale="0.15", days=DAYS)


def _expected(path: Path) -> dict[str, object]:
    events = [parse_event(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
    period = parse_period(*DAYS)
    return build_report(events, period.start, period.end, load_policies(default_policy_path())).to_json()


def test_no_command_line_shows_a_scram_password_while_the_cluster_starts(secure_broker: LocalCluster) -> None:
    """`kafka-storage format --add-scram` gets the users' passwords in an owner-only argument
    file (`java @file`), not on its command line, which `ps` shows to every user."""
    saved = json.loads((secure_broker.home / "secure" / "passwords.json").read_text(encoding="utf-8"))
    passwords = [saved["client"], saved["broker"], secure_broker.env["TAWASUL_KAFKA_SASL_PASSWORD"]]
    seen = secure_broker.command_lines
    formats = [line for line in seen if line.startswith("java @") and ".java-args-" in line]
    assert formats, f"the storage format was not seen among {len(seen)} command lines"
    assert all(len(password) >= 20 for password in passwords)
    showing = [line for line in seen if any(password in line for password in passwords)]
    assert not showing, f"{len(showing)} command lines show a password"


def test_start_prints_only_export_lines_and_eval_is_all_a_user_needs(secure_broker: LocalCluster) -> None:
    env = secure_broker.env
    assert env["TAWASUL_KAFKA"] == secure_broker.bootstrap
    assert env["TAWASUL_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["TAWASUL_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["TAWASUL_KAFKA_SASL_USERNAME"] and len(env["TAWASUL_KAFKA_SASL_PASSWORD"]) >= 20
    assert Path(env["TAWASUL_KAFKA_SSL_CAFILE"]).is_file()
    # run again: a no-op that prints the same settings; a shell's eval of them is all it takes
    script = 'eval "$("$PY" -m tawasul kafka start)" && "$PY" -m tawasul topics create --prefix "$PREFIX"'
    result = run_tawasul_shell(
        script, env={"TAWASUL_HOME": str(secure_broker.home), "PREFIX": f"eval-{uuid.uuid4().hex[:8]}."}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{len(ALL_TOPICS)} topics present, {len(ALL_TOPICS)} created" in result.stdout
    assert "already running" in result.stderr


def test_publish_then_read_back_with_the_printed_settings(secure_broker: LocalCluster, one_day: Path) -> None:
    prefix = f"pub-{uuid.uuid4().hex[:8]}."
    env = {**secure_broker.env, "TAWASUL_TOPIC_PREFIX": prefix}
    published = run_tawasul("publish", str(one_day), env=env)
    assert published.returncode == 0, published.stderr[-3000:]
    security = KafkaSecurity.from_environ(secure_broker.env)
    values = read_values(secure_broker.bootstrap, f"{prefix}tawasul.events", security.kafka_python())
    sent = [json.loads(line)["id"] for line in one_day.read_text(encoding="utf-8").splitlines() if line]
    assert sorted(json.loads(value)["id"] for value in values) == sorted(sent)


@pytest.mark.parametrize("engine", ["batch", "faust"] if FULL else ["faust"])
def test_a_replay_on_the_secured_cluster_equals_the_domain_computation(
    secure_broker: LocalCluster, one_day: Path, tmp_path: Path, engine: str
) -> None:
    db = f"sqlite:///{tmp_path / 'secure.db'}"
    env = {**secure_broker.env, "TAWASUL_DATABASE_URL": db}
    replay = run_tawasul("replay", str(one_day), "--no-progress", "--engine", engine, "--timeout", "300", env=env)
    assert replay.returncode == 0, replay.stderr[-3000:]
    report = run_tawasul("report", "--from", DAYS[0], "--to", DAYS[1], "--format", "json", env=env)
    assert report.returncode == 0, report.stderr[-2000:]
    expected = _expected(one_day)
    assert judged_report(report.stdout) == expected
    assert expected["tickets"]["opened"] > 5  # type: ignore[index]


@pytest.mark.parametrize(
    ("change", "cause"),
    [
        (
            {"TAWASUL_KAFKA_SASL_PASSWORD": "not-the-password"},
            "refused SASL user 'tawasul' (SCRAM-SHA-512): wrong user name or password",
        ),
        ({"TAWASUL_KAFKA_SASL_USERNAME": "intruder"}, "refused SASL user 'intruder'"),
        (
            {"TAWASUL_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
            "expects TLS, this client uses TAWASUL_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT",
        ),
        (
            {"TAWASUL_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
            "expects TLS, this client uses TAWASUL_KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
        ),
        ({"TAWASUL_KAFKA_SSL_CAFILE": ""}, "its TLS certificate is not trusted"),
    ],
)
@pytest.mark.parametrize("command", [["topics", "create"], ["publish", "-"]] if FULL else [["topics", "create"]])
def test_a_refused_client_says_why_in_one_line_with_status_3(
    secure_broker: LocalCluster, change: dict[str, str], cause: str, command: list[str]
) -> None:
    # the first connection attempt lasts at most the connect timeout (then the client asks why)
    result = run_tawasul(
        *command, env={**secure_broker.env, "TAWASUL_KAFKA_CONNECT_TIMEOUT": "3", **change}, timeout=120
    )
    assert result.returncode == 3, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(f"error: Kafka at {secure_broker.bootstrap}")
    assert cause in lines[0]
    assert secure_broker.env["TAWASUL_KAFKA_SASL_PASSWORD"] not in result.stdout + result.stderr


def test_the_password_is_in_no_log_line_even_at_debug_level(secure_broker: LocalCluster, one_day: Path) -> None:
    """The client libraries' own debug logging (which the command line keeps at warning and
    above) and a command at debug level: neither carries the password."""
    import asyncio
    import logging

    from aiokafka import AIOKafkaProducer
    from kafka import KafkaAdminClient

    password = secure_broker.env["TAWASUL_KAFKA_SASL_PASSWORD"]
    security = KafkaSecurity.from_environ(secure_broker.env)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(f"{record.getMessage()} {record.args!r}")

    handler = Keep(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("kafka", "aiokafka")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        admin = KafkaAdminClient(bootstrap_servers=secure_broker.bootstrap, **security.kafka_python())
        assert admin.list_topics() is not None
        admin.close()

        async def produce() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=secure_broker.bootstrap, **security.aiokafka())
            await producer.start()
            await producer.stop()

        asyncio.run(produce())
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
    assert len(records) > 20 and any("SASL" in record or "sasl" in record for record in records)
    assert not [record for record in records if password in record]

    env = {**secure_broker.env, "TAWASUL_TOPIC_PREFIX": f"dbg-{uuid.uuid4().hex[:8]}."}
    published = run_tawasul("--log-level", "debug", "publish", str(one_day), env=env)
    assert published.returncode == 0, published.stderr[-2000:]
    assert password not in published.stdout + published.stderr
    helped = run_tawasul("--help", env=env)
    assert password not in helped.stdout + helped.stderr

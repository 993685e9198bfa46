"""How every Kafka client of Tawasul reaches a real cluster: security protocol, SASL and TLS.

One place reads `TAWASUL_KAFKA_SECURITY_PROTOCOL`, `TAWASUL_KAFKA_SASL_MECHANISM`,
`TAWASUL_KAFKA_SASL_USERNAME`, `TAWASUL_KAFKA_SASL_PASSWORD` and `TAWASUL_KAFKA_SSL_CAFILE`, and
turns them into the keyword arguments of each client library (kafka-python, aiokafka, faust).
The password is never part of a `repr`, a log line or an error message.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

ENV_SECURITY_PROTOCOL = "TAWASUL_KAFKA_SECURITY_PROTOCOL"
ENV_SASL_MECHANISM = "TAWASUL_KAFKA_SASL_MECHANISM"
ENV_SASL_USERNAME = "TAWASUL_KAFKA_SASL_USERNAME"
ENV_SASL_PASSWORD = "TAWASUL_KAFKA_SASL_PASSWORD"
ENV_SSL_CAFILE = "TAWASUL_KAFKA_SSL_CAFILE"

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


class Secret(str):
    """A password: its `repr` (how a library logs its configuration dict) hides it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


def _setting_error(message: str) -> Exception:
    from tawasul.infra.topics import KafkaSettingError

    return KafkaSettingError(message)


@dataclass(frozen=True)
class KafkaSecurity:
    """The client side of a listener's security: what every Kafka client is given."""

    protocol: str = "PLAINTEXT"
    mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: str | None = None

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> KafkaSecurity:
        """The settings of the environment; raises `KafkaSettingError` naming the variable that is
        wrong (never its value when it is the password)."""
        env = os.environ if environ is None else environ
        protocol = (env.get(ENV_SECURITY_PROTOCOL) or "PLAINTEXT").strip().upper()
        if protocol not in PROTOCOLS:
            raise _setting_error(f"{ENV_SECURITY_PROTOCOL}={protocol!r}: expected one of {', '.join(PROTOCOLS)}")
        mechanism = (env.get(ENV_SASL_MECHANISM) or "SCRAM-SHA-512").strip().upper()
        if mechanism not in MECHANISMS:
            raise _setting_error(f"{ENV_SASL_MECHANISM}={mechanism!r}: expected one of {', '.join(MECHANISMS)}")
        username = env.get(ENV_SASL_USERNAME) or None
        password = env.get(ENV_SASL_PASSWORD) or None
        cafile = (env.get(ENV_SSL_CAFILE) or "").strip() or None
        security = cls(protocol, mechanism, username, password, cafile)
        if security.uses_sasl and not (username and password):
            missing = [
                name for name, value in ((ENV_SASL_USERNAME, username), (ENV_SASL_PASSWORD, password)) if not value
            ]
            raise _setting_error(f"{ENV_SECURITY_PROTOCOL}={protocol} needs {' and '.join(missing)}")
        if cafile and security.uses_tls and not os.path.isfile(cafile):
            raise _setting_error(f"{ENV_SSL_CAFILE}={cafile!r}: no such file")
        return security

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS client context trusting `cafile` (else the system's CAs), checking host names."""
        if not self.uses_tls:
            return None
        try:
            return ssl.create_default_context(cafile=self.cafile)
        except (OSError, ssl.SSLError) as exc:
            raise _setting_error(f"{ENV_SSL_CAFILE}={self.cafile!r}: not a usable CA file ({exc})") from exc

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's `KafkaProducer`, `KafkaConsumer`, `KafkaAdminClient`
        (which logs them at debug level: the password is a `Secret`)."""
        return self._client_options()

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's `AIOKafkaProducer`, `AIOKafkaConsumer` (the same names
        as kafka-python's)."""
        return self._client_options()

    def _client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            options.update(
                sasl_mechanism=self.mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=Secret(self.password or ""),
            )
        return options

    def faust(self) -> dict[str, Any]:
        """Keyword arguments for `faust.App` (its `broker_credentials`)."""
        import faust

        if self.uses_sasl:
            return {
                "broker_credentials": faust.SASLCredentials(
                    username=self.username,
                    password=Secret(self.password or ""),
                    ssl_context=self.ssl_context(),
                    mechanism=self.mechanism,
                )
            }
        if self.uses_tls:
            return {"broker_credentials": faust.SSLCredentials(self.ssl_context())}
        return {}

    def describe(self) -> str:
        """The settings without the password, for a log line or an error."""
        parts = [self.protocol]
        if self.uses_sasl:
            parts.append(f"{self.mechanism} user {self.username}")
        if self.uses_tls:
            parts.append(f"CA {self.cafile or 'system'}")
        return ", ".join(parts)


def current() -> KafkaSecurity:
    """The settings of this process's environment."""
    return KafkaSecurity.from_environ()


def kafka_python_options() -> dict[str, Any]:
    """`current().kafka_python()`: spread into every kafka-python client."""
    return current().kafka_python()


def aiokafka_options() -> dict[str, Any]:
    """`current().aiokafka()`: spread into every aiokafka client."""
    return current().aiokafka()


def faust_options() -> dict[str, Any]:
    """`current().faust()`: spread into every `faust.App`."""
    return current().faust()


class _Collect(logging.Handler):
    """Keeps the messages a client library logs while it tries to connect."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def collected_client_messages(logger_name: str = "kafka") -> Iterator[list[str]]:
    """The warnings and errors `logger_name` logs inside the block (for `refusal_reason`), kept
    from the log output: a refused connection is retried many times, and the command says why
    in one line instead."""
    handler = _Collect()
    logger = logging.getLogger(logger_name)
    previous, propagate = logger.level, logger.propagate
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        logger.propagate = propagate


def _speaks_tls(host: str, port: int, timeout_s: float = 3.0) -> bool | None:
    """True when `host:port` completes a TLS handshake (trusted or not), False when it answers
    but not with TLS, None when it cannot be reached."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as raw:
            try:
                with context.wrap_socket(raw, server_hostname=host):
                    return True
            except (ssl.SSLError, OSError):
                return False
    except OSError:
        return None


def _aiokafka_attempt(bootstrap: str, security: KafkaSecurity, timeout_s: float = 5.0) -> list[str]:
    """What aiokafka says when it connects once (it reports a SASL refusal at once, where
    kafka-python often sees only a closed socket): its error and log messages."""
    import asyncio
    import threading

    from aiokafka import AIOKafkaProducer

    found: list[str] = []

    async def attempt() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000), **security.aiokafka()
        )
        try:
            await asyncio.wait_for(producer.start(), timeout_s)
        except Exception as exc:  # noqa: BLE001 - every failure is a finding here
            found.append(f"{type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()

    def run() -> None:
        with contextlib.suppress(Exception):
            asyncio.run(attempt())

    with collected_client_messages("aiokafka") as messages:
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(timeout_s + 5)
    return [*messages, *found]


def refusal_reason(bootstrap: str, security: KafkaSecurity, messages: list[str]) -> str | None:
    """Why the broker at `bootstrap` refused this client, from what the client library logged
    while trying (`messages`), one aiokafka attempt and a TLS probe; None when it looks
    unreachable instead. One line, naming the setting to change; never the password."""
    if security.uses_sasl and not any("SaslAuthenticationFailed" in message for message in messages):
        messages = [*messages, *_aiokafka_attempt(bootstrap, security)]
    text = "\n".join(messages)
    where = f"Kafka at {bootstrap}"
    if "SaslAuthenticationFailed" in text or "Authentication failed" in text:
        return (
            f"{where} refused SASL user {security.username!r} ({security.mechanism}): wrong user name or "
            f"password; check {ENV_SASL_USERNAME} and {ENV_SASL_PASSWORD}"
        )
    if "UnsupportedSaslMechanism" in text:
        return f"{where} does not offer SASL mechanism {security.mechanism}: set {ENV_SASL_MECHANISM}"
    verify = re.search(r"certificate verify failed: ([^(\]\n]+)", text)
    if verify or "CERTIFICATE_VERIFY_FAILED" in text:
        detail = verify.group(1).strip() if verify else "verify failed"
        return (
            f"{where}: its TLS certificate is not trusted ({detail}); set {ENV_SSL_CAFILE} "
            "to the file of the CA that signed it"
        )
    mismatch = re.search(r"(Hostname mismatch|IP address mismatch)[^\n]*", text)
    if mismatch:
        return f"{where}: its TLS certificate does not name this host ({mismatch.group(0)[:160]})"
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    if not port.isdigit():
        return None
    tls = _speaks_tls(host or "localhost", int(port))
    if tls is True and not security.uses_tls:
        return (
            f"{where} expects TLS, this client uses {ENV_SECURITY_PROTOCOL}={security.protocol}: "
            "set it to SSL or SASL_SSL"
        )
    if tls is False and security.uses_tls:
        return (
            f"{where} does not speak TLS, this client uses {ENV_SECURITY_PROTOCOL}={security.protocol}: "
            "set it to PLAINTEXT or SASL_PLAINTEXT"
        )
    if tls is False and not security.uses_sasl and "broker_version=(" in text and "disconnected" in text:
        return (
            f"{where} closes the connection after the version handshake: it probably requires SASL; "
            f"set {ENV_SECURITY_PROTOCOL}=SASL_PLAINTEXT (or SASL_SSL) with a user and password"
        )
    return None

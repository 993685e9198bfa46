"""How every Kafka client of Tawasul reaches a real cluster: security protocol, SASL and TLS.

One place reads `TAWASUL_KAFKA_SECURITY_PROTOCOL`, `TAWASUL_KAFKA_SASL_MECHANISM`,
`TAWASUL_KAFKA_SASL_USERNAME`, `TAWASUL_KAFKA_SASL_PASSWORD` and `TAWASUL_KAFKA_SSL_CAFILE`, and
turns them into the keyword arguments of each client library (kafka-python, aiokafka, faust).
The password is never part of a `repr`, a log line or an error message.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import Any

ENV_SECURITY_PROTOCOL = "TAWASUL_KAFKA_SECURITY_PROTOCOL"
ENV_SASL_MECHANISM = "TAWASUL_KAFKA_SASL_MECHANISM"
ENV_SASL_USERNAME = "TAWASUL_KAFKA_SASL_USERNAME"
ENV_SASL_PASSWORD = "TAWASUL_KAFKA_SASL_PASSWORD"
ENV_SSL_CAFILE = "TAWASUL_KAFKA_SSL_CAFILE"

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


def _setting_error(message: str) -> Exception:
    from tawasul.topics import KafkaSettingError

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
            missing = [name for name, value in ((ENV_SASL_USERNAME, username), (ENV_SASL_PASSWORD, password))
                       if not value]
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
        """Keyword arguments for kafka-python's `KafkaProducer`, `KafkaConsumer`, `KafkaAdminClient`."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            options.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                           sasl_plain_password=self.password)
        return options

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's `AIOKafkaProducer`, `AIOKafkaConsumer`."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            options.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                           sasl_plain_password=self.password)
        return options

    def faust(self) -> dict[str, Any]:
        """Keyword arguments for `faust.App` (its `broker_credentials`)."""
        import faust

        if self.uses_sasl:
            return {"broker_credentials": faust.SASLCredentials(
                username=self.username, password=self.password, ssl_context=self.ssl_context(),
                mechanism=self.mechanism)}
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

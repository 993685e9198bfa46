"""The secrets of a secured local cluster: a CA, a broker certificate it signed, SCRAM users.

Made once per `TAWASUL_HOME` with Python's `cryptography` and kept under `<home>/secure/`
(readable by the owner only); the broker reads the PEM files directly (`ssl.keystore.type=PEM`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

CLIENT_USER = "tawasul"
BROKER_USER = "tawasul-broker"
"""The inter-broker SCRAM user (the brokers talk to each other over SASL_SSL too)."""


@dataclass(frozen=True)
class Secrets:
    """Paths of the PEM files and the SCRAM passwords of one secured local cluster."""

    folder: Path
    client_password: str = field(repr=False)
    broker_password: str = field(repr=False)

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def keystore_file(self) -> Path:
        """The broker's private key (PKCS#8) and certificate chain, in one PEM file."""
        return self.folder / "broker-keystore.pem"


def ensure_secrets(home: Path, host: str = "localhost") -> Secrets:
    """The secrets of `home`, made the first time (CA, broker certificate, random passwords)."""
    folder = home / "secure"
    passwords_file = folder / "passwords.json"
    if passwords_file.exists():
        saved = json.loads(passwords_file.read_text(encoding="utf-8"))
        found = Secrets(folder, saved["client"], saved["broker"])
        if found.ca_file.exists() and found.keystore_file.exists():
            return found
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    made = Secrets(folder, secrets.token_urlsafe(24), secrets.token_urlsafe(24))
    _write_certificates(made, host)
    _write_private(passwords_file, json.dumps({"client": made.client_password, "broker": made.broker_password}))
    return made


def _write_private(path: Path, text: str | bytes) -> None:
    data = text.encode("utf-8") if isinstance(text, str) else text
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_certificates(made: Secrets, host: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tawasul local Kafka CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    broker_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.DNSName(host),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    broker_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(broker_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(list(dict.fromkeys(names))), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    made.ca_file.write_bytes(ca_cert.public_bytes(pem))
    _write_private(
        made.keystore_file,
        broker_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + broker_cert.public_bytes(pem)
        + ca_cert.public_bytes(pem),
    )


def broker_properties(made: Secrets) -> str:
    """The TLS and SASL lines of a secured broker's server.properties."""
    jaas = (
        f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{BROKER_USER}" '
        f'password="{made.broker_password}";'
    )
    return "\n".join(
        [
            "# Secured: SASL_SSL with SCRAM-SHA-512 only (written by `tawasul kafka start --secure`).",
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={made.keystore_file}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={made.ca_file}",
            "ssl.client.auth=none",
            "",
        ]
    )


def scram_format_arguments(made: Secrets) -> list[str]:
    """`kafka-storage format` arguments creating both SCRAM users."""
    return [
        "--add-scram",
        f"SCRAM-SHA-512=[name={BROKER_USER},password={made.broker_password}]",
        "--add-scram",
        f"SCRAM-SHA-512=[name={CLIENT_USER},password={made.client_password}]",
    ]

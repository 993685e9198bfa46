"""The policy book a worker or a replay runs with, published to `tawasul.policies` for the sink.

One message per book and start: key = the book's SHA-256, value = JSON
`{"name": file name, "sha256": hex, "yaml": the text, "used_at": RFC 3339, "used_by": "worker"|"replay"}`.
The SLA outcomes and ticket states the book produces carry the same hash (`policies_sha256`),
so the sink can tell, for every stored figure, which book decided it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tawasul.domain.errors import PolicyError
from tawasul.domain.policies import PolicyBook, load_policies_text, policies_sha256
from tawasul.infra.kafka_security import kafka_python_options
from tawasul.infra.settings import Settings
from tawasul.infra.topics import POLICIES

__all__ = ["PolicyFile", "publish_policy_book", "read_policy_file"]


@dataclass(frozen=True)
class PolicyFile:
    """A policy file as read: its name, YAML text and hash, and the validated book."""

    name: str
    text: str
    sha256: str
    book: PolicyBook

    def message(self, used_by: str, used_at: datetime) -> tuple[bytes, bytes]:
        """(key, value) of its `tawasul.policies` message."""
        body = {
            "name": self.name,
            "sha256": self.sha256,
            "yaml": self.text,
            "used_at": used_at.isoformat(),
            "used_by": used_by,
        }
        return self.sha256.encode(), json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def read_policy_file(path: str | Path) -> PolicyFile:
    """Read and validate a policy file (raises `PolicyError` naming what is wrong)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {str(path)!r}: {exc.strerror}") from exc
    return PolicyFile(Path(path).name, text, policies_sha256(text), load_policies_text(text))


def publish_policy_book(settings: Settings, used_by: str, *, now: datetime | None = None) -> PolicyFile:
    """Publish the book of `settings` to the run's `tawasul.policies` topic and wait for Kafka."""
    from kafka import KafkaProducer

    policy = read_policy_file(settings.policies_path)
    key, value = policy.message(used_by, now or datetime.now(UTC))
    producer = KafkaProducer(bootstrap_servers=settings.kafka, acks="all", **kafka_python_options())
    try:
        producer.send(settings.topic(POLICIES.name), key=key, value=value).get(timeout=30)
    finally:
        producer.close()
    return policy

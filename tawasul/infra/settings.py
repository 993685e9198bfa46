"""Runtime settings: flags, then `TAWASUL_*` environment variables, then defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_KAFKA = "localhost:9092"
DEFAULT_DATABASE_URL = "sqlite:///tawasul.db"

ENV_KAFKA = "TAWASUL_KAFKA"
ENV_DATABASE_URL = "TAWASUL_DATABASE_URL"
ENV_POLICIES = "TAWASUL_POLICIES"
ENV_TOPIC_PREFIX = "TAWASUL_TOPIC_PREFIX"


def default_policies_path() -> Path:
    """The SLA policy file shipped with the project."""
    from importlib import resources

    return Path(str(resources.files("tawasul.policies").joinpath("default.yaml")))


@dataclass(frozen=True)
class Settings:
    """Where Tawasul finds Kafka, its database and its SLA policies."""

    kafka: str = DEFAULT_KAFKA
    database_url: str = DEFAULT_DATABASE_URL
    policies: Path | None = None
    topic_prefix: str = ""

    @classmethod
    def resolve(
        cls,
        *,
        kafka: str | None = None,
        database_url: str | None = None,
        policies: str | Path | None = None,
        topic_prefix: str | None = None,
        environ: dict[str, str] | None = None,
    ) -> Settings:
        """Flags win over the environment, the environment over the defaults."""
        env = dict(os.environ if environ is None else environ)
        policy_value = policies if policies is not None else env.get(ENV_POLICIES)
        return cls(
            kafka=kafka or env.get(ENV_KAFKA) or DEFAULT_KAFKA,
            database_url=database_url or env.get(ENV_DATABASE_URL) or DEFAULT_DATABASE_URL,
            policies=Path(policy_value) if policy_value else None,
            topic_prefix=topic_prefix if topic_prefix is not None else env.get(ENV_TOPIC_PREFIX, ""),
        )

    @property
    def policies_path(self) -> Path:
        return self.policies or default_policies_path()

    def with_prefix(self, prefix: str) -> Settings:
        return replace(self, topic_prefix=prefix)

    def topic(self, name: str) -> str:
        """The full name of a topic for this run (`prefix` + name)."""
        return f"{self.topic_prefix}{name}"

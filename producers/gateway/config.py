"""Per-channel adapter credentials for the gateway, read from a YAML secrets file.

```yaml
rate_limit: {per_second: 50, burst: 100}      # optional default of every adapter
adapters:
  - name: pbx-main
    token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    sources: ["/channels/pbx"]
    event_types: ["call.*"]
  - name: crm
    hmac_secret_env: TAWASUL_CRM_HMAC_SECRET
    sources: ["/channels/crm"]
    event_types: ["ticket.*", "survey.submitted"]
    channels: ["crm"]
    rate_limit: {per_second: 20, burst: 40}
```

Bearer tokens are stored only as their SHA-256 (hex); HMAC secrets are given inline
(`hmac_secret`) or, better, named by an environment variable (`hmac_secret_env`).
Permissions: `producers.gateway.permissions`; rate limits: `producers.gateway.ratelimit`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from producers.gateway.permissions import PERMISSION_KEYS, PermissionConfigError, Permissions, parse_permissions
from producers.gateway.ratelimit import DEFAULT_RATE_LIMIT, RateLimit, RateLimitConfigError, parse_rate_limit

ENV_SECRETS = "TAWASUL_GATEWAY_SECRETS"
MIN_HMAC_SECRET_BYTES = 16

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_ADAPTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ADAPTER_KEYS = frozenset(
    {"name", "token_sha256", "hmac_secret", "hmac_secret_env", "sources", "rate_limit"} | PERMISSION_KEYS
)
_DOCUMENT_KEYS = frozenset({"adapters", "rate_limit"})


class GatewayConfigError(Exception):
    """The secrets file is missing, malformed or names an unset environment variable."""


def token_hash(token: str) -> str:
    """The lowercase hex SHA-256 of a bearer token, as stored in the secrets file."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Adapter:
    """One channel adapter: its name, its credentials, what it may send and how often."""

    name: str
    token_sha256: str | None = field(default=None, repr=False)
    hmac_secret: bytes | None = field(default=None, repr=False)
    sources: tuple[str, ...] = ()
    permissions: Permissions = Permissions()
    rate_limit: RateLimit = DEFAULT_RATE_LIMIT

    def allows_source(self, source: str) -> bool:
        """True when `source` is one of the allowed prefixes or lies below one (path-segment wise).

        `/channels/pbx` allows `/channels/pbx` and `/channels/pbx/main`, not `/channels/pbx-test`.
        No `sources` means any source.
        """
        if not self.sources:
            return True
        for prefix in self.sources:
            if source == prefix:
                return True
            base = prefix if prefix.endswith("/") else prefix + "/"
            if source.startswith(base):
                return True
        return False


@dataclass(frozen=True)
class AdapterRegistry:
    """Every configured adapter, by name."""

    adapters: tuple[Adapter, ...]

    def __post_init__(self) -> None:
        names = [adapter.name for adapter in self.adapters]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise GatewayConfigError(f"adapter names must be unique: {', '.join(duplicates)}")
        hashes = [a.token_sha256 for a in self.adapters if a.token_sha256 is not None]
        if len(hashes) != len(set(hashes)):
            raise GatewayConfigError("two adapters share one bearer token: give each adapter its own")

    def __iter__(self) -> Iterator[Adapter]:
        return iter(self.adapters)

    def __len__(self) -> int:
        return len(self.adapters)

    def get(self, name: str) -> Adapter | None:
        for adapter in self.adapters:
            if adapter.name == name:
                return adapter
        return None


def _adapter(entry: object, position: int, environ: Mapping[str, str], default_limit: RateLimit) -> Adapter:
    where = f"adapters[{position}]"
    if not isinstance(entry, dict):
        raise GatewayConfigError(f"{where}: must be a mapping")
    unknown = sorted(set(map(str, entry)) - _ADAPTER_KEYS)
    if unknown:
        raise GatewayConfigError(
            f"{where}: unknown keys {', '.join(unknown)} (allowed: {', '.join(sorted(_ADAPTER_KEYS))})"
        )
    name = entry.get("name")
    if not isinstance(name, str) or not _ADAPTER_NAME.match(name):
        raise GatewayConfigError(f"{where}.name: must be 1-64 letters, digits, '.', '_' or '-'")
    where = f"adapter {name!r}"
    try:
        permissions = parse_permissions(entry, where)
        rate_limit = parse_rate_limit(entry.get("rate_limit"), f"{where}.rate_limit", default_limit)
    except (PermissionConfigError, RateLimitConfigError) as exc:
        raise GatewayConfigError(str(exc)) from None
    return Adapter(
        name=name,
        token_sha256=_token_sha256(entry.get("token_sha256"), where),
        hmac_secret=_hmac_secret(entry, where, environ),
        sources=_sources(entry.get("sources"), where),
        permissions=permissions,
        rate_limit=rate_limit,
    )


def _token_sha256(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _SHA256_HEX.match(value.strip().lower()):
        raise GatewayConfigError(f"{where}.token_sha256: must be 64 hex digits (the SHA-256 of the token)")
    return value.strip().lower()


def _hmac_secret(entry: Mapping[str, Any], where: str, environ: Mapping[str, str]) -> bytes | None:
    inline, variable = entry.get("hmac_secret"), entry.get("hmac_secret_env")
    if inline is not None and variable is not None:
        raise GatewayConfigError(f"{where}: give hmac_secret or hmac_secret_env, not both")
    if variable is not None:
        if not isinstance(variable, str) or not variable:
            raise GatewayConfigError(f"{where}.hmac_secret_env: must name an environment variable")
        inline = environ.get(variable)
        if not inline:
            raise GatewayConfigError(f"{where}.hmac_secret_env: environment variable {variable} is not set")
        label = f"environment variable {variable}"
    else:
        label = f"{where}.hmac_secret"
    if inline is None:
        return None
    if not isinstance(inline, str):
        raise GatewayConfigError(f"{label}: must be a string")
    secret = inline.encode("utf-8")
    if len(secret) < MIN_HMAC_SECRET_BYTES:
        raise GatewayConfigError(f"{label}: an HMAC secret needs at least {MIN_HMAC_SECRET_BYTES} bytes")
    return secret


def _sources(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise GatewayConfigError(f"{where}.sources: must be a list of non-empty source prefixes")
    return tuple(item.strip() for item in value)


def parse_secrets(document: object, environ: Mapping[str, str] | None = None) -> AdapterRegistry:
    """The adapters of a decoded secrets document (`{"adapters": [...]}`)."""
    env = os.environ if environ is None else environ
    if not isinstance(document, dict) or "adapters" not in document or not set(document) <= _DOCUMENT_KEYS:
        raise GatewayConfigError(
            "the secrets file must be a mapping with the key `adapters` (and optionally `rate_limit`)"
        )
    entries = document["adapters"]
    if not isinstance(entries, list) or not entries:
        raise GatewayConfigError("adapters: must be a non-empty list")
    try:
        default_limit = parse_rate_limit(document.get("rate_limit"), "rate_limit")
    except RateLimitConfigError as exc:
        raise GatewayConfigError(str(exc)) from None
    adapters = tuple(_adapter(entry, position, env, default_limit) for position, entry in enumerate(entries))
    for adapter in adapters:
        if adapter.token_sha256 is None and adapter.hmac_secret is None:
            raise GatewayConfigError(f"adapter {adapter.name!r}: needs token_sha256 or an HMAC secret")
    return AdapterRegistry(adapters)


def load_secrets(path: str | Path, environ: Mapping[str, str] | None = None) -> AdapterRegistry:
    """Read and check a secrets file; raises GatewayConfigError naming what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise GatewayConfigError(f"cannot read the secrets file {path}: {exc.strerror or exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        # The parser's own message quotes the offending text, which may be a secret: not repeated.
        raise GatewayConfigError(f"the secrets file {path} is not valid YAML{line}") from None
    return parse_secrets(document, environ)

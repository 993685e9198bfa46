"""The authenticated HTTP ingest endpoint (`tawasul gateway`, contract section 5).

```python
from producers.gateway import load_secrets, signature_headers
from producers.gateway.app import GatewayOptions, create_app
adapters = load_secrets("secrets.yaml")       # credentials, permissions and rate limits per adapter
app = create_app(settings, adapters, options=GatewayOptions(), pseudonymiser=pseudonymiser)
headers = signature_headers("crm", secret, body)   # what a client sends with a signed body
```

The click command is `producers.gateway.cli:gateway`; docs/gateway.md describes the protocol.
"""

from __future__ import annotations

from producers.gateway.auth import (
    Authenticator,
    AuthError,
    Credentials,
    sign,
    signature_headers,
)
from producers.gateway.config import Adapter, AdapterRegistry, GatewayConfigError, load_secrets, parse_secrets
from producers.gateway.permissions import Permissions
from producers.gateway.ratelimit import RateLimit, RateLimiter
from producers.gateway.replay import DatabaseReplayStore, ReplayStoreError, ReplayStoreFull, ReplayStoreUnavailable

__all__ = [
    "Adapter",
    "AdapterRegistry",
    "AuthError",
    "Authenticator",
    "Credentials",
    "DatabaseReplayStore",
    "GatewayConfigError",
    "Permissions",
    "RateLimit",
    "RateLimiter",
    "ReplayStoreError",
    "ReplayStoreFull",
    "ReplayStoreUnavailable",
    "load_secrets",
    "parse_secrets",
    "sign",
    "signature_headers",
]

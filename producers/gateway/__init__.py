"""The authenticated HTTP ingest endpoint (`tawasul gateway`, contract section 5).

```python
from producers.gateway import load_secrets, Authenticator, GatewayOptions, create_app
adapters = load_secrets("secrets.yaml")          # per-channel bearer-token hashes and HMAC secrets
app = create_app(settings, adapters, publisher=publisher, pseudonymiser=pseudonymiser)
```
"""

from __future__ import annotations

from producers.gateway.auth import (
    AuthError,
    Authenticator,
    Credentials,
    ReplayCache,
    ReplayCacheFull,
    sign,
    signature_headers,
)
from producers.gateway.config import Adapter, AdapterRegistry, GatewayConfigError, load_secrets, parse_secrets

__all__ = [
    "Adapter",
    "AdapterRegistry",
    "AuthError",
    "Authenticator",
    "Credentials",
    "GatewayConfigError",
    "ReplayCache",
    "ReplayCacheFull",
    "load_secrets",
    "parse_secrets",
    "sign",
    "signature_headers",
]

"""Gateway credentials for tests, made fresh for every test run (nothing secret is committed).

`SECRETS` is a secrets file written for this run: bearer tokens stored as SHA-256 hashes, the
CRM HMAC secret inline, the mosques HMAC secret read from `TAWASUL_TEST_MOSQUES_SECRET`.
Permissions: the PBX may send `call.*` only; the CRM tickets and surveys of the `crm` and
`complaints_platform` channels; `mosques` states none (an older file: anything, with a warning);
`surveys` (`SURVEYS_TOKEN`) surveys of the `web` channel, at most 0.2 requests/s, burst 5.
"""

from __future__ import annotations

import hashlib
import secrets
import tempfile
from pathlib import Path

import yaml

PBX_TOKEN = f"pbx-{secrets.token_hex(16)}"
CRM_TOKEN = f"crm-{secrets.token_hex(16)}"
CRM_SECRET = f"crm-hmac-{secrets.token_hex(16)}".encode()
MOSQUES_SECRET = f"mosques-hmac-{secrets.token_hex(16)}"
SURVEYS_TOKEN = f"surveys-{secrets.token_hex(16)}"
SURVEYS_RATE = {"per_second": 0.2, "burst": 5}


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write_secrets_file(path: Path) -> Path:
    """The gateway secrets file for the credentials above."""
    document = {
        "adapters": [
            {
                "name": "pbx-main",
                "token_sha256": _sha256(PBX_TOKEN),
                "sources": ["/channels/pbx"],
                "event_types": ["call.*"],
            },
            {
                "name": "crm",
                "token_sha256": _sha256(CRM_TOKEN),
                "hmac_secret": CRM_SECRET.decode(),
                "sources": ["/channels/crm", "/channels/complaints"],
                "event_types": ["ticket.*", "survey.submitted"],
                "channels": ["crm", "complaints_platform"],
            },
            {"name": "mosques", "hmac_secret_env": "TAWASUL_TEST_MOSQUES_SECRET"},
            {
                "name": "surveys",
                "token_sha256": _sha256(SURVEYS_TOKEN),
                "event_types": ["survey.submitted"],
                "channels": ["web"],
                "rate_limit": SURVEYS_RATE,
            },
        ]
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


SECRETS = write_secrets_file(Path(tempfile.mkdtemp(prefix="tawasul-gateway-test-")) / "secrets.yaml")

"""Test-only gateway credentials: the tokens and HMAC secrets whose hashes/values are in
`tests/data/gateway/secrets.yaml`. Never used anywhere but in tests."""

from __future__ import annotations

from pathlib import Path

SECRETS = Path(__file__).resolve().parents[1] / "data" / "gateway" / "secrets.yaml"
PBX_TOKEN = "pbx-test-token-0123456789abcdef"
CRM_TOKEN = "crm-test-token-0123456789abcdef"
CRM_SECRET = b"crm-test-hmac-secret-0123456789abcdef"
MOSQUES_SECRET = "mosques-test-secret-0123456789"

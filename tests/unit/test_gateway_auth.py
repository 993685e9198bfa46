"""Gateway authentication without a server: secrets file, bearer tokens, HMAC signatures, replays."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from multidict import CIMultiDict

from producers.gateway import (
    Adapter,
    AdapterRegistry,
    AuthError,
    Authenticator,
    GatewayConfigError,
    ReplayCache,
    ReplayCacheFull,
    load_secrets,
    parse_secrets,
    sign,
    signature_headers,
)
from producers.gateway.ingest import evaluate
from producers.intake import Rejected
from tests.support.gateway_credentials import CRM_SECRET, CRM_TOKEN, MOSQUES_SECRET, PBX_TOKEN, SECRETS

NOW = 1_750_000_000.0
BODY = b'{"specversion":"1.0","id":"e-1"}'


class Clock:
    """A settable clock for the authenticator."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def adapters() -> AdapterRegistry:
    return load_secrets(SECRETS, environ={"TAWASUL_TEST_MOSQUES_SECRET": MOSQUES_SECRET})


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def auth(adapters: AdapterRegistry, clock: Clock) -> Authenticator:
    return Authenticator(adapters, clock=clock)


def code_of(auth: Authenticator, headers: dict[str, str], body: bytes = BODY) -> str:
    with pytest.raises(AuthError) as caught:
        auth.authenticate(CIMultiDict(headers), body)
    return caught.value.code


# --- secrets file -------------------------------------------------------------------------------


def test_secrets_file_loads_every_adapter(adapters: AdapterRegistry) -> None:
    assert [a.name for a in adapters] == ["pbx-main", "crm", "mosques"]
    pbx, crm, mosques = adapters
    assert pbx.token_sha256 == hashlib.sha256(PBX_TOKEN.encode()).hexdigest()
    assert pbx.hmac_secret is None and pbx.sources == ("/channels/pbx",)
    assert crm.hmac_secret == CRM_SECRET and crm.sources == ("/channels/crm", "/channels/complaints")
    assert mosques.hmac_secret == MOSQUES_SECRET.encode() and mosques.token_sha256 is None and mosques.sources == ()


def test_secrets_never_appear_in_repr(adapters: AdapterRegistry) -> None:
    text = repr(adapters)
    assert CRM_SECRET.decode() not in text and MOSQUES_SECRET not in text
    assert adapters.get("pbx-main").token_sha256 not in text  # type: ignore[union-attr]


def test_secret_from_an_unset_environment_variable_is_an_error() -> None:
    with pytest.raises(GatewayConfigError, match="TAWASUL_TEST_MOSQUES_SECRET is not set"):
        load_secrets(SECRETS, environ={})


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"adapters": []}, "non-empty list"),
        ({"adapters": [{"name": "a"}]}, "needs token_sha256 or an HMAC secret"),
        ({"adapters": [{"name": "a", "token_sha256": "abc"}]}, "64 hex digits"),
        ({"adapters": [{"name": "a", "hmac_secret": "short"}]}, "at least 16 bytes"),
        ({"adapters": [{"name": "a", "hmac_secret": "x" * 20, "hmac_secret_env": "V"}]}, "not both"),
        ({"adapters": [{"name": "a", "token": "x"}]}, "unknown keys token"),
        ({"adapters": [{"name": "a b", "hmac_secret": "x" * 20}]}, "name"),
        ({"adapters": [{"name": "a", "hmac_secret": "x" * 20, "sources": [""]}]}, "sources"),
        ({"adapters": [{"name": "a", "hmac_secret": "x" * 20}, {"name": "a", "hmac_secret": "y" * 20}]}, "unique"),
        ({"adapters": [{"name": "a", "token_sha256": "0" * 64}, {"name": "b", "token_sha256": "0" * 64}]}, "share"),
        ({"clients": []}, "one key, `adapters`"),
    ],
)
def test_malformed_secrets_are_refused_with_a_reason(document: object, message: str) -> None:
    with pytest.raises(GatewayConfigError, match=message):
        parse_secrets(document, environ={})


def test_invalid_yaml_is_reported_without_quoting_the_file(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_text("adapters:\n  - name: a\n    hmac_secret: 'do-not-print-me\n", encoding="utf-8")
    with pytest.raises(GatewayConfigError) as caught:
        load_secrets(path, environ={})
    assert "not valid YAML" in str(caught.value) and "do-not-print-me" not in str(caught.value)


def test_source_prefixes_match_whole_path_segments(adapters: AdapterRegistry) -> None:
    pbx = adapters.get("pbx-main")
    assert pbx is not None
    assert pbx.allows_source("/channels/pbx")
    assert pbx.allows_source("/channels/pbx/main")
    assert not pbx.allows_source("/channels/pbx-test")
    assert not pbx.allows_source("/channels/crm/main")
    assert Adapter("any", hmac_secret=b"x" * 16).allows_source("/anything/at/all")


# --- bearer tokens ------------------------------------------------------------------------------


def test_good_bearer_token_names_its_adapter(auth: Authenticator) -> None:
    credentials = auth.authenticate(CIMultiDict({"Authorization": f"Bearer {PBX_TOKEN}"}), BODY)
    assert credentials.adapter.name == "pbx-main" and credentials.method == "bearer"
    credentials = auth.authenticate(CIMultiDict({"authorization": f"bearer {CRM_TOKEN}"}), BODY)
    assert credentials.adapter.name == "crm"


def test_bad_bearer_token_is_refused(auth: Authenticator) -> None:
    assert code_of(auth, {"Authorization": f"Bearer {PBX_TOKEN}x"}) == "bad_token"
    assert code_of(auth, {"Authorization": "Bearer " + hashlib.sha256(PBX_TOKEN.encode()).hexdigest()}) == "bad_token"


def test_malformed_or_missing_credentials_are_refused(auth: Authenticator) -> None:
    assert code_of(auth, {}) == "missing"
    assert code_of(auth, {"Authorization": f"Basic {PBX_TOKEN}"}) == "malformed"
    assert code_of(auth, {"Authorization": "Bearer "}) == "malformed"


def test_token_and_signature_together_are_ambiguous(auth: Authenticator) -> None:
    headers = {"Authorization": f"Bearer {CRM_TOKEN}", **signature_headers("crm", CRM_SECRET, BODY, int(NOW))}
    assert code_of(auth, headers) == "ambiguous"


# --- HMAC signatures ----------------------------------------------------------------------------


def test_good_signature_names_its_adapter(auth: Authenticator) -> None:
    credentials = auth.authenticate(CIMultiDict(signature_headers("crm", CRM_SECRET, BODY, int(NOW))), BODY)
    assert credentials.adapter.name == "crm" and credentials.method == "hmac"


def test_signature_scheme_is_hmac_of_timestamp_dot_body() -> None:
    expected = hmac.new(CRM_SECRET, b"1750000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(CRM_SECRET, 1_750_000_000, BODY) == f"sha256={expected}"


def test_uppercase_hex_signature_is_accepted(auth: Authenticator) -> None:
    headers = signature_headers("crm", CRM_SECRET, BODY, int(NOW))
    headers["X-Tawasul-Signature"] = "sha256=" + headers["X-Tawasul-Signature"][7:].upper()
    assert auth.authenticate(CIMultiDict(headers), BODY).adapter.name == "crm"


def test_signature_over_another_body_or_secret_is_refused(auth: Authenticator) -> None:
    assert code_of(auth, signature_headers("crm", CRM_SECRET, BODY + b" ", int(NOW))) == "bad_signature"
    assert code_of(auth, signature_headers("crm", b"wrong-secret-0123456789", BODY, int(NOW))) == "bad_signature"
    other_time = signature_headers("crm", CRM_SECRET, BODY, int(NOW))
    other_time["X-Tawasul-Timestamp"] = str(int(NOW) + 1)
    assert code_of(auth, other_time) == "bad_signature"


def test_signature_for_an_unknown_adapter_is_refused(auth: Authenticator) -> None:
    assert code_of(auth, signature_headers("nobody", CRM_SECRET, BODY, int(NOW))) == "unknown_adapter"
    # pbx-main has a bearer token only: it cannot sign
    assert code_of(auth, signature_headers("pbx-main", CRM_SECRET, BODY, int(NOW))) == "unknown_adapter"


def test_incomplete_or_malformed_signature_headers_are_refused(auth: Authenticator) -> None:
    good = signature_headers("crm", CRM_SECRET, BODY, int(NOW))
    without_timestamp = {k: v for k, v in good.items() if k != "X-Tawasul-Timestamp"}
    assert code_of(auth, without_timestamp) == "malformed"
    assert code_of(auth, {**good, "X-Tawasul-Timestamp": "1750000000.5"}) == "malformed"
    assert code_of(auth, {**good, "X-Tawasul-Signature": good["X-Tawasul-Signature"][7:]}) == "malformed"


@pytest.mark.parametrize("offset", [-301, 301, -3600, 86_400])
def test_stale_timestamp_is_refused(auth: Authenticator, offset: int) -> None:
    stamp = int(NOW) + offset
    assert code_of(auth, signature_headers("crm", CRM_SECRET, BODY, stamp)) == "stale"


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamp_within_five_minutes_is_accepted(auth: Authenticator, offset: int) -> None:
    headers = signature_headers("crm", CRM_SECRET, BODY, int(NOW) + offset)
    assert auth.authenticate(CIMultiDict(headers), BODY).adapter.name == "crm"


def test_replayed_signature_is_refused_until_it_goes_stale(auth: Authenticator, clock: Clock) -> None:
    headers = signature_headers("crm", CRM_SECRET, BODY, int(NOW))
    assert auth.authenticate(CIMultiDict(headers), BODY).adapter.name == "crm"
    assert code_of(auth, headers) == "replayed"
    clock.now = NOW + 299
    assert code_of(auth, headers) == "replayed"
    clock.now = NOW + 301
    assert code_of(auth, headers) == "stale"
    # the same body signed again with a fresh timestamp is a new request
    fresh = signature_headers("crm", CRM_SECRET, BODY, int(clock.now))
    assert auth.authenticate(CIMultiDict(fresh), BODY).adapter.name == "crm"


def test_refused_signatures_do_not_fill_the_replay_cache(auth: Authenticator) -> None:
    code_of(auth, signature_headers("crm", b"wrong-secret-0123456789", BODY, int(NOW)))
    code_of(auth, signature_headers("crm", CRM_SECRET, BODY, int(NOW) - 3600))
    assert len(auth.replay_cache) == 0


def test_env_secret_adapter_signs_too(auth: Authenticator) -> None:
    headers = signature_headers("mosques", MOSQUES_SECRET.encode(), BODY, int(NOW))
    assert auth.authenticate(CIMultiDict(headers), BODY).adapter.name == "mosques"


def test_a_released_signature_may_be_sent_again(auth: Authenticator) -> None:
    headers = CIMultiDict(signature_headers("crm", CRM_SECRET, BODY, int(NOW)))
    credentials = auth.authenticate(headers, BODY)
    auth.release(credentials)  # the request was answered 503 before anything was processed
    assert auth.authenticate(headers, BODY).adapter.name == "crm"
    assert code_of(auth, dict(headers)) == "replayed"


# --- allowed sources ----------------------------------------------------------------------------


def _event(event_id: str, source: str) -> dict[str, object]:
    return {"specversion": "1.0", "id": event_id, "source": source, "type": "ticket.acknowledged",
            "time": "2025-05-13T08:00:00+04:00", "subject": "T-1", "data": {}}


def test_events_from_a_source_the_adapter_may_not_use_are_rejected(adapters: AdapterRegistry) -> None:
    crm = adapters.get("crm")
    assert crm is not None
    batch = [_event("a", "/channels/crm/main"), _event("b", "/channels/pbx/main"),
             _event("c", "/channels/complaints"), _event("d", "/channels/crm-shadow")]
    items = evaluate(json.dumps(batch).encode(), "batch", crm, "req-1", None)
    assert [(item.index, item.event_id, item.accepted) for item in items] == [
        (0, "a", True), (1, "b", False), (2, "c", True), (3, "d", False),
    ]
    refused = items[1].outcome
    assert isinstance(refused, Rejected)
    assert refused.reason == "source: not allowed for adapter crm (allowed: /channels/crm, /channels/complaints)"
    assert refused.origin == "http:req-1#1"
    assert json.loads(refused.letter.original) == batch[1]


def test_an_adapter_without_sources_may_send_any_source(adapters: AdapterRegistry) -> None:
    mosques = adapters.get("mosques")
    assert mosques is not None
    [item] = evaluate(json.dumps(_event("a", "/anything")).encode(), "single", mosques, "req-2", None)
    assert item.accepted and item.event_id == "a"


# --- replay cache -------------------------------------------------------------------------------


def test_replay_cache_forgets_expired_entries_and_stays_bounded() -> None:
    cache = ReplayCache(max_entries=2)
    assert cache.remember("a", expires_at=10.0, now=0.0)
    assert not cache.remember("a", expires_at=10.0, now=5.0)
    assert cache.remember("b", expires_at=20.0, now=5.0)
    with pytest.raises(ReplayCacheFull):
        cache.remember("c", expires_at=20.0, now=6.0)
    assert not cache.remember("a", expires_at=10.0, now=10.0)  # still inside its window
    assert cache.remember("c", expires_at=30.0, now=10.5)  # "a" expired and made room
    assert len(cache) == 2
    with pytest.raises(ReplayCacheFull):
        cache.remember("a", expires_at=40.0, now=10.5)
    assert cache.remember("a", expires_at=40.0, now=20.5)  # "b" expired
    assert not cache.remember("c", expires_at=30.0, now=20.5)


def test_full_replay_cache_fails_closed_in_the_authenticator(adapters: AdapterRegistry, clock: Clock) -> None:
    auth = Authenticator(adapters, clock=clock, replay_cache=ReplayCache(max_entries=1))
    auth.authenticate(CIMultiDict(signature_headers("crm", CRM_SECRET, BODY, int(NOW))), BODY)
    with pytest.raises(ReplayCacheFull):
        auth.authenticate(CIMultiDict(signature_headers("crm", CRM_SECRET, BODY, int(NOW) - 1)), BODY)

"""Gateway authentication without a server: secrets file, bearer tokens, HMAC signatures, replays
(in a real SQLite table), permissions and rate limits."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from multidict import CIMultiDict

from producers.gateway import (
    Adapter,
    AdapterRegistry,
    Authenticator,
    AuthError,
    Credentials,
    DatabaseReplayStore,
    GatewayConfigError,
    Permissions,
    RateLimit,
    RateLimiter,
    ReplayStoreFull,
    load_secrets,
    parse_secrets,
    sign,
    signature_headers,
)
from producers.gateway.ingest import evaluate
from producers.gateway.ratelimit import retry_after_header
from producers.intake import Rejected
from sinks.db.engine import make_engine
from sinks.db.models import GatewayNonce
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
def store(tmp_path: Path) -> Iterator[DatabaseReplayStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'nonces.db'}")
    GatewayNonce.__table__.create(engine)
    replay_store = DatabaseReplayStore(engine, owns_engine=True)
    yield replay_store
    replay_store.close()


@pytest.fixture
def auth(adapters: AdapterRegistry, clock: Clock, store: DatabaseReplayStore) -> Authenticator:
    return Authenticator(adapters, replay_store=store, clock=clock)


def accept(auth: Authenticator, headers: Mapping[str, str], body: bytes = BODY) -> Credentials:
    """Authenticate and claim the signature, as the gateway does; raises AuthError."""
    credentials = auth.authenticate(CIMultiDict(headers), body)
    auth.claim(credentials)
    return credentials


def code_of(auth: Authenticator, headers: Mapping[str, str], body: bytes = BODY) -> str:
    with pytest.raises(AuthError) as caught:
        accept(auth, headers, body)
    return caught.value.code


# --- secrets file -------------------------------------------------------------------------------


def test_secrets_file_loads_every_adapter(adapters: AdapterRegistry) -> None:
    assert [a.name for a in adapters] == ["pbx-main", "crm", "mosques", "surveys"]
    pbx, crm, mosques, surveys = adapters
    assert pbx.token_sha256 == hashlib.sha256(PBX_TOKEN.encode()).hexdigest()
    assert pbx.hmac_secret is None and pbx.sources == ("/channels/pbx",)
    assert crm.hmac_secret == CRM_SECRET and crm.sources == ("/channels/crm", "/channels/complaints")
    assert mosques.hmac_secret == MOSQUES_SECRET.encode() and mosques.token_sha256 is None and mosques.sources == ()
    assert pbx.permissions == Permissions(event_types=("call.*",), channels=(), implicit=False)
    assert crm.permissions == Permissions(("ticket.*", "survey.submitted"), ("crm", "complaints_platform"), False)
    assert mosques.permissions == Permissions() and mosques.permissions.implicit
    assert surveys.rate_limit == RateLimit(0.2, 5) and pbx.rate_limit == RateLimit(50.0, 100)


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
        ({"clients": []}, "the key `adapters`"),
        ({"adapters": [{"name": "a", "hmac_secret": "x" * 20}], "extra": 1}, "the key `adapters`"),
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
    assert accept(auth, headers).adapter.name == "crm"
    assert code_of(auth, headers) == "replayed"
    clock.now = NOW + 299
    assert code_of(auth, headers) == "replayed"
    clock.now = NOW + 301
    assert code_of(auth, headers) == "stale"
    # the same body signed again with a fresh timestamp is a new request
    fresh = signature_headers("crm", CRM_SECRET, BODY, int(clock.now))
    assert accept(auth, fresh).adapter.name == "crm"


def test_refused_signatures_do_not_fill_the_replay_store(auth: Authenticator, store: DatabaseReplayStore) -> None:
    code_of(auth, signature_headers("crm", b"wrong-secret-0123456789", BODY, int(NOW)))
    code_of(auth, signature_headers("crm", CRM_SECRET, BODY, int(NOW) - 3600))
    assert len(store) == 0
    accept(auth, {"Authorization": f"Bearer {CRM_TOKEN}"})  # bearer requests have no signature to keep
    assert len(store) == 0


def test_env_secret_adapter_signs_too(auth: Authenticator) -> None:
    headers = signature_headers("mosques", MOSQUES_SECRET.encode(), BODY, int(NOW))
    assert auth.authenticate(CIMultiDict(headers), BODY).adapter.name == "mosques"


def test_a_released_signature_may_be_sent_again(auth: Authenticator) -> None:
    headers = signature_headers("crm", CRM_SECRET, BODY, int(NOW))
    credentials = accept(auth, headers)
    auth.release(credentials)  # the request was answered 503 before anything was processed
    assert accept(auth, headers).adapter.name == "crm"
    assert code_of(auth, headers) == "replayed"


# --- allowed sources ----------------------------------------------------------------------------


def _event(event_id: str, source: str) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": "ticket.acknowledged",
        "time": "2025-05-13T08:00:00+04:00",
        "subject": "T-1",
        "data": {},
    }


def test_events_from_a_source_the_adapter_may_not_use_are_rejected(adapters: AdapterRegistry) -> None:
    crm = adapters.get("crm")
    assert crm is not None
    batch = [
        _event("a", "/channels/crm/main"),
        _event("b", "/channels/pbx/main"),
        _event("c", "/channels/complaints"),
        _event("d", "/channels/crm-shadow"),
    ]
    items = evaluate(json.dumps(batch).encode(), "batch", crm, "req-1", None)
    assert [(item.index, item.event_id, item.accepted) for item in items] == [
        (0, "a", True),
        (1, "b", False),
        (2, "c", True),
        (3, "d", False),
    ]
    refused = items[1].outcome
    assert isinstance(refused, Rejected)
    assert refused.reason == "source: not allowed for adapter crm (allowed: /channels/crm, /channels/complaints)"
    assert refused.category == "forbidden" and items[1].forbidden and not items[0].forbidden
    assert refused.origin == "http:req-1#1"
    assert json.loads(refused.letter.original) == batch[1]


def test_an_adapter_without_sources_may_send_any_source(adapters: AdapterRegistry) -> None:
    mosques = adapters.get("mosques")
    assert mosques is not None
    [item] = evaluate(json.dumps(_event("a", "/anything")).encode(), "single", mosques, "req-2", None)
    assert item.accepted and item.event_id == "a"


# --- permissions --------------------------------------------------------------------------------


def _typed(
    event_id: str, event_type: str, data: dict[str, object], source: str = "/channels/crm/main"
) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type,
        "time": "2025-05-13T08:00:00+04:00",
        "subject": "S-1",
        "data": data,
    }


OPENED = {"kind": "complaint", "category": "roads.potholes", "priority": "normal"}


def test_an_adapter_may_send_only_its_event_types_and_channels(adapters: AdapterRegistry) -> None:
    pbx, crm = adapters.get("pbx-main"), adapters.get("crm")
    assert pbx is not None and crm is not None
    batch = [
        _typed("a", "call.offered", {"queue": "general"}, "/channels/pbx/main"),
        _typed("b", "ticket.closed", {}, "/channels/pbx/main"),  # the PBX closing a ticket
        _typed("c", "survey.submitted", {"channel": "call", "score": 5, "scale": 5}, "/channels/pbx/main"),
    ]
    items = evaluate(json.dumps(batch).encode(), "batch", pbx, "req-3", None)
    assert [(item.accepted, item.forbidden) for item in items] == [(True, False), (False, True), (False, True)]
    assert items[1].outcome.reason == "type: 'ticket.closed' is not allowed for adapter pbx-main (allowed: call.*)"  # type: ignore[union-attr]
    batch = [
        _typed("d", "ticket.opened", {"channel": "crm", **OPENED}),
        _typed("e", "ticket.opened", {"channel": "walk_in", **OPENED}),
        _typed("f", "survey.submitted", {"channel": "complaints_platform", "score": 1, "scale": 5}),
        _typed("g", "call.offered", {"queue": "general"}),
        _typed("h", "ticket.closed", {}),
    ]
    items = evaluate(json.dumps(batch).encode(), "batch", crm, "req-4", None)
    assert [item.accepted for item in items] == [True, False, True, False, True]
    assert items[1].outcome.reason == (  # type: ignore[union-attr]
        "data.channel: 'walk_in' is not allowed for adapter crm (allowed: crm, complaints_platform)"
    )
    assert items[3].outcome.reason.startswith("type: 'call.offered' is not allowed for adapter crm")  # type: ignore[union-attr]
    assert json.loads(items[1].outcome.letter.original)["id"] == "e"  # type: ignore[union-attr]


def test_type_prefixes_match_whole_families() -> None:
    permissions = Permissions(event_types=("call.*", "visit.checked_in"), channels=(), implicit=False)
    assert permissions.allows_type("call.ended") and permissions.allows_type("visit.checked_in")
    assert not permissions.allows_type("visit.called") and not permissions.allows_type("callx.offered")
    assert Permissions().allows_type("ticket.closed")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"event_types": ["ticket.deleted"]}, "'ticket.deleted' is not an input event type"),
        ({"event_types": ["sla.breached"]}, "'sla.breached' is not an input event type"),
        ({"event_types": ["*"]}, "use `allow: all`"),
        ({"event_types": ["parcel.*"]}, "'parcel.*' matches no input event type"),
        ({"event_types": []}, "non-empty list"),
        ({"event_types": ["ticket.*"]}, "channels: required because event_types allows ticket.opened"),
        ({"event_types": ["ticket.*"], "channels": ["fax"]}, "unknown channel 'fax'"),
        ({"channels": ["crm"]}, "channels: needs event_types too"),
        ({"allow": "everything"}, "the only value is `all`"),
        ({"allow": "all", "event_types": ["call.*"]}, "cannot be combined"),
        ({"rate_limit": {"per_second": 0}}, "rate_limit.per_second: must be a positive number"),
        ({"rate_limit": {"burst": 1.5}}, "rate_limit.burst: must be a whole number"),
        ({"rate_limit": {"rps": 3}}, "rate_limit: unknown keys rps"),
        ({"rate_limit": 10}, "rate_limit: must be a mapping"),
    ],
)
def test_malformed_permissions_and_rate_limits_stop_the_gateway(entry: dict[str, object], message: str) -> None:
    with pytest.raises(GatewayConfigError, match=re.escape(message)):
        parse_secrets({"adapters": [{"name": "a", "hmac_secret": "x" * 20, **entry}]}, environ={})


def test_permission_forms_that_load() -> None:
    registry = parse_secrets(
        {
            "rate_limit": {"per_second": 5},
            "adapters": [
                {"name": "legacy", "hmac_secret": "x" * 20, "allow": "all"},
                {"name": "calls", "hmac_secret": "y" * 20, "event_types": "call.*", "rate_limit": {"burst": 2}},
                {"name": "tickets", "hmac_secret": "z" * 20, "event_types": ["ticket.closed"]},  # no channel field
                {"name": "any-channel", "hmac_secret": "w" * 20, "event_types": ["ticket.*"], "channels": "all"},
            ],
        },
        environ={},
    )
    legacy, calls, tickets, any_channel = registry
    assert legacy.permissions == Permissions(implicit=False)
    assert calls.permissions.event_types == ("call.*",) and calls.rate_limit == RateLimit(5.0, 2)
    assert tickets.permissions.event_types == ("ticket.closed",) and legacy.rate_limit == RateLimit(5.0, 100)
    assert any_channel.permissions.channels is None


# --- rate limits --------------------------------------------------------------------------------


def test_token_bucket_allows_a_burst_then_the_sustained_rate(clock: Clock) -> None:
    limiter = RateLimiter([("pbx", RateLimit(per_second=2.0, burst=3)), ("crm", RateLimit(1.0, 1))], clock=clock)
    assert [limiter.take("pbx") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("pbx")
    assert wait == pytest.approx(0.5) and retry_after_header(wait) == "1"
    assert limiter.take("crm") == 0.0  # buckets are per adapter
    clock.now += 0.5
    assert limiter.take("pbx") == 0.0 and limiter.take("pbx") > 0
    limiter.refund("pbx")  # a replayed request gives its token back
    assert limiter.take("pbx") == 0.0
    clock.now += 60
    assert [limiter.take("pbx") for _ in range(3)] == [0.0, 0.0, 0.0]  # refills up to burst only
    assert limiter.take("pbx") > 0
    assert retry_after_header(2.01) == "3"


# --- replay store -------------------------------------------------------------------------------


def test_replay_store_purges_expired_rows_and_fails_closed_when_full(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'nonces.db'}")
    GatewayNonce.__table__.create(engine)
    store = DatabaseReplayStore(engine, max_entries=2, purge_every_s=10.0, grace_s=5.0, owns_engine=True)
    try:
        assert store.claim("a", expires_at=10.0, now=0.0)
        assert not store.claim("a", expires_at=10.0, now=5.0)
        assert store.claim("b", expires_at=20.0, now=5.0)
        assert store.claim("c", expires_at=30.0, now=6.0)  # no purge due yet: 3 held
        with pytest.raises(ReplayStoreFull):
            store.claim("d", expires_at=40.0, now=12.0)  # the purge at 12 counts 3 >= 2: fail closed
        assert len(store) == 3  # nothing was forgotten to make room
        assert store.purge(now=26.0) == 2  # a (10) and b (20) expired over 5 s ago
        assert len(store) == 1
        assert store.claim("d", expires_at=40.0, now=26.0)
        assert not store.claim("c", expires_at=30.0, now=26.0)
    finally:
        store.close()


def test_a_replay_is_found_in_the_database_not_only_in_memory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nonces.db'}"
    first = DatabaseReplayStore(make_engine(url), owns_engine=True)
    GatewayNonce.__table__.create(first.engine)
    second = DatabaseReplayStore(make_engine(url), owns_engine=True)  # another gateway process
    try:
        assert first.claim("k", expires_at=NOW + 300, now=NOW)
        assert not second.claim("k", expires_at=NOW + 300, now=NOW + 1)
        first.release("k")
        assert second.claim("k", expires_at=NOW + 300, now=NOW + 2)
        assert not first.claim("k", expires_at=NOW + 300, now=NOW + 3)
    finally:
        first.close()
        second.close()

"""Request authentication: bearer tokens or HMAC-SHA256 body signatures, with replay protection.

A request carries either `Authorization: Bearer <token>` (the token's SHA-256 is looked up among
the adapters) or the three headers

    X-Tawasul-Adapter:   <adapter name>
    X-Tawasul-Timestamp: <unix seconds>
    X-Tawasul-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

A signature whose timestamp is more than `tolerance_s` away from now is stale; a signature
already accepted within that window is a replay (`claim`, kept in the database by
`producers.gateway.replay`). Every secret comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from producers.gateway.config import Adapter, AdapterRegistry, token_hash
from producers.gateway.replay import DatabaseReplayStore

HEADER_ADAPTER = "X-Tawasul-Adapter"
HEADER_TIMESTAMP = "X-Tawasul-Timestamp"
HEADER_SIGNATURE = "X-Tawasul-Signature"
DEFAULT_TOLERANCE_S = 300.0

AuthCode = Literal[
    "missing",
    "malformed",
    "ambiguous",
    "bad_token",
    "unknown_adapter",
    "bad_signature",
    "stale",
    "replayed",
]

_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^sha256=([0-9a-fA-F]{64})$")
_BEARER = re.compile(r"^[Bb][Ee][Aa][Rr][Ee][Rr] +(\S+) *$")


class AuthError(Exception):
    """The request is not authenticated; `code` says why (for logs and metrics), str() for the client."""

    def __init__(self, code: AuthCode, message: str) -> None:
        self.code: AuthCode = code
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class Credentials:
    """Who sent an authenticated request, and how it proved it."""

    adapter: Adapter
    method: Literal["bearer", "hmac"]
    replay_key: str | None = None
    """The signature's entry in the replay store (signed requests only)."""
    replay_expires_at: float = 0.0
    """When the signature leaves the tolerance window (unix seconds): its entry may go then."""


def sign(secret: bytes, timestamp: int | str, body: bytes) -> str:
    """The `X-Tawasul-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    message = f"{timestamp}.".encode("ascii") + body
    return "sha256=" + hmac.new(secret, message, hashlib.sha256).hexdigest()


def signature_headers(adapter: str, secret: bytes, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three signature headers for a request body (timestamp = now unless given)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {HEADER_ADAPTER: adapter, HEADER_TIMESTAMP: str(stamp), HEADER_SIGNATURE: sign(secret, stamp, body)}


class Authenticator:
    """Checks a request's headers and body against the configured adapters."""

    def __init__(
        self,
        adapters: AdapterRegistry,
        *,
        replay_store: DatabaseReplayStore,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.adapters = adapters
        self.tolerance_s = tolerance_s
        self.replay_store = replay_store
        self._clock = clock

    def authenticate(self, headers: Mapping[str, str], body: bytes) -> Credentials:
        """The sender's verified credentials (fast, no I/O); raises AuthError (401).

        A signed request is not yet protected against replay: `claim` it next.
        """
        lowered = {name.lower(): value for name, value in headers.items()}
        authorization = lowered.get("authorization")
        signed = any(h.lower() in lowered for h in (HEADER_ADAPTER, HEADER_TIMESTAMP, HEADER_SIGNATURE))
        if authorization is not None and signed:
            raise AuthError("ambiguous", "send either a bearer token or a signature, not both")
        if authorization is not None:
            return self._bearer(authorization)
        if signed:
            return self._signature(
                lowered.get(HEADER_ADAPTER.lower(), ""),
                lowered.get(HEADER_TIMESTAMP.lower(), ""),
                lowered.get(HEADER_SIGNATURE.lower(), ""),
                body,
            )
        raise AuthError("missing", "credentials required: a bearer token or an HMAC signature")

    def _bearer(self, authorization: str) -> Credentials:
        match = _BEARER.match(authorization)
        if match is None:
            raise AuthError("malformed", "the Authorization header must be `Bearer <token>`")
        digest = token_hash(match.group(1))
        found: Adapter | None = None
        for adapter in self.adapters:  # no early exit: the time taken does not depend on which one matches
            if adapter.token_sha256 is not None and hmac.compare_digest(adapter.token_sha256, digest):
                found = adapter
        if found is None:
            raise AuthError("bad_token", "the bearer token is not valid")
        return Credentials(found, "bearer")

    def _signature(self, name: str, timestamp: str, signature: str, body: bytes) -> Credentials:
        if not name or not timestamp or not signature:
            raise AuthError(
                "malformed",
                f"a signed request needs {HEADER_ADAPTER}, {HEADER_TIMESTAMP} and {HEADER_SIGNATURE}",
            )
        if not _TIMESTAMP.match(timestamp):
            raise AuthError("malformed", f"{HEADER_TIMESTAMP} must be unix seconds (digits only)")
        given = _SIGNATURE.match(signature)
        if given is None:
            raise AuthError("malformed", f"{HEADER_SIGNATURE} must be `sha256=<64 hex digits>`")
        adapter = self.adapters.get(name)
        if adapter is None or adapter.hmac_secret is None:
            raise AuthError("unknown_adapter", "the signature does not verify")
        expected = sign(adapter.hmac_secret, timestamp, body)
        received = "sha256=" + given.group(1).lower()
        if not hmac.compare_digest(expected.encode("ascii"), received.encode("ascii")):
            raise AuthError("bad_signature", "the signature does not verify")
        now = self._clock()
        stamp = int(timestamp)
        if abs(now - stamp) > self.tolerance_s:
            raise AuthError(
                "stale",
                f"the timestamp is more than {int(self.tolerance_s)} seconds away from the server's clock",
            )
        key = hashlib.sha256(f"{adapter.name}:{received}".encode("ascii")).hexdigest()
        return Credentials(adapter, "hmac", key, stamp + self.tolerance_s)

    def claim(self, credentials: Credentials) -> None:
        """Record a signed request's signature as used (blocking: a database write).

        Raises AuthError("replayed") when it was used already (on any gateway instance sharing
        the database), ReplayStoreError (503) when that cannot be decided.
        """
        if credentials.replay_key is None:
            return
        if not self.replay_store.claim(credentials.replay_key, credentials.replay_expires_at, self._clock()):
            raise AuthError("replayed", "this signature was already used")

    def release(self, credentials: Credentials) -> None:
        """Forget a signed request's signature: call it when the request was refused before any processing."""
        if credentials.replay_key is not None:
            self.replay_store.release(credentials.replay_key)

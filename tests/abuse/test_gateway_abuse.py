"""1,000 hostile requests against the real `tawasul gateway` process on the real broker.

Bad and stale signatures, malformed credentials, replays before and after a gateway restart,
oversized and malformed bodies, other content types, event types and channels an adapter may
not send, and a flood over an adapter's rate limit: every one is refused with its status and
nothing of it reaches `tawasul.events` (the topic is read back), while valid requests sent at
the same time are all served. The valid requests' latency is printed (the bound here is
generous; `bench/bench_gateway_abuse.py` measures it against the 200 ms goal).

`TAWASUL_ABUSE_REQUESTS` sets the number of hostile requests (default 1,000).
`run_scenario` is shared with the bench.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from producers.gateway import signature_headers
from tawasul.infra.deadletter import decode_dead_letter
from tawasul.infra.topics import DEAD_LETTER, EVENTS, ensure_topics
from tests.integration.test_gateway import Answer, free_port, request_at, wait_for_topics
from tests.support.kafka import read_all, unique

REPO = Path(__file__).resolve().parents[2]
SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
LIMIT = 8192
FLOOD_BURST = 5
HOSTILE_REQUESTS = int(os.environ.get("TAWASUL_ABUSE_REQUESTS", "1000"))
P99_BOUND_S = 5.0
"""Generous: the suite shares 2 cores with other jobs. The goal (200 ms) is the bench's."""
SHARES = {  # of the hostile requests; replay_after runs after the restart
    "bad_signature": 12,
    "stale": 10,
    "bad_credentials": 10,
    "replay_before": 12,
    "replay_after": 12,
    "oversized": 8,
    "malformed": 10,
    "content_type": 2,
    "forbidden": 12,
    "flood": 12,
}
EXPECTED = {
    "bad_signature": 401,
    "stale": 401,
    "bad_credentials": 401,
    "replay_before": 401,
    "replay_after": 401,
    "oversized": 413,
    "malformed": 400,
    "content_type": 415,
    "forbidden": 403,
    "flood": 429,
}


@dataclass(frozen=True)
class Keys:
    """Fresh credentials of one run: a signing CRM, a PBX with a token, a rate-limited survey tool."""

    crm_secret: bytes = field(default_factory=lambda: f"crm-{secrets.token_hex(16)}".encode())
    crm_token: str = field(default_factory=lambda: f"crm-{secrets.token_hex(16)}")
    pbx_token: str = field(default_factory=lambda: f"pbx-{secrets.token_hex(16)}")
    flood_token: str = field(default_factory=lambda: f"flood-{secrets.token_hex(16)}")

    def secrets_document(self) -> dict[str, Any]:
        def sha(token: str) -> str:
            return hashlib.sha256(token.encode()).hexdigest()

        roomy = {"per_second": 10_000, "burst": 10_000}
        return {
            "adapters": [
                {
                    "name": "crm",
                    "token_sha256": sha(self.crm_token),
                    "hmac_secret": self.crm_secret.decode(),
                    "sources": ["/channels/crm"],
                    "event_types": ["ticket.*", "survey.submitted"],
                    "channels": ["crm"],
                    "rate_limit": roomy,
                },
                {
                    "name": "pbx-main",
                    "token_sha256": sha(self.pbx_token),
                    "sources": ["/channels/pbx"],
                    "event_types": ["call.*"],
                    "rate_limit": roomy,
                },
                {
                    "name": "flood",
                    "token_sha256": sha(self.flood_token),
                    "event_types": ["survey.submitted"],
                    "channels": ["web"],
                    "rate_limit": {"per_second": 0.001, "burst": FLOOD_BURST},
                },
            ]
        }


def ticket(
    event_id: str, event_type: str = "ticket.opened", channel: str = "crm", source: str = "/channels/crm/main"
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if event_type == "ticket.opened":
        data = {"channel": channel, "kind": "complaint", "category": "roads.potholes", "priority": "normal"}
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type,
        "time": "2025-05-13T08:00:00+04:00",
        "subject": f"T-{event_id}",
        "data": data,
    }


def call(event_id: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/channels/pbx/main",
        "type": "call.offered",
        "time": "2025-05-13T08:00:00+04:00",
        "subject": f"C-{event_id}",
        "data": {"queue": "general"},
    }


def survey(event_id: str, channel: str = "web") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/channels/survey",
        "type": "survey.submitted",
        "time": "2025-05-13T08:00:00+04:00",
        "subject": f"T-{event_id}",
        "data": {"channel": channel, "score": 4, "scale": 5},
    }


def encode(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class GatewayProcess:
    """`tawasul gateway` in its own process on a free loopback port; stopped with SIGTERM."""

    def __init__(self, env: dict[str, str], secrets_path: Path, log_path: Path, log_level: str = "warning") -> None:
        self.port = free_port()
        code = (
            f"from tawasul.infra.logs import configure_logging; configure_logging({log_level!r}); "
            "from producers.gateway.cli import gateway; gateway()"
        )
        self.log = log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                code,
                "--port",
                str(self.port),
                "--secrets",
                str(secrets_path),
                "--max-body-bytes",
                str(LIMIT),
                "--require-permissions",
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, f"the gateway exited: {log_path.read_text()[-2000:]}"
            try:
                if request_at(self.port, "GET", "/healthz").status == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, "the gateway did not become healthy"
            time.sleep(0.2)

    def request(
        self, method: str, path: str, body: bytes | Iterator[bytes] = b"", headers: dict[str, str] | None = None
    ) -> Answer:
        return request_at(self.port, method, path, body, headers)

    def post(self, body: bytes | Iterator[bytes], content_type: str = SINGLE, **headers: str) -> Answer:
        return self.request("POST", "/v1/events", body, {"Content-Type": content_type, **headers})

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            assert self.process.wait(60) == 0
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.log.close()


@dataclass
class Outcome:
    kind: str
    answer: Answer


@dataclass
class Results:
    hostile: list[Outcome] = field(default_factory=list)
    valid: list[tuple[str, Answer, float]] = field(default_factory=list)
    """(event id, answer, seconds) of every valid request."""
    metrics_before_restart: str = ""

    def latencies_ms(self) -> list[float]:
        return sorted(seconds * 1000 for _, _, seconds in self.valid)


def percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


class Scenario:
    """The requests of one run and what they used (signed valid requests are replayed later)."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self.signed: list[tuple[bytes, dict[str, str]]] = []
        self._counter = 0
        self._lock = threading.Lock()

    def next_id(self, prefix: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{prefix}-{self._counter}"

    # --- valid traffic --------------------------------------------------------------------------

    def valid(self, gateway: GatewayProcess) -> tuple[str, Answer, float]:
        """One valid request: a signed CRM ticket or a PBX call with its bearer token, in turn."""
        event_id = self.next_id("V")
        started = time.perf_counter()
        if int(event_id.split("-")[1]) % 2:
            body = encode(ticket(event_id))
            headers = signature_headers("crm", self.keys.crm_secret, body)
            answer = gateway.post(body, **headers)
            with self._lock:
                self.signed.append((body, headers))
        else:
            answer = gateway.post(encode(call(event_id)), Authorization=f"Bearer {self.keys.pbx_token}")
        return event_id, answer, time.perf_counter() - started

    # --- hostile traffic ------------------------------------------------------------------------

    def hostile(self, kind: str, n: int) -> Callable[[GatewayProcess], Answer]:
        keys = self.keys
        body = encode(ticket(self.next_id("H")))
        crm = {"Authorization": f"Bearer {keys.crm_token}"}
        if kind == "bad_signature":
            secret = b"not-the-crm-secret-0123456789" if n % 2 else keys.crm_secret
            headers = signature_headers("crm", secret, body if n % 2 else body + b" ")
            return lambda gw: gw.post(body, **headers)
        if kind == "stale":  # signed when sent, at least 30 s beyond the 300 s tolerance, either way
            offset = (330 + n) * (1 if n % 2 else -1) if n % 3 else -86_400
            return lambda gw: gw.post(
                body, **signature_headers("crm", keys.crm_secret, body, int(time.time()) + offset)
            )
        if kind == "bad_credentials":
            variants: list[dict[str, str]] = [
                {},
                {"Authorization": f"Bearer {keys.crm_token}x"},
                {"Authorization": f"Basic {keys.crm_token}"},
                signature_headers("nobody", keys.crm_secret, body),
                {**crm, **signature_headers("crm", keys.crm_secret, body)},
                {"X-Tawasul-Adapter": "crm", "X-Tawasul-Timestamp": "yesterday", "X-Tawasul-Signature": "sha256=00"},
            ]
            headers = variants[n % len(variants)]
            return lambda gw: gw.post(body, **headers)
        if kind in ("replay_before", "replay_after"):
            with self._lock:
                replayed_body, replayed_headers = self.signed[n % len(self.signed)]
            return lambda gw: gw.post(replayed_body, **replayed_headers)
        if kind == "oversized":
            big = encode([ticket(self.next_id("H")) for _ in range(LIMIT // 200 + 10)])
            if n % 2:
                return lambda gw: gw.post(big, BATCH, **crm)
            return lambda gw: gw.post(iter([big[i : i + 1024] for i in range(0, len(big), 1024)]), BATCH, **crm)
        if kind == "malformed":
            bad: list[tuple[bytes, str]] = [
                (b"\x00\xff garbage", SINGLE),
                (body[:-7], SINGLE),
                (b'{"id": "H-x"}', SINGLE),
                (encode({**ticket(self.next_id("H")), "time": "yesterday"}), SINGLE),
                (b"[1, 2, [3]", BATCH),
                (encode({"not": "a batch"}), BATCH),
                (b"[" * 5000, BATCH),
            ]
            malformed, content_type = bad[n % len(bad)]
            return lambda gw: gw.post(malformed, content_type, **crm)
        if kind == "content_type":
            return lambda gw: gw.post(body, "application/json", **crm)
        if kind == "forbidden":
            pbx = {"Authorization": f"Bearer {keys.pbx_token}"}
            choices: list[tuple[bytes, dict[str, str]]] = [
                (encode(ticket(self.next_id("H"), "ticket.closed", source="/channels/pbx/main")), pbx),  # type
                (encode(ticket(self.next_id("H"), channel="walk_in")), crm),  # channel
                (encode(call(self.next_id("H"))), crm),  # type
                (encode(ticket(self.next_id("H"), source="/channels/pbx/main")), crm),  # source
            ]
            forbidden, headers = choices[n % len(choices)]
            return lambda gw: gw.post(forbidden, **headers)
        if kind == "flood":
            flood_body = encode(survey(self.next_id("H")))
            return lambda gw: gw.post(flood_body, Authorization=f"Bearer {keys.flood_token}")
        raise ValueError(kind)


def _run_phase(
    gateway: GatewayProcess,
    scenario: Scenario,
    jobs: list[tuple[str, Callable[[GatewayProcess], Answer]]],
    results: Results,
    clients: int,
) -> None:
    """The hostile jobs from `clients` threads while one more thread sends valid requests."""
    done = threading.Event()

    def valid_loop() -> None:
        while not done.is_set():
            results.valid.append(scenario.valid(gateway))

    sender = threading.Thread(target=valid_loop)
    sender.start()
    try:
        with ThreadPoolExecutor(max_workers=clients) as pool:
            answers = list(pool.map(lambda job: Outcome(job[0], job[1](gateway)), jobs))
    finally:
        done.set()
        sender.join(120)
    results.hostile.extend(answers)


def run_scenario(
    env: dict[str, str],
    workdir: Path,
    hostile_requests: int,
    clients: int = 4,
    log_level: str = "warning",
) -> Results:
    """Start the gateway, warm it up, send the hostile mix with valid traffic, restart it, replay.

    The gateway's log goes to `workdir / "gateway.log"` (at `log_level`; "info" adds the access log).
    """
    keys = Keys()
    secrets_path = workdir / "secrets.yaml"
    secrets_path.write_text(yaml.safe_dump(keys.secrets_document()), encoding="utf-8")
    scenario = Scenario(keys)
    total = sum(SHARES.values())
    counts = {kind: hostile_requests * share // total for kind, share in SHARES.items()}
    counts["bad_signature"] += hostile_requests - sum(counts.values())
    results = Results()
    gateway = GatewayProcess(env, secrets_path, workdir / "gateway.log", log_level)
    try:
        for _ in range(20):  # signed requests to replay later
            results.valid.append(scenario.valid(gateway))
        for _ in range(FLOOD_BURST):  # the flood adapter uses up its burst with valid requests
            event_id = scenario.next_id("V")
            started = time.perf_counter()
            answer = gateway.post(encode(survey(event_id)), Authorization=f"Bearer {keys.flood_token}")
            results.valid.append((event_id, answer, time.perf_counter() - started))
        jobs = [
            (kind, scenario.hostile(kind, n))
            for kind, count in counts.items()
            if kind != "replay_after"
            for n in range(count)
        ]
        jobs = [jobs[i] for i in _interleaved(len(jobs))]
        _run_phase(gateway, scenario, jobs, results, clients)
        results.metrics_before_restart = gateway.request("GET", "/metrics").body.decode()
    finally:
        gateway.stop()
    gateway = GatewayProcess(env, secrets_path, workdir / "gateway.log", log_level)  # same database: a restart
    try:
        jobs = [("replay_after", scenario.hostile("replay_after", n)) for n in range(counts["replay_after"])]
        _run_phase(gateway, scenario, jobs, results, clients)
    finally:
        gateway.stop()
    return results


def _interleaved(count: int) -> list[int]:
    """A fixed shuffle of range(count) (every kind spread over the run)."""
    order = list(range(count))
    random.Random(15).shuffle(order)
    return order


@contextmanager
def abuse_environment(bootstrap: str, workdir: Path) -> Iterator[tuple[dict[str, str], str]]:
    """Fresh topics of a run prefix and a SQLite database; yields the gateway's environment and the prefix."""
    prefix = unique("abuse") + "."
    ensure_topics(bootstrap, prefix, specs=(EVENTS, DEAD_LETTER))
    wait_for_topics(bootstrap, {prefix + EVENTS.name, prefix + DEAD_LETTER.name})
    env = {
        **os.environ,
        "TAWASUL_KAFKA": bootstrap,
        "TAWASUL_TOPIC_PREFIX": prefix,
        "TAWASUL_DATABASE_URL": f"sqlite:///{workdir / 'gateway.db'}",
    }
    env.pop("TAWASUL_PSEUDONYM_KEY", None)
    yield env, prefix


def summary(results: Results) -> str:
    latencies = results.latencies_ms()
    return (
        f"{len(results.hostile)} hostile requests ({dict(Counter(o.kind for o in results.hostile))}); "
        f"{len(results.valid)} valid requests served alongside: latency p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {percentile(latencies, 0.99):.1f} ms, max {latencies[-1]:.1f} ms"
    )


@pytest.mark.kafka
def test_a_thousand_hostile_requests_are_refused_and_valid_ones_served(kafka_bootstrap: str, tmp_path: Path) -> None:
    with abuse_environment(kafka_bootstrap, tmp_path) as (env, prefix):
        results = run_scenario(env, tmp_path, HOSTILE_REQUESTS)
        print("\n" + summary(results))
        events = [json.loads(value) for *_, value in read_all(kafka_bootstrap, [prefix + EVENTS.name], timeout_s=30)]
        letters = [
            decode_dead_letter(value)
            for *_, value in read_all(kafka_bootstrap, [prefix + DEAD_LETTER.name], timeout_s=30)
        ]
    assert len(results.hostile) == HOSTILE_REQUESTS
    wrong = [
        (o.kind, o.answer.status, o.answer.body[:200]) for o in results.hostile if o.answer.status != EXPECTED[o.kind]
    ]
    assert wrong == []
    for outcome in results.hostile:
        if outcome.kind.startswith("replay"):
            assert outcome.answer.json["reason"] == "this signature was already used"
        if outcome.answer.status == 401:
            assert outcome.answer.headers["WWW-Authenticate"].startswith("Bearer")
        if outcome.kind == "flood":
            assert int(outcome.answer.headers["Retry-After"]) >= 1
    # every valid request was served, and only they reached the events topic, each once
    assert [(i, a.status) for i, a, _ in results.valid if a.status != 202] == []
    published = [event["id"] for event in events]
    assert sorted(published) == sorted(i for i, _, _ in results.valid)
    assert not [event_id for event_id in published if event_id.startswith("H-")]
    # exactly the 400 and 403 refusals were dead-lettered, each with its reason
    refused = Counter(o.kind for o in results.hostile if o.answer.status in (400, 403))
    assert len(letters) == sum(refused.values())
    assert sum("not allowed for adapter" in letter.reason for letter in letters) == refused["forbidden"]
    floods = sum(o.kind == "flood" for o in results.hostile)
    assert f'tawasul_gateway_rate_limited_total{{adapter="flood"}} {float(floods)}' in results.metrics_before_restart
    latencies = results.latencies_ms()
    assert percentile(latencies, 0.99) < P99_BOUND_S * 1000, summary(results)

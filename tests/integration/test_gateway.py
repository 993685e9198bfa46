"""The HTTP gateway on the real broker: what it answers, and exactly what lands in Kafka."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner
from kafka import KafkaAdminClient

from producers.gateway import AdapterRegistry, load_secrets, signature_headers
from producers.gateway.app import GatewayOptions, create_app, default_publisher_factory
from producers.gateway.cli import gateway as gateway_command
from producers.gateway.health import KafkaHealth, PublisherSlot
from producers.gateway.replay import DatabaseReplayStore
from sinks.db import migrate
from sinks.db.engine import make_engine
from tawasul.infra.deadletter import decode_dead_letter
from tawasul.infra.logs import JsonFormatter
from tawasul.infra.metrics import Metrics
from tawasul.infra.pseudonymise import Pseudonymiser
from tawasul.infra.settings import Settings
from tawasul.infra.topics import DEAD_LETTER, EVENTS, ensure_topics
from tests.support.gateway_credentials import (
    CRM_SECRET,
    CRM_TOKEN,
    MOSQUES_SECRET,
    PBX_TOKEN,
    SECRETS,
    SURVEYS_RATE,
    SURVEYS_TOKEN,
)
from tests.support.kafka import read_all, unique

REPO = Path(__file__).resolve().parents[2]
PSEUDONYM_KEY = b"gateway-test-pseudonym-key-0123456789"
SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
CALLER = "+971 50 123 4567"
LIMIT = 8192


def request_at(
    port: int,
    method: str,
    path: str,
    body: bytes | Iterable[bytes] = b"",
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """One HTTP request to the local port (a chunked body when `body` is an iterator)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class RunningGateway:
    """The gateway app served on a free local port from a background event loop."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner = web.AppRunner(app, access_log=None)
        self.port = 0

    def __enter__(self) -> RunningGateway:
        self.thread.start()

        async def start() -> int:
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            return int(self.runner.addresses[0][1])

        self.port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] = b"",
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        return request_at(self.port, method, path, body, headers)

    def post(self, body: bytes, content_type: str = SINGLE, **headers: str) -> Answer:
        return self.request("POST", "/v1/events", body, {"Content-Type": content_type, **headers})


@dataclass(frozen=True)
class Setup:
    settings: Settings
    adapters: AdapterRegistry
    pseudonymiser: Pseudonymiser

    @property
    def events_topic(self) -> str:
        return self.settings.topic(EVENTS.name)

    @property
    def dead_letter_topic(self) -> str:
        return self.settings.topic(DEAD_LETTER.name)

    def gateway(self, metrics: Metrics | None = None, **options: Any) -> RunningGateway:
        return RunningGateway(
            create_app(
                self.settings,
                self.adapters,
                options=GatewayOptions(max_body_bytes=LIMIT, **options),
                metrics=metrics or Metrics(),
                pseudonymiser=self.pseudonymiser,
            )
        )

    def events(self) -> list[tuple[int, bytes | None, bytes]]:
        return [(p, k, v) for _, p, k, v in read_all(self.settings.kafka, [self.events_topic])]

    def dead_letters(self) -> list[bytes]:
        return [v for *_, v in read_all(self.settings.kafka, [self.dead_letter_topic])]


def wait_for_topics(bootstrap: str, topics: set[str], timeout_s: float = 20.0) -> None:
    """Block until the broker's metadata lists the topics (creation is propagated asynchronously)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        deadline = time.monotonic() + timeout_s
        while not topics <= set(admin.list_topics()):
            assert time.monotonic() < deadline, f"topics {topics} did not appear"
            time.sleep(0.1)
    finally:
        admin.close()


def make_setup(kafka_bootstrap: str, database_url: str) -> Setup:
    """Fresh topics and a migrated database (the replay-protection table) for one test."""
    prefix = unique("gw") + "."
    ensure_topics(kafka_bootstrap, prefix, specs=(EVENTS, DEAD_LETTER))
    wait_for_topics(kafka_bootstrap, {prefix + EVENTS.name, prefix + DEAD_LETTER.name})
    migrate.upgrade(database_url)
    return Setup(
        Settings(kafka=kafka_bootstrap, database_url=database_url, topic_prefix=prefix),
        load_secrets(SECRETS, environ={"TAWASUL_TEST_MOSQUES_SECRET": MOSQUES_SECRET}),
        Pseudonymiser(PSEUDONYM_KEY),
    )


@pytest.fixture
def setup(kafka_bootstrap: str, tmp_path: Path) -> Setup:
    return make_setup(kafka_bootstrap, f"sqlite:///{tmp_path / 'gateway.db'}")


def ticket(
    event_id: str, subject: str, event_type: str = "ticket.opened", source: str = "/channels/crm/main", minute: int = 0
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if event_type == "ticket.opened":
        data = {"channel": "crm", "kind": "complaint", "category": "roads.potholes", "priority": "normal"}
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type,
        "time": f"2025-05-13T08:{minute:02d}:00+04:00",
        "subject": subject,
        "data": data,
    }


def offered_call(event_id: str, subject: str, **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/channels/pbx/main",
        "type": "call.offered",
        "time": "2025-05-13T08:00:00+04:00",
        "subject": subject,
        "data": {"queue": "general", **data},
    }


def encode(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(
    body: bytes, timestamp: int | None = None, adapter: str = "crm", secret: bytes = CRM_SECRET
) -> dict[str, str]:
    return signature_headers(adapter, secret, body, timestamp)


# --- accepted --------------------------------------------------------------------------------------


def test_single_event_is_published_exactly_as_sent(setup: Setup) -> None:
    body = encode(offered_call("call-1-offered", "call-1"))
    with setup.gateway() as gateway:
        answer = gateway.post(body, **bearer(PBX_TOKEN))
    assert answer.status == 202, answer.body
    assert answer.json == {"accepted": ["call-1-offered"]}
    assert len(answer.headers["X-Request-Id"]) == 32
    [(_, key, value)] = setup.events()
    assert key == b"call-1" and value == body
    assert setup.dead_letters() == []


def test_signed_batch_is_published_in_order_with_subject_keys(setup: Setup) -> None:
    lifecycle = ["ticket.opened", "ticket.acknowledged", "ticket.assigned", "ticket.resolved", "ticket.closed"]
    batch = [ticket(f"T-1:{n}", "T-1", kind, minute=n) for n, kind in enumerate(lifecycle)]
    batch += [
        ticket("T-2:0", "T-2", source="/channels/complaints/web"),
        ticket("T-2:1", "T-2", "ticket.closed", minute=1),
    ]
    body = encode(batch)
    with setup.gateway() as gateway:
        answer = gateway.post(body, BATCH, **signed(body))
    assert answer.status == 202, answer.body
    assert answer.json == {"accepted": [event["id"] for event in batch]}
    records = setup.events()
    assert len(records) == len(batch)
    for subject in ("T-1", "T-2"):
        mine = [(p, json.loads(v)) for p, k, v in records if k == subject.encode()]
        assert [event for _, event in mine] == [event for event in batch if event["subject"] == subject]
        assert len({partition for partition, _ in mine}) == 1
    assert setup.dead_letters() == []


def test_caller_numbers_are_pseudonymised_before_publishing_and_logging(
    setup: Setup,
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = encode(offered_call("call-2-offered", "call-2", caller_number=CALLER))
    bad = encode([offered_call("call-3-offered", "call-3", caller_number=CALLER, queue=7)])
    caplog.set_level(logging.DEBUG)
    with setup.gateway() as gateway:
        assert gateway.post(body, **bearer(PBX_TOKEN)).status == 202
        answer = gateway.post(bad, BATCH, **bearer(PBX_TOKEN))
    assert answer.status == 400 and answer.json["rejected"][0]["reason"].startswith("data.queue")
    [(_, key, value)] = setup.events()
    published = json.loads(value)
    assert published["data"] == {"queue": "general", "caller_ref": setup.pseudonymiser.ref(CALLER)}
    [letter] = setup.dead_letters()
    assert b'"caller_number":"[redacted]"' in decode_dead_letter(letter).original
    access = [r for r in caplog.records if r.name == "tawasul.gateway.access"]
    assert [r.status for r in access] == [202, 400]  # type: ignore[attr-defined]
    logged = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    everything = value + letter + logged.encode()
    for form in (CALLER, CALLER.replace(" ", ""), "501234567"):
        assert form.encode() not in everything


# --- rejected events ---------------------------------------------------------------------------------


def test_batch_with_invalid_events_answers_400_naming_exactly_the_bad_ones(setup: Setup) -> None:
    no_offset = {**ticket("B-1", "T-10", "ticket.acknowledged"), "time": "2025-05-13T08:00:00"}
    batch: list[object] = [
        ticket("B-0", "T-10"),
        no_offset,
        ticket("B-2", "T-12"),
        "not an event",
        ticket("B-5", "T-10", "ticket.closed", minute=5),
    ]
    body = encode(batch)
    with setup.gateway() as gateway:
        answer = gateway.post(body, BATCH, **bearer(CRM_TOKEN))
    request_id = answer.headers["X-Request-Id"]
    assert answer.status == 400
    assert answer.json["accepted"] == ["B-0", "B-2", "B-5"]
    rejected = answer.json["rejected"]
    assert [(r["index"], r["id"]) for r in rejected] == [(1, "B-1"), (3, None)]
    assert rejected[0]["reason"].startswith("time:")
    assert "JSON object" in rejected[1]["reason"]
    published = [json.loads(v) for _, _, v in setup.events()]
    assert sorted(event["id"] for event in published) == ["B-0", "B-2", "B-5"]
    letters = sorted((decode_dead_letter(v) for v in setup.dead_letters()), key=lambda letter: letter.origin)
    assert [letter.origin for letter in letters] == [f"http:{request_id}#{i}" for i in (1, 3)]
    assert [letter.reason for letter in letters] == [r["reason"] for r in rejected]
    assert json.loads(letters[0].original) == no_offset


def test_single_invalid_event_answers_400_and_is_dead_lettered(setup: Setup) -> None:
    body = b'{"specversion": "1.0", "id": "S-1", "type": "ticket.opened"'
    with setup.gateway() as gateway:
        answer = gateway.post(body, **bearer(CRM_TOKEN))
    assert answer.status == 400
    assert answer.json["accepted"] == [] and answer.json["rejected"][0]["index"] == 0
    assert "not valid JSON" in answer.json["rejected"][0]["reason"]
    [letter] = [decode_dead_letter(v) for v in setup.dead_letters()]
    assert letter.original == body and letter.origin == f"http:{answer.headers['X-Request-Id']}"
    assert setup.events() == []


def test_an_event_only_the_stream_processors_produce_is_refused(setup: Setup) -> None:
    breach = {
        "specversion": "1.0",
        "id": "SLA-1",
        "source": "/channels/crm/main",
        "type": "sla.breached",
        "time": "2025-05-13T12:00:00+04:00",
        "subject": "T-20",
        "data": {
            "ticket_id": "T-20",
            "target": "resolution",
            "policy": "crm-standard",
            "deadline": "2025-05-13T12:00:00+04:00",
            "channel": "crm",
            "kind": "complaint",
            "category": "roads.potholes",
            "priority": "normal",
        },
    }
    with setup.gateway() as gateway:
        answer = gateway.post(encode([ticket("P-0", "T-20"), breach]), BATCH, **bearer(CRM_TOKEN))
    assert answer.status == 400 and answer.json["accepted"] == ["P-0"]
    [rejected] = answer.json["rejected"]
    assert (rejected["index"], rejected["id"]) == (1, "SLA-1")
    assert rejected["reason"].startswith("type: 'sla.breached' is produced by Tawasul's stream processors")
    assert [json.loads(v)["id"] for _, _, v in setup.events()] == ["P-0"]
    [letter] = [decode_dead_letter(v) for v in setup.dead_letters()]
    assert letter.reason == rejected["reason"] and json.loads(letter.original) == breach


def test_other_content_types_are_refused(setup: Setup) -> None:
    body = encode(ticket("C-1", "T-20"))
    with setup.gateway() as gateway:
        plain = gateway.post(body, "application/json", **bearer(CRM_TOKEN))
        latin = gateway.post(body, SINGLE + "; charset=latin-1", **bearer(CRM_TOKEN))
        fine = gateway.post(body, SINGLE + "; charset=utf-8", **bearer(CRM_TOKEN))
    assert plain.status == 415 and "application/cloudevents+json" in plain.json["reason"]
    assert latin.status == 415
    assert fine.status == 202
    assert [json.loads(v)["id"] for _, _, v in setup.events()] == ["C-1"]


# --- refused requests: nothing published --------------------------------------------------------------


def test_refused_requests_publish_nothing(setup: Setup) -> None:
    body = encode(ticket("R-1", "T-30"))
    now = int(time.time())
    oversized = encode([ticket(f"R-big-{n}", "T-31") for n in range(60)])
    assert len(oversized) > LIMIT
    with setup.gateway() as gateway:
        wrong_token = gateway.post(body, **bearer("not-the-token"))
        bad_signature = gateway.post(body, **signed(body + b" "))
        stale = gateway.post(body, **signed(body, now - 301))
        unknown = gateway.post(body, **signed(body, adapter="nobody"))
        missing = gateway.post(body)
        first = signed(body)
        accepted = gateway.post(body, **first)
        replayed = gateway.post(body, **first)
        too_large = gateway.post(oversized, BATCH, **bearer(CRM_TOKEN))
        chunks = [oversized[i : i + 1000] for i in range(0, len(oversized), 1000)]
        too_large_chunked = gateway.request(
            "POST",
            "/v1/events",
            iter(chunks),
            {"Content-Type": BATCH, **bearer(CRM_TOKEN)},
        )
    for answer in (wrong_token, bad_signature, stale, unknown, missing, replayed):
        assert answer.status == 401, answer.body
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert "more than 300 seconds" in stale.json["reason"]
    assert replayed.json["reason"] == "this signature was already used"
    assert accepted.status == 202
    assert too_large.status == 413 and too_large_chunked.status == 413
    # only the one accepted request reached Kafka
    assert [value for _, _, value in setup.events()] == [body]
    assert setup.dead_letters() == []


# --- permissions, rate limits, replays across gateways --------------------------------------------


def survey(event_id: str, channel: str = "web") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/channels/survey",
        "type": "survey.submitted",
        "time": "2025-05-13T08:00:00+04:00",
        "subject": "T-1",
        "data": {"channel": channel, "score": 4, "scale": 5},
    }


def test_events_an_adapter_may_not_send_are_refused_with_403_and_dead_lettered(setup: Setup) -> None:
    closing = ticket("F-1", "T-70", "ticket.closed", source="/channels/pbx/main")
    pbx_batch = encode([offered_call("F-0", "call-70"), closing])
    walk_in = ticket("F-3", "T-71")
    walk_in["data"]["channel"] = "walk_in"
    foreign = ticket("F-4", "T-72", source="/channels/pbx/main")
    crm_batch = encode([ticket("F-2", "T-71"), walk_in, foreign])
    metrics = Metrics()
    with setup.gateway(metrics=metrics) as gateway:
        pbx = gateway.post(pbx_batch, BATCH, **bearer(PBX_TOKEN))
        crm = gateway.post(crm_batch, BATCH, **signed(crm_batch))
        page = gateway.request("GET", "/metrics").body.decode()
    assert pbx.status == 403 and crm.status == 403, (pbx.body, crm.body)
    assert pbx.json["accepted"] == ["F-0"] and crm.json["accepted"] == ["F-2"]
    assert pbx.json["rejected"] == [
        {
            "index": 1,
            "id": "F-1",
            "reason": "type: 'ticket.closed' is not allowed for adapter pbx-main (allowed: call.*)",
        }
    ]
    reasons = [r["reason"] for r in crm.json["rejected"]]
    assert reasons == [
        "data.channel: 'walk_in' is not allowed for adapter crm (allowed: crm, complaints_platform)",
        "source: not allowed for adapter crm (allowed: /channels/crm, /channels/complaints)",
    ]
    assert sorted(json.loads(v)["id"] for _, _, v in setup.events()) == ["F-0", "F-2"]
    letters = {
        json.loads(decode_dead_letter(v).original)["id"]: decode_dead_letter(v).reason for v in setup.dead_letters()
    }
    assert letters == {"F-1": pbx.json["rejected"][0]["reason"], "F-3": reasons[0], "F-4": reasons[1]}
    assert 'tawasul_gateway_forbidden_events_total{adapter="pbx-main"} 1.0' in page
    assert 'tawasul_gateway_forbidden_events_total{adapter="crm"} 2.0' in page
    assert 'tawasul_events_rejected_total{reason="forbidden",source_kind="http"} 3.0' in page


def test_an_adapter_over_its_rate_limit_gets_429_with_retry_after(setup: Setup) -> None:
    burst, rate = SURVEYS_RATE["burst"], SURVEYS_RATE["per_second"]
    metrics = Metrics()
    with setup.gateway(metrics=metrics) as gateway:
        started = time.monotonic()
        answers = [gateway.post(encode(survey(f"L-{n}")), **bearer(SURVEYS_TOKEN)) for n in range(burst + 5)]
        elapsed = time.monotonic() - started
        other = gateway.post(encode(offered_call("L-pbx", "call-80")), **bearer(PBX_TOKEN))  # its own bucket
        page = gateway.request("GET", "/metrics").body.decode()
    served = [a for a in answers if a.status == 202]
    limited = [a for a in answers if a.status == 429]
    assert len(served) + len(limited) == len(answers)
    assert burst <= len(served) <= burst + int(elapsed * rate) + 1
    assert answers[:burst] == served[:burst] and limited
    for answer in limited:
        assert 1 <= int(answer.headers["Retry-After"]) <= int(1 / rate) + 1
        assert answer.json["reason"] == "rate limit of adapter surveys: 0.2 requests/s, burst 5"
    assert other.status == 202
    served_ids = sorted(a.json["accepted"][0] for a in served)
    assert sorted(json.loads(v)["id"] for _, _, v in setup.events() if b"survey" in v) == served_ids
    assert f'tawasul_gateway_rate_limited_total{{adapter="surveys"}} {float(len(limited))}' in page
    assert setup.dead_letters() == []


def test_a_signature_used_on_one_gateway_is_refused_by_another_and_after_a_restart(
    kafka_bootstrap: str,
    database_url: str,
) -> None:
    shared = make_setup(kafka_bootstrap, database_url)  # two gateway instances on one database
    body = encode(ticket("RP-1", "T-90"))
    headers = signed(body)
    with shared.gateway() as first, shared.gateway() as second:
        accepted = first.post(body, **headers)
        on_the_other = second.post(body, **headers)
        on_the_same = first.post(body, **headers)
    with shared.gateway() as restarted:
        after_restart = restarted.post(body, **headers)
        stamp = int(headers["X-Tawasul-Timestamp"]) + 1
        fresh = restarted.post(body, **signed(body, stamp))  # the same event, signed anew: a new request
    assert accepted.status == 202 and fresh.status == 202
    for answer in (on_the_other, on_the_same, after_restart):
        assert answer.status == 401 and answer.json["reason"] == "this signature was already used"
    assert [value for _, _, value in shared.events()] == [body, body]


def test_replay_store_on_both_databases_one_winner_per_signature_and_purge(database_url: str) -> None:
    migrate.upgrade(database_url)
    stores = [DatabaseReplayStore(make_engine(database_url), owns_engine=True, purge_every_s=3600) for _ in range(2)]
    now = time.time()
    try:
        keys = [f"{n:064x}" for n in range(40)]
        with ThreadPoolExecutor(max_workers=8) as pool:  # both instances claim every key at the same time
            wins = list(
                pool.map(
                    lambda job: stores[job[0]].claim(job[1], now + 300, now),
                    [(side, key) for key in keys for side in (0, 1)],
                )
            )
        assert [wins[2 * i] + wins[2 * i + 1] for i in range(len(keys))] == [1] * len(keys)
        assert stores[0].claim("old" + "0" * 61, now - 120, now) and len(stores[0]) == 41
        assert stores[1].purge(now) == 1 and len(stores[1]) == 40  # expired more than 60 s ago
    finally:
        for store in stores:
            store.close()


# --- health and metrics ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_healthz_is_200_while_kafka_answers(setup: Setup) -> None:
    with setup.gateway() as gateway:
        answer = gateway.request("GET", "/healthz")
    assert answer.status == 200 and answer.json == {"status": "ok"}
    assert "X-Request-Id" in answer.headers


def test_healthz_is_503_without_a_broker_and_posts_are_refused(setup: Setup) -> None:
    dead = Settings(kafka=f"127.0.0.1:{free_port()}", topic_prefix=setup.settings.topic_prefix)
    down = Setup(dead, setup.adapters, setup.pseudonymiser)
    body = encode(ticket("D-1", "T-50"))
    headers = signed(body)
    with down.gateway(kafka_timeout_s=1.0) as gateway:
        health = gateway.request("GET", "/healthz")
        started = time.monotonic()
        post = gateway.post(body, **bearer(CRM_TOKEN))
        elapsed = time.monotonic() - started
        first = gateway.post(body, **headers)
        again = gateway.post(body, **headers)  # a refused request may be retried with its signature
    assert health.status == 503 and health.json["status"] == "unavailable"
    assert "Kafka is not reachable" in health.json["reason"]
    assert post.status == 503 and post.headers["Retry-After"] == "5" and elapsed < 5
    assert first.status == 503 and again.status == 503, again.body
    assert setup.events() == []


def test_healthz_is_503_when_the_topics_are_missing(kafka_bootstrap: str, setup: Setup) -> None:
    missing = Setup(
        Settings(kafka=kafka_bootstrap, topic_prefix=unique("gw-none") + "."), setup.adapters, setup.pseudonymiser
    )
    with missing.gateway() as gateway:
        answer = gateway.request("GET", "/healthz")
    assert answer.status == 503 and "missing topics" in answer.json["reason"]


def test_a_healthy_status_is_refreshed_in_the_background_not_awaited(setup: Setup) -> None:
    clock = [1000.0]
    options = GatewayOptions()
    slot = PublisherSlot(default_publisher_factory(setup.settings, options, Metrics()))
    health = KafkaHealth(
        setup.settings.kafka, [setup.events_topic, setup.dead_letter_topic], slot, ttl_s=1.0, clock=lambda: clock[0]
    )

    async def scenario() -> None:
        first = await health.status()  # nothing cached: the probe is awaited
        assert first.healthy and first.checked_at == 1000.0
        clock[0] = 1001.5  # older than ttl, younger than 3 x ttl
        assert await health.status() is first  # answered at once from the cache...
        await health.settle()  # ...while the probe ran in the background
        refreshed = await health.status()
        assert refreshed is not first and refreshed.healthy and refreshed.checked_at == 1001.5
        clock[0] = 1010.0  # too old to serve: awaited again
        assert (await health.status()).checked_at == 1010.0
        health.mark_unhealthy("Kafka did not confirm")  # a failed publish: the next request waits
        recovered = await health.status()
        assert recovered.healthy and recovered.checked_at == 1010.0

    try:
        asyncio.run(scenario())
    finally:
        health.close()
        slot.close(10)


def test_metrics_count_requests_by_status(setup: Setup) -> None:
    body = encode(ticket("M-1", "T-60"))
    with setup.gateway(metrics=Metrics()) as gateway:
        gateway.post(body, **bearer(CRM_TOKEN))
        gateway.post(body, **bearer("wrong"))
        gateway.post(body, **bearer("wrong"))
        gateway.request("GET", "/healthz")
        not_found = gateway.request("GET", "/nowhere")
        page = gateway.request("GET", "/metrics")
    text = page.body.decode()
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/plain")
    assert 'tawasul_gateway_requests_total{status="202"} 1.0' in text
    assert 'tawasul_gateway_requests_total{status="401"} 2.0' in text
    assert 'tawasul_gateway_auth_refusals_total{reason="bad_token"} 2.0' in text
    assert 'tawasul_gateway_requests_total{status="404"} 1.0' in text
    assert not_found.status == 404 and "X-Request-Id" in not_found.headers


# --- the command -----------------------------------------------------------------------------------


def test_the_command_refuses_to_start_without_stated_permissions_or_a_usable_database(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"TAWASUL_TEST_MOSQUES_SECRET": MOSQUES_SECRET, "TAWASUL_DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}"}
    strict = runner.invoke(gateway_command, ["--secrets", str(SECRETS), "--require-permissions"], env=env)
    assert strict.exit_code == 1
    assert strict.output.strip() == (
        "Error: adapters without event_types or `allow: all`: mosques (--require-permissions)"
    )
    no_database = runner.invoke(
        gateway_command, ["--secrets", str(SECRETS), "--db", f"sqlite:///{tmp_path / 'missing' / 'g.db'}"], env=env
    )
    assert no_database.exit_code == 1
    assert no_database.output.startswith("Error: cannot use the database for replay protection: OperationalError")


def non_loopback_address() -> str | None:
    """This machine's IPv4 address towards other hosts (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routing only
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def test_gateway_command_serves_and_stops_cleanly_on_sigterm(setup: Setup, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "TAWASUL_KAFKA": setup.settings.kafka,
        "TAWASUL_TOPIC_PREFIX": setup.settings.topic_prefix,
        "TAWASUL_DATABASE_URL": f"sqlite:///{tmp_path / 'command.db'}",
        "TAWASUL_GATEWAY_SECRETS": str(SECRETS),
        "TAWASUL_TEST_MOSQUES_SECRET": MOSQUES_SECRET,
        "TAWASUL_PSEUDONYM_KEY": PSEUDONYM_KEY.decode(),
    }
    code = (
        "from tawasul.infra.logs import configure_logging; configure_logging('info'); "
        "from producers.gateway.cli import gateway; gateway()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        answer = None
        deadline = time.monotonic() + 30
        while answer is None and time.monotonic() < deadline:
            try:
                answer = request_at(
                    port,
                    "POST",
                    "/v1/events",
                    encode(offered_call("cmd-1", "call-9", caller_number=CALLER)),
                    {"Content-Type": SINGLE, **bearer(PBX_TOKEN)},
                )
            except OSError:
                time.sleep(0.2)
        assert answer is not None and answer.status == 202, answer
        outside = non_loopback_address()
        if outside is not None:  # the same port on the machine's other address is not served
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((outside, port), timeout=5).close()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(line["message"] == "gateway stopped" for line in lines)
    [listening] = [line for line in lines if line["message"] == "gateway listening"]
    assert listening["host"] == "127.0.0.1"  # loopback unless --host says otherwise
    warned = [line["adapter"] for line in lines if line["message"].startswith("adapter may send every event type")]
    assert warned == ["mosques"]  # the one adapter whose permissions the file does not state
    access = [line for line in lines if line.get("logger") == "tawasul.gateway.access"]
    assert access and access[0]["status"] == 202 and access[0]["adapter"] == "pbx-main"
    assert CALLER.replace(" ", "") not in stderr and CALLER not in stderr
    [(_, key, value)] = setup.events()
    assert key == b"call-9" and json.loads(value)["data"]["caller_ref"] == setup.pseudonymiser.ref(CALLER)

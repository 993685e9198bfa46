"""`tawasul worker --processors sla|kpis`: the SLA engine and the KPI processor in two processes.

The breaches are fired by the clock alone (no event after the openings), so the KPI worker's
backlog shows them only if ticket states of the same `version` move a ticket forward."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas import new_event
from tawasul.infra.topics import KPIS
from tests.integration.test_sla_restart import WorkerProcess
from tests.integration.test_sla_stream import prefixed_settings, publish, read_outcomes
from tests.support.kafka import read_all

POLICIES = """\
calendars:
  always: {timezone: Asia/Dubai, always_open: true}
policies:
  - name: split
    match: {}
    calendar: always
    first_response: 4s
"""


def snapshots(settings: Any) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for _, _, key, value in read_all(settings.kafka, [settings.topic(KPIS.name)]):
        if key is not None:
            latest[key.decode()] = json.loads(value)["data"]
    return latest


def test_an_sla_worker_and_a_kpi_worker_share_the_work(kafka_bootstrap: str, tmp_path: Path) -> None:
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    settings = prefixed_settings(kafka_bootstrap, policies, "split-workers")
    base = f"{settings.topic_prefix}split"
    sla = WorkerProcess(settings, base + "-sla", tmp_path / "sla", extra_args=("--processors", "sla"))
    kpis = WorkerProcess(settings, base + "-kpis", tmp_path / "kpis", extra_args=("--processors", "kpis"))
    try:
        sla.wait_ready()
        now = datetime.now(UTC)
        data = {"channel": "crm", "kind": "request", "category": "licensing.renewal", "priority": "normal"}
        publish(
            kafka_bootstrap,
            settings.topic("tawasul.events"),
            [
                new_event("ticket.opened", f"T-split-{i}", now, data, "/channels/test/split", id=f"T-split-{i}-o")
                for i in range(3)
            ]
            + [
                new_event(
                    "call.offered", "C-split-1", now, {"queue": "general"}, "/channels/test/split", id="C-split-1-o"
                )
            ],
        )
        deadline = time.monotonic() + 60
        figures: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            figures = snapshots(settings)
            breached = figures.get("tickets.open|now|sla_state=breached", {}).get("value")
            if breached == 3 and figures.get("calls.offered|15m|queue=general", {}).get("value") == 1:
                break
            time.sleep(1.0)
        backlog = {k: v["value"] for k, v in figures.items() if k.startswith("tickets.open")}
        assert backlog.get("tickets.open|now|sla_state=breached") == 3, backlog
        assert figures["calls.offered|15m|queue=general"]["value"] == 1
        assert sla.terminate() == 0 and kpis.terminate() == 0
    finally:
        for worker in (sla, kpis):
            if worker.proc.poll() is None:
                worker.kill()
    breaches = {e.subject for e, _ in read_outcomes(settings) if e.type == "sla.breached"}
    assert breaches == {f"T-split-{i}" for i in range(3)}
    started = {str(e.get("processors")) for w in (sla, kpis) for e in w.logs if e.get("message") == "worker starting"}
    assert started == {"sla", "kpis"}
    assert not any(e.get("message") == "sla timers running" for e in kpis.logs), "the KPI worker ran the SLA engine"

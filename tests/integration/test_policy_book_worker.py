"""The live worker publishes the policy book it runs with to `tawasul.policies` (real broker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from sinks.db.policy_books import decode_policy_book
from tawasul.domain.policies import policies_sha256
from tests.e2e.test_policy_books_replay import STRICT
from tests.support.kafka import read_all, unique

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.kafka
def test_the_worker_publishes_its_book(kafka_bootstrap: str, tmp_path: Path) -> None:
    book = tmp_path / "strict.yaml"
    book.write_text(STRICT, encoding="utf-8")
    prefix = unique("pbw") + "."
    env = {
        **os.environ,
        "TAWASUL_KAFKA": kafka_bootstrap,
        "TAWASUL_POLICIES": str(book),
        "TAWASUL_TOPIC_PREFIX": prefix,
        "TAWASUL_STATE_DIR": str(tmp_path / "state"),
        "TAWASUL_LOG_LEVEL": "warning",
    }
    began = datetime.now().astimezone()
    worker = subprocess.Popen(
        [sys.executable, "-m", "tawasul", "worker", "--metrics-port", "0", "--processors", "sla"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        records: list[tuple[str, int, bytes | None, bytes]] = []
        give_up = time.monotonic() + 60
        while not records and time.monotonic() < give_up:
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            try:
                records = read_all(kafka_bootstrap, [f"{prefix}tawasul.policies"], timeout_s=3)
            except AssertionError:  # the topic is not there yet
                time.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    [(_topic, _partition, key, value)] = records
    stored = decode_policy_book(value)
    assert key == policies_sha256(STRICT).encode() == stored.sha256.encode()
    assert (stored.name, stored.yaml) == ("strict.yaml", STRICT)
    assert began <= stored.used_at <= datetime.now().astimezone()

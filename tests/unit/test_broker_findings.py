"""What a failed `tawasul kafka start` reports: the log's errors of this start, not a shutdown's tail."""

from __future__ import annotations

from pathlib import Path

from tawasul.infra.kafka_local.broker import BrokerLayout, start_findings
from tests.support.postgres import free_port

EARLIER_RUN = "[2026-01-01 00:00:00,000] ERROR an error of an earlier run (kafka.Old)\n"
THIS_RUN = (
    "[2026-01-02 00:00:00,000] INFO starting (kafka.server.KafkaRaftServer)\n"
    "[2026-01-02 00:00:01,000] ERROR [RaftManager id=1] cannot reach the quorum (kafka.raft)\n"
    "[2026-01-02 00:00:02,000] WARN slow (kafka.server)\n"
    "[2026-01-02 00:00:03,000] FATAL [KafkaRaftServer] fatal error during start-up (kafka.Kafka)\n"
    "[2026-01-02 00:00:04,000] INFO shutting down (kafka.server.KafkaRequestHandlerPool)\n"
)


def _layout(tmp_path: Path) -> BrokerLayout:
    layout = BrokerLayout(home=tmp_path, port=free_port(), controller_port=free_port())
    layout.log_file.parent.mkdir(parents=True, exist_ok=True)
    layout.log_file.write_text(EARLIER_RUN + THIS_RUN, encoding="utf-8")
    return layout


def test_the_errors_of_this_start_are_listed_and_earlier_ones_are_not(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    findings = start_findings(layout, since=len(EARLIER_RUN), last_probe="NoBrokersAvailable: x", pid=None).splitlines()
    assert findings[:5] == [
        "--- why the start failed ---",
        "broker process: not running",
        f"port {layout.port} accepts connections: no",
        f"last probe of localhost:{layout.port}: NoBrokersAvailable: x",
        "'Kafka Server started' in the log: no",
    ]
    assert findings[5:] == [
        f"--- ERROR and FATAL lines of kafka-{layout.port}.log (last 10 of 2) ---",
        "[2026-01-02 00:00:01,000] ERROR [RaftManager id=1] cannot reach the quorum (kafka.raft)",
        "[2026-01-02 00:00:03,000] FATAL [KafkaRaftServer] fatal error during start-up (kafka.Kafka)",
    ]


def test_a_log_shorter_than_the_offset_was_replaced_and_is_read_whole(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    findings = start_findings(layout, since=10**6, last_probe=None, pid=4242)
    assert "broker process: running (pid 4242)" in findings
    assert f"last probe of localhost:{layout.port}: answered" in findings
    assert "(last 10 of 3)" in findings and "an error of an earlier run" in findings


def test_a_started_broker_and_no_log_are_told_apart(tmp_path: Path) -> None:
    layout = BrokerLayout(home=tmp_path, port=free_port(), controller_port=free_port())
    assert "'Kafka Server started' in the log: no" in start_findings(layout, since=0, last_probe="x", pid=None)
    layout.log_file.parent.mkdir(parents=True, exist_ok=True)
    layout.log_file.write_text("[t] INFO [KafkaRaftServer nodeId=1] Kafka Server started (kafka.server)\n")
    findings = start_findings(layout, since=0, last_probe="x", pid=None)
    assert "'Kafka Server started' in the log: yes" in findings and "ERROR and FATAL" not in findings

"""The pipeline on one page: each stage with the code that runs it, each topic with the code
that writes and reads it, and each `tawasul` command with the stages it runs.

Every name is an importable dotted name (module, then attribute path):
`tests/unit/test_pipeline_map.py` resolves each one, checks that every declared topic
(`tawasul.infra.topics.ALL_TOPICS`) and every command (`tawasul.app.cli.COMMANDS`) is here, and
that the diagram in `docs/architecture.md` is `render_markdown()`'s (regenerate it with
`python -m tawasul.app.pipeline --write`). Nothing here is imported at run time; it is a map.
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline: what it does and the code that runs it (`entry`)."""

    key: str
    does: str
    entry: str


@dataclass(frozen=True)
class Flow:
    """A topic (its constant in `tawasul.infra.topics`) with its writers and readers (stage keys)."""

    topic: str
    writers: tuple[str, ...]
    readers: tuple[str, ...]
    note: str = ""


STAGES: tuple[Stage, ...] = (
    Stage("intake", "validate an input against the contract, redact personal data", "producers.intake.accept_line"),
    Stage(
        "publish", "JSON Lines files: validate and publish (tawasul publish, replay)", "producers.lines.publish_lines"
    ),
    Stage("adapters", "PBX queue_log and CSV exports as events", "producers.adapters_cmd.adapters"),
    Stage("gateway", "HTTP: signed requests of the channel adapters", "producers.gateway.app.post_events"),
    Stage("simulator", "calibrated contact-centre traffic as a JSON Lines file", "producers.simulator.write_jsonl"),
    Stage("demo traffic", "simulated traffic published live", "tawasul.app.demo.publish_traffic"),
    Stage(
        "publisher", "confirmed sends to the events and dead-letter topics", "tawasul.infra.publisher.KafkaPublisher"
    ),
    Stage("policy book", "the SLA policy book in use, for the sink", "tawasul.infra.policy_books.publish_policy_book"),
    Stage(
        "sla engine", "live SLA engine: ticket state, deadlines, outcomes", "stream_processors.sla_agent.register_sla"
    ),
    Stage("kpi processor", "live KPI figures as snapshots", "stream_processors.kpi_agent.register_kpis"),
    Stage("poison", "a step that raises dead-letters its event", "stream_processors.poison.PoisonOutbox"),
    Stage("batch engine", "replay: the SLA and KPI steps over batches", "stream_processors.batch_runner.run_batch"),
    Stage("end of input", "replay: a watermark to every ticks partition", "stream_processors.runner.send_end_of_input"),
    Stage("db sink", "idempotent upserts, offsets committed after the database", "sinks.consumer.DbSink"),
    Stage("sink dead letters", "records the sink refuses", "sinks.dead_letters.DeadLetterOutbox"),
    Stage("metrics feed", "Prometheus gauges from what the sink reads", "sinks.metrics_feed.MetricsFeed"),
    Stage("wall display", "live wall display from the database", "sinks.wallboard.app.create_app"),
    Stage("report", "period report from the stored events", "sinks.report_cmd.report"),
    Stage("ticket page", "one ticket's story from the database", "sinks.ticket_cmd.ticket"),
)

FLOWS: tuple[Flow, ...] = (
    Flow(
        "EVENTS",
        ("publish", "adapters", "gateway", "demo traffic"),
        ("sla engine", "kpi processor", "batch engine", "db sink"),
    ),
    Flow("DEAD_LETTER", ("intake", "poison", "sink dead letters"), (), "kept for operators"),
    Flow("SLA_TICKS", ("sla engine", "end of input"), ("sla engine", "batch engine"), "internal timer ticks"),
    Flow("SLA_OUTCOMES", ("sla engine", "batch engine"), ("db sink", "metrics feed")),
    Flow("TICKET_STATE", ("sla engine", "batch engine"), ("kpi processor", "db sink", "metrics feed")),
    Flow("KPI_INPUT", ("kpi processor",), ("kpi processor",), "internal: one aggregator"),
    Flow("KPIS", ("kpi processor", "batch engine"), ("db sink", "metrics feed")),
    Flow("POLICIES", ("policy book",), ("db sink",)),
)
"""The intake's rejections reach `DEAD_LETTER` through the publisher, as every producer's events
reach `EVENTS` through it (or `producers.bulk_publisher.BulkPublisher` for large files)."""

COMMANDS: dict[str, tuple[str, ...]] = {
    "publish": ("intake", "publish", "publisher"),
    "adapters": ("intake", "adapters", "publisher"),
    "gateway": ("intake", "gateway", "publisher"),
    "simulate": ("simulator",),
    "worker": ("policy book", "sla engine", "kpi processor", "poison"),
    "sink": ("db sink", "sink dead letters", "metrics feed"),
    "wallboard": ("wall display",),
    "report": ("report",),
    "ticket": ("ticket page",),
    "replay": (
        "intake",
        "publish",
        "publisher",
        "policy book",
        "batch engine",
        "end of input",
        "db sink",
        "sink dead letters",
    ),
    "demo": (
        "demo traffic",
        "intake",
        "publisher",
        "policy book",
        "sla engine",
        "kpi processor",
        "poison",
        "db sink",
        "sink dead letters",
        "metrics feed",
        "wall display",
    ),
    "db": (),
    "kafka": (),
    "topics": (),
}
"""Command name (`tawasul.app.cli.COMMANDS`) -> the stages it runs (none: an operator's tool)."""

STAGE_BY_KEY: dict[str, Stage] = {stage.key: stage for stage in STAGES}


def resolve(dotted: str) -> object:
    """The object a dotted name points at: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(dotted)


def topic_name(constant: str) -> str:
    from tawasul.infra import topics

    return str(getattr(topics, constant).name)


def _names(keys: tuple[str, ...]) -> str:
    return ", ".join(keys) if keys else "-"


def render_markdown() -> str:
    """The diagram of docs/architecture.md: topics with writers and readers, then the stages."""
    lines = ["| writers | topic | readers |", "| --- | --- | --- |"]
    for flow in FLOWS:
        note = f" ({flow.note})" if flow.note else ""
        lines.append(f"| {_names(flow.writers)} | `{topic_name(flow.topic)}`{note} | {_names(flow.readers)} |")
    lines += ["", "| stage | what it does | code | run by |", "| --- | --- | --- | --- |"]
    for stage in STAGES:
        commands = ", ".join(f"`{name}`" for name, stages in COMMANDS.items() if stage.key in stages)
        lines.append(f"| {stage.key} | {stage.does} | `{stage.entry}` | {commands or '-'} |")
    return "\n".join(lines) + "\n"


BEGIN, END = (
    "<!-- pipeline map: generated by `python -m tawasul.app.pipeline --write` -->",
    "<!-- end of pipeline map -->",
)
DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def documented(text: str) -> str | None:
    """The generated block of a docs/architecture.md text (None when its markers are missing)."""
    found = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.DOTALL)
    return found.group(1) if found else None


def main(argv: list[str]) -> int:
    """Print the map; with `--write`, replace the block between the markers of the doc."""
    block = render_markdown()
    if "--write" not in argv:
        sys.stdout.write(block)
        return 0
    text = DOC.read_text(encoding="utf-8")
    if documented(text) is None:
        sys.stderr.write(f"{DOC.name}: the markers of the pipeline map are missing\n")
        return 1
    start, end = text.index(BEGIN) + len(BEGIN) + 1, text.index(END)
    DOC.write_text(text[:start] + block + text[end:], encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

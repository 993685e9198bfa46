"""The flow map (`tawasul.app.pipeline`) names real code, covers every topic and command, and is
the diagram of docs/architecture.md."""

from __future__ import annotations

import inspect

import pytest

from tawasul.app import cli, pipeline
from tawasul.infra import topics


@pytest.mark.parametrize("stage", pipeline.STAGES, ids=lambda stage: stage.key)
def test_every_stage_names_code_that_exists(stage: pipeline.Stage) -> None:
    target = pipeline.resolve(stage.entry)
    assert inspect.isclass(target) or callable(target), f"{stage.entry} is {target!r}"
    assert stage.entry.split(".")[0] in {"producers", "stream_processors", "sinks", "tawasul"}


def test_a_name_that_does_not_exist_is_refused() -> None:
    with pytest.raises(AttributeError):
        pipeline.resolve("sinks.consumer.NoSuchSink")
    with pytest.raises(ModuleNotFoundError):
        pipeline.resolve("no_such_package.module")


def test_every_declared_topic_has_one_flow_of_known_stages() -> None:
    declared = {spec.name for spec in topics.ALL_TOPICS}
    mapped = [pipeline.topic_name(flow.topic) for flow in pipeline.FLOWS]
    assert sorted(mapped) == sorted(declared)
    for flow in pipeline.FLOWS:
        assert isinstance(getattr(topics, flow.topic), topics.TopicSpec)
        assert flow.writers, f"{flow.topic} has no writer"
        unknown = set(flow.writers + flow.readers) - set(pipeline.STAGE_BY_KEY)
        assert not unknown, f"{flow.topic}: unknown stages {unknown}"


def test_every_command_is_mapped_to_known_stages() -> None:
    assert set(pipeline.COMMANDS) == set(cli.COMMANDS)
    for name, stages in pipeline.COMMANDS.items():
        module, _, attribute = cli.COMMANDS[name].partition(":")
        assert pipeline.resolve(f"{module}.{attribute}") is not None
        assert set(stages) <= set(pipeline.STAGE_BY_KEY), f"{name}: {set(stages) - set(pipeline.STAGE_BY_KEY)}"
    used = {key for stages in pipeline.COMMANDS.values() for key in stages}
    assert used == set(pipeline.STAGE_BY_KEY), f"stages no command runs: {set(pipeline.STAGE_BY_KEY) - used}"


def test_the_architecture_doc_shows_the_map_as_generated() -> None:
    text = pipeline.DOC.read_text(encoding="utf-8")
    assert pipeline.documented(text) == pipeline.render_markdown(), (
        "docs/architecture.md's pipeline map is stale: run `python -m tawasul.app.pipeline --write`"
    )
    for stage in pipeline.STAGES:
        assert f"`{stage.entry}`" in text

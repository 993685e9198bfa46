"""JSON Lines output of a simulation, with an optional progress bar on stderr."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .generate import Draft, iter_drafts, render
from .pacing import shuffle_within
from .params import Params

_PROGRESS_EVERY = 5_000


def to_json_line(event: dict[str, object]) -> str:
    """One compact JSON line (UTF-8 text, keys in contract order)."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"


def drafts(params: Params, disorder_seconds: float = 0.0) -> Iterator[Draft]:
    """The run's drafts, shuffled within `disorder_seconds` when it is positive."""
    stream = iter_drafts(params)
    if disorder_seconds > 0:
        rng = random.Random(f"disorder|{params.seed}")
        return shuffle_within(stream, disorder_seconds, rng, lambda draft: draft.time)
    return stream


def write_jsonl(params: Params, out: TextIO, disorder_seconds: float = 0.0, progress: bool = False) -> int:
    """Write every event of the run to `out`; returns how many were written."""
    written = 0
    if not progress:
        for draft in drafts(params, disorder_seconds):
            out.write(to_json_line(render(draft)))
            written += 1
        return written
    start = int(params.start.timestamp())
    total = max(1, int(params.end.timestamp()) - start)
    columns = (
        TextColumn("simulating"),
        BarColumn(),
        TextColumn("{task.fields[day]}"),
        TextColumn("{task.fields[events]:,} events"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("simulate", total=total, day="", events=0)
        for draft in drafts(params, disorder_seconds):
            event = render(draft)
            out.write(to_json_line(event))
            written += 1
            if written % _PROGRESS_EVERY == 0:
                bar.update(task, completed=min(total, draft.time - start), day=str(event["time"])[:10], events=written)
        bar.update(task, completed=total, events=written)
    return written

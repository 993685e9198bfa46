"""`tawasul simulate`: realistic, calibrated traffic as a JSON Lines file of CloudEvents."""

from __future__ import annotations

import os
import sys
import time

import click

from producers.simulator import Params, SimulatorError, parse_when, write_jsonl


@click.command("simulate")
@click.option(
    "--from", "start", required=True, metavar="DATE", help="Start (ISO 8601; a date alone is 00:00 Asia/Dubai)."
)
@click.option("--to", "end", required=True, metavar="DATE", help="End, exclusive (ISO 8601).")
@click.option(
    "--seed", type=int, default=7, show_default=True, help="Same seed and options give byte-identical output."
)
@click.option(
    "--scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Volume multiplier (1 = the H1 2025 calibration, 0.01 a small sample).",
)
@click.option(
    "--out", "out", default="-", show_default=True, metavar="FILE", help="JSON Lines output file; - writes to stdout."
)
@click.option(
    "--disorder",
    type=float,
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Shuffle events within this many seconds of event time.",
)
@click.option(
    "--tail/--no-tail",
    default=False,
    show_default=True,
    help="Also emit the later events (after --to) of contacts that arrived before it.",
)
@click.option("--tag", default="", metavar="TAG", help="Letters/digits put into every subject id to keep runs apart.")
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Progress bar on stderr (only when writing a file).",
)
def simulate(
    start: str, end: str, seed: int, scale: float, out: str, disorder: float, tail: bool, tag: str, progress: bool
) -> None:
    """Simulate calls, tickets, walk-in visits and surveys of the department."""
    try:
        params = Params(parse_when(start), parse_when(end), seed=seed, scale=scale, tag=tag, tail=tail)
        if disorder < 0:
            raise SimulatorError("--disorder must not be negative")
    except SimulatorError as exc:
        raise click.UsageError(str(exc)) from exc
    began = time.perf_counter()
    if out == "-":
        try:
            write_jsonl(params, sys.stdout, disorder)
            sys.stdout.flush()
        except BrokenPipeError:
            # the reader went away (e.g. `| head`): stop quietly, without a traceback
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        return
    try:
        handle = open(out, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror}") from exc
    with handle:
        count = write_jsonl(params, handle, disorder, progress=progress)
    seconds = time.perf_counter() - began
    click.echo(f"{count:,} events written to {out} in {seconds:.1f} s", err=True)

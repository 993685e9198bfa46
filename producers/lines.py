"""Validate and publish a stream of JSON lines: the core of `tawasul publish`, `tawasul adapters`
and `tawasul replay`.

```python
summary = publish_lines(handle, "day.jsonl", publisher, pseudonymiser, stop=signals, workers=0)
```

Each line is checked against the contract (`producers.intake`); valid events go to the events
topic (key = subject, value = the line as written), rejected ones to the dead-letter topic. Blank
lines are skipped. The input is read in binary, one line at a time, and a line longer than the
event size limit is never held whole, so memory stays flat for inputs of any size. Large inputs
are validated in worker processes (`default_workers`), in file order. `StopOnSignal` lets a
command stop at a line boundary on SIGINT / SIGTERM and flush what it sent.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from types import FrameType
from typing import BinaryIO, Final, Protocol, TypeVar

from producers.intake import FROM_ENV, Accepted, MaxSkew, Rejected, accept_line, resolve_skew, too_large
from producers.publisher import channel_of
from schemas import MAX_EVENT_BYTES
from tawasul.infra.pseudonymise import Pseudonymiser

PROGRESS_STEP_BYTES: Final = 256 * 1024
CHUNK_LINES: Final = 2_000
CHUNK_BYTES: Final = 1024 * 1024
CHUNKS_AHEAD: Final = 4
"""Chunks in flight per worker process (bounds memory: about workers x 4 x 1 MiB)."""
PARALLEL_MIN_BYTES: Final = 16 * 1024 * 1024
"""Inputs at least this large are validated in worker processes (their start costs ~1 s)."""
READ_BUFFER: Final = 1024 * 1024
"""Large reads: fewer system calls, each of which lets the producer's sender thread take the GIL."""
_SKIP_CHUNK: Final = 1024 * 1024

T = TypeVar("T")
RejectReport = Callable[[int, Rejected], None]
ByteProgress = Callable[[int], None]


class LinePublisher(Protocol):
    """What `publish_lines` sends through: `EventPublisher` (record by record, for streams)
    or `BulkPublisher` (record batches, for files validated in worker processes)."""

    def publish_validated(self, key: bytes, value: bytes, *, channel: str, event_type: str) -> object: ...
    def reject(self, rejected: Rejected, *, source_kind: str = "file") -> object: ...
    def flush(self, timeout_s: float | None = None) -> None: ...
    def close(self, timeout_s: float | None = None) -> None: ...


@dataclass(frozen=True)
class PublishSummary:
    """What one run published: events sent, inputs rejected, duration, and whether it was stopped."""

    published: int
    rejected: int
    seconds: float
    interrupted: bool = False

    @property
    def rate(self) -> float:
        """Inputs (published + rejected) per second."""
        return (self.published + self.rejected) / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        stopped = " (interrupted)" if self.interrupted else ""
        return (
            f"published {self.published:,}, rejected {self.rejected:,}, "
            f"{self.seconds:.1f} s, {self.rate:,.0f} events/s{stopped}"
        )


class Interrupted(Exception):
    """A signal arrived while the command was waiting for input (see `StopOnSignal.interruptible`)."""


class StopOnSignal:
    """While active, SIGINT and SIGTERM set `event` instead of killing the process, so the
    command can stop at a line boundary and flush; `signum` is the signal received."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self._previous: dict[int, object] = {}
        self._waiting = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        self.event.set()
        if self._waiting:
            raise Interrupted

    def interruptible(self, items: Iterator[T]) -> Iterator[T]:
        """The items of `items` until a signal; a signal while waiting for the next item (a
        read from an idle pipe) ends the iteration at once instead of after the next line."""
        try:
            while not self.event.is_set():
                self._waiting = True
                try:
                    item = next(items)
                finally:
                    self._waiting = False
                yield item
        except (Interrupted, StopIteration):
            return

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]  # the handler signal.signal returned in __enter__

    @property
    def exit_code(self) -> int | None:
        """128 + the signal number once a signal was received, else None."""
        return None if self.signum is None else 128 + self.signum


def iter_lines(handle: BinaryIO, max_bytes: int = MAX_EVENT_BYTES) -> Iterator[tuple[int, bytes, int]]:
    """`(line_no, line, size)` for each line (line ending included when present).

    A line longer than `max_bytes` (plus its line ending) is not held whole: `line` is its
    first bytes and `size` its full length without the ending; otherwise `size` is -1.
    """
    limit = max_bytes + 3
    line_no = 0
    while True:
        line = handle.readline(limit)
        if not line:
            return
        line_no += 1
        if len(line) < limit or line.endswith(b"\n"):
            yield line_no, line, -1
            continue
        size = len(line)
        while True:
            rest = handle.readline(_SKIP_CHUNK)
            if not rest:
                break
            if rest.endswith(b"\n"):
                size += len(rest.rstrip(b"\r\n"))
                break
            size += len(rest)
        yield line_no, line, size


Verdict = tuple[int, bytes, bytes, str, str] | tuple[int, Rejected]
"""One judged line: `(line_no, key, value, channel, type)` to publish, or `(line_no, Rejected)`."""
Chunk = list[tuple[int, bytes, int]]


def judge_chunk(
    name: str, lines: Chunk, pseudonymiser: Pseudonymiser | None, max_skew: MaxSkew = FROM_ENV
) -> list[Verdict]:
    """Validate lines read by `iter_lines` (blank ones are left out); runs in a worker process
    for large inputs, so it returns plain tuples rather than events. `max_skew`: see
    `producers.intake` (None for history: no bound ahead of the clock)."""
    verdicts: list[Verdict] = []
    max_skew = resolve_skew(max_skew)
    for line_no, line, size in lines:
        if size >= 0:
            verdicts.append((line_no, too_large(line, size, f"{name}:{line_no}")))
            continue
        if not line.strip():
            continue
        outcome = accept_line(line, f"{name}:{line_no}", pseudonymiser, max_skew)
        if isinstance(outcome, Accepted):
            verdicts.append((line_no, outcome.key, outcome.value, channel_of(outcome.event), outcome.event.type))
        else:
            verdicts.append((line_no, outcome))
    return verdicts


def _chunks(handle: BinaryIO, counter: list[int], max_lines: int = CHUNK_LINES) -> Iterator[Chunk]:
    """Lines in chunks of at most `max_lines` lines / CHUNK_BYTES bytes; `counter[0]` counts bytes read."""
    chunk: Chunk = []
    held = 0
    for line_no, line, size in iter_lines(handle):
        chunk.append((line_no, line, size))
        length = len(line) if size < 0 else size
        counter[0] += length
        held += len(line)
        if len(chunk) >= max_lines or held >= CHUNK_BYTES:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


def _ignore_sigint() -> None:
    """Worker processes leave Ctrl-C to the main process, which stops and flushes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_workers(size: int | None) -> int:
    """Validation processes for an input of `size` bytes (None: unknown, e.g. stdin): none for
    small or unknown inputs or a single CPU, else up to 4, leaving a CPU to the sending process."""
    cpus = os.cpu_count() or 1
    if size is None or size < PARALLEL_MIN_BYTES or cpus < 2:
        return 0
    return min(4, cpus - 1)


def publish_lines(
    handle: BinaryIO,
    name: str,
    publisher: LinePublisher,
    pseudonymiser: Pseudonymiser | None,
    *,
    report: RejectReport | None = None,
    progress: ByteProgress | None = None,
    stop: StopOnSignal | None = None,
    source_kind: str = "file",
    workers: int = 0,
    max_skew: MaxSkew = FROM_ENV,
) -> PublishSummary:
    """Validate and publish every line of `handle` in file order; origins are `<name>:<line>`.

    With `workers` > 0, lines are validated in that many worker processes, in chunks of up
    to CHUNK_LINES lines (sent in file order, so the order of every subject is kept) while
    this process sends; without workers each line is published as soon as it is read. `stop`
    ends the run at a line boundary (and at once while waiting for input). `max_skew`: how
    far ahead of the clock an event time may be (`producers.intake`; None: history). Does not
    flush: the caller flushes (and learns of failed sends) before trusting the summary.
    """
    began = time.perf_counter()
    counts = [0, 0]  # published, rejected
    read = [0]
    reported = 0

    def chunks(max_lines: int) -> Iterator[Chunk]:
        lines = _chunks(handle, read, max_lines)
        return lines if stop is None else stop.interruptible(lines)

    def emit(verdicts: list[Verdict]) -> None:
        nonlocal reported
        for verdict in verdicts:
            if len(verdict) == 5:
                _, key, value, channel, event_type = verdict
                publisher.publish_validated(key, value, channel=channel, event_type=event_type)
                counts[0] += 1
            else:
                line_no, rejected = verdict
                publisher.reject(rejected, source_kind=source_kind)
                counts[1] += 1
                if report is not None:
                    report(line_no, rejected)
        if progress is not None and read[0] - reported >= PROGRESS_STEP_BYTES:
            reported = read[0]
            progress(reported)

    if workers <= 0:
        for chunk in chunks(1):  # each line at once: stdin may be a live stream
            emit(judge_chunk(name, chunk, pseudonymiser, max_skew))
    else:
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_sigint) as pool:
            ahead: deque[Future[list[Verdict]]] = deque()
            try:
                for chunk in chunks(CHUNK_LINES):
                    ahead.append(pool.submit(judge_chunk, name, chunk, pseudonymiser, max_skew))
                    if len(ahead) > workers * CHUNKS_AHEAD:
                        emit(ahead.popleft().result())
                while ahead and not (stop is not None and stop.event.is_set()):
                    emit(ahead.popleft().result())
            finally:
                for future in ahead:
                    future.cancel()
    if progress is not None:
        progress(read[0])
    interrupted = stop is not None and stop.event.is_set()
    return PublishSummary(counts[0], counts[1], time.perf_counter() - began, interrupted)

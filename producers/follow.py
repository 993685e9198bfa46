"""Follow a growing text file like `tail -F`, with a checkpoint to resume after a restart.

`FileFollower(path).lines()` yields `(line_no, text)` for each complete line (newline removed;
a partial last line is held back until its newline arrives). When the file is renamed and a
new one created at the path (log rotation), the old file is read to its end first and the new
one is then followed from its start; when the file is truncated in place (copytruncate), it is
followed again from its start. `position` (device, inode, byte offset, line number after the
last yielded line) can be saved with `save_position` and passed back as `start` to continue.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO, Literal

logger = logging.getLogger(__name__)

StopSignal = threading.Event | Callable[[], bool]
StartAt = Literal["beginning", "end"]


class FollowError(Exception):
    """The followed file or a checkpoint file cannot be used."""


@dataclass(frozen=True)
class Position:
    """Where a follower stands: the file (device, inode), the byte offset just after the last
    yielded line, and that line's number in the file."""

    device: int
    inode: int
    offset: int
    line_no: int


def save_position(path: str | Path, position: Position) -> None:
    """Write a checkpoint atomically (a crash leaves the old or the new one, never half)."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(position), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_position(path: str | Path) -> Position | None:
    """A checkpoint written by `save_position`, or None when there is none yet."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        position = Position(**{key: int(raw[key]) for key in ("device", "inode", "offset", "line_no")})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise FollowError(f"checkpoint {path} is unreadable: {exc}") from None
    if position.offset < 0 or position.line_no < 0:
        raise FollowError(f"checkpoint {path} holds a negative offset or line number")
    return position


class FileFollower:
    """Yields the complete lines of a file as it grows, across rotation and truncation.

    `start`: "beginning", "end" (after the last complete line now in the file) or a saved
    `Position`. `stop`: an Event or a callable, checked between lines and while idle; the
    follower then returns at a line boundary. `stop_at_eof`: read to the current end (the
    partial last line included) and return, instead of waiting for more. `rotate_grace`: how
    long to keep reading a renamed file while the new one stays empty (the writer may still
    append to the old file until it reopens its log).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        start: StartAt | Position = "end",
        poll_interval: float = 0.5,
        stop: StopSignal | None = None,
        stop_at_eof: bool = False,
        rotate_grace: float | None = None,
        chunk_size: int = 64 * 1024,
        encoding: str = "utf-8",
    ) -> None:
        if poll_interval <= 0:
            raise FollowError("poll_interval must be positive")
        self._path = Path(path)
        self._start = start
        self._poll = poll_interval
        self._stop = stop
        self._stop_at_eof = stop_at_eof
        self._grace = rotate_grace if rotate_grace is not None else max(1.0, 2 * poll_interval)
        self._chunk = chunk_size
        self._encoding = encoding
        self._file: BinaryIO | None = None
        self._ident = (0, 0)
        self._offset = 0
        self._line_no = 0
        self._buffer = b""
        self._replaced_since: float | None = None

    @property
    def position(self) -> Position | None:
        """The checkpoint after the last yielded line (None before the file is opened)."""
        if self._file is None:
            return None
        return Position(self._ident[0], self._ident[1], self._offset, self._line_no)

    def lines(self) -> Iterator[tuple[int, str]]:
        """`(line_no, text)` for each complete line; line numbers restart at 1 in a new file."""
        if not self._open_initial():
            return
        try:
            while not self._stopped():
                chunk = self._current().read(self._chunk)
                if chunk:
                    self._buffer += chunk
                    yield from self._complete_lines()
                    continue
                if self._stop_at_eof:
                    if self._buffer:
                        yield self._rest()
                    return
                if self._changed_on_disk():
                    yield from self._drain_and_switch()
                    continue
                self._sleep()
        finally:
            self._close()

    def _stopped(self) -> bool:
        if self._stop is None:
            return False
        if isinstance(self._stop, threading.Event):
            return self._stop.is_set()
        return bool(self._stop())

    def _sleep(self) -> None:
        if isinstance(self._stop, threading.Event):
            self._stop.wait(self._poll)
        else:
            time.sleep(self._poll)

    def _current(self) -> BinaryIO:
        if self._file is None:
            raise FollowError("the follower has no open file")
        return self._file

    def _open_initial(self) -> bool:
        """Open the file at the start position, waiting for it to appear; False when stopped.
        A file that appears while waiting is new: it is read from its start."""
        waited = False
        while True:
            try:
                handle = self._path.open("rb")
                break
            except FileNotFoundError:
                if self._stop_at_eof:
                    raise FollowError(f"{self._path} does not exist") from None
            if self._stopped():
                return False
            waited = True
            self._sleep()
        self._adopt(handle)
        start = self._start
        stat = os.fstat(handle.fileno())
        if isinstance(start, Position):
            if (start.device, start.inode) != self._ident:
                logger.warning(
                    "followed file was replaced since the checkpoint; reading the new one from its start",
                    extra={"path": str(self._path)},
                )
            elif stat.st_size < start.offset:
                logger.warning(
                    "followed file is shorter than the checkpoint (truncated); reading from its start",
                    extra={"path": str(self._path)},
                )
            else:
                self._seek(start.offset, start.line_no)
        elif start == "end" and not waited:
            self._seek(*self._end_of_last_line(handle))
        return True

    def _adopt(self, handle: BinaryIO) -> None:
        stat = os.fstat(handle.fileno())
        self._file = handle
        self._ident = (stat.st_dev, stat.st_ino)
        self._offset = 0
        self._line_no = 0
        self._buffer = b""
        self._replaced_since = None

    def _seek(self, offset: int, line_no: int) -> None:
        self._current().seek(offset)
        self._offset = offset
        self._line_no = line_no
        self._buffer = b""

    def _end_of_last_line(self, handle: BinaryIO) -> tuple[int, int]:
        """Offset just after the last newline now in the file, and the number of lines before it."""
        offset = lines = position = 0
        while chunk := handle.read(self._chunk):
            count = chunk.count(b"\n")
            if count:
                lines += count
                offset = position + chunk.rindex(b"\n") + 1
            position += len(chunk)
        return offset, lines

    def _complete_lines(self) -> Iterator[tuple[int, str]]:
        parts = self._buffer.split(b"\n")
        self._buffer = parts.pop()
        for index, raw in enumerate(parts):
            self._offset += len(raw) + 1
            self._line_no += 1
            yield self._line_no, self._decode(raw)
            if self._stopped():
                # Keep what was read but not yielded: the position stays at this line's end.
                self._buffer = b"\n".join([*parts[index + 1 :], self._buffer])
                return

    def _rest(self) -> tuple[int, str]:
        """The partial last line of a file that will not grow any more."""
        raw, self._buffer = self._buffer, b""
        self._offset += len(raw)
        self._line_no += 1
        return self._line_no, self._decode(raw)

    def _decode(self, raw: bytes) -> str:
        return raw.decode(self._encoding, errors="replace").rstrip("\r")

    def _changed_on_disk(self) -> bool:
        """True when the path now names another file (and it is time to switch) or the file
        shrank below what was read (truncation, handled here by rereading from the start)."""
        handle = self._current()
        try:
            on_disk = os.stat(self._path)
        except FileNotFoundError:
            return False  # renamed away and not yet recreated: keep reading the old file
        if (on_disk.st_dev, on_disk.st_ino) != self._ident:
            now = time.monotonic()
            if self._replaced_since is None:
                self._replaced_since = now
            return on_disk.st_size > 0 or now - self._replaced_since >= self._grace
        if on_disk.st_size < handle.tell():
            logger.warning(
                "followed file was truncated; reading it again from its start",
                extra={"path": str(self._path)},
            )
            self._seek(0, 0)
        return False

    def _drain_and_switch(self) -> Iterator[tuple[int, str]]:
        """Read the rotated file to its end, then follow the new file from its start."""
        handle = self._current()
        while chunk := handle.read(self._chunk):
            self._buffer += chunk
            yield from self._complete_lines()
            if self._stopped():
                return
        if self._buffer:
            yield self._rest()
        try:
            new_handle = self._path.open("rb")
        except FileNotFoundError:
            self._replaced_since = None
            return
        self._close()
        self._adopt(new_handle)
        logger.info("followed file was rotated; following the new file from its start", extra={"path": str(self._path)})

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()


def follow(
    path: str | Path,
    *,
    start: StartAt | Position = "end",
    poll_interval: float = 0.5,
    stop: StopSignal | None = None,
) -> Iterator[tuple[int, str]]:
    """`FileFollower(path, ...).lines()` for callers that need no checkpoint."""
    return FileFollower(path, start=start, poll_interval=poll_interval, stop=stop).lines()

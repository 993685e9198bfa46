from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from producers.follow import FileFollower, FollowError, Position, follow, load_position, save_position

POLL = 0.01
WAIT = 3.0


class Tail:
    """Runs a follower in a thread and collects what it yields."""

    def __init__(self, follower: FileFollower, stop: threading.Event) -> None:
        self.follower = follower
        self.stop = stop
        self.items: queue.Queue[tuple[int, str]] = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for item in self.follower.lines():
            self.items.put(item)

    def take(self, count: int) -> list[tuple[int, str]]:
        return [self.items.get(timeout=WAIT) for _ in range(count)]

    def nothing_more(self, wait: float = 0.1) -> bool:
        try:
            self.items.get(timeout=wait)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=WAIT)
        assert not self.thread.is_alive()


@pytest.fixture
def tail_of() -> Iterator[object]:
    started: list[Tail] = []

    def start(path: Path, **kwargs: object) -> Tail:
        stop = threading.Event()
        kwargs.setdefault("poll_interval", POLL)
        kwargs.setdefault("rotate_grace", 0.05)
        tail = Tail(FileFollower(path, stop=stop, **kwargs), stop)  # type: ignore[arg-type]
        started.append(tail)
        return tail

    yield start
    for tail in started:
        tail.close()


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def test_reads_existing_then_new_lines(tmp_path: Path, tail_of) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "queue_log"
    log.write_text("a\nb\n", encoding="utf-8")
    tail = tail_of(log, start="beginning")
    assert tail.take(2) == [(1, "a"), (2, "b")]
    append(log, "c\r\nd\n")
    assert tail.take(2) == [(3, "c"), (4, "d")]


def test_partial_line_waits_for_its_newline(tmp_path: Path, tail_of) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "queue_log"
    log.write_text("first\nsec", encoding="utf-8")
    tail = tail_of(log, start="beginning")
    assert tail.take(1) == [(1, "first")]
    assert tail.nothing_more()
    append(log, "ond|half")
    assert tail.nothing_more()
    append(log, "|done\n")
    assert tail.take(1) == [(2, "second|half|done")]
    position = tail.follower.position
    assert position is not None and position.offset == log.stat().st_size and position.line_no == 2


def test_start_at_end_skips_old_lines_but_finishes_a_partial_one(tmp_path: Path, tail_of) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "queue_log"
    log.write_text("old 1\nold 2\nhalf", encoding="utf-8")
    tail = tail_of(log, start="end")
    assert tail.nothing_more()
    append(log, " done\nnew\n")
    assert tail.take(2) == [(3, "half done"), (4, "new")]


def test_rotation_finishes_old_file_then_follows_new_one(tmp_path: Path, tail_of) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "queue_log"
    log.write_text("old 1\n", encoding="utf-8")
    tail = tail_of(log, start="beginning", rotate_grace=WAIT)  # switch only once the new file has data
    assert tail.take(1) == [(1, "old 1")]
    # The writer still has the old file open after the rename: its last lines must not be lost.
    with log.open("a", encoding="utf-8") as writer:
        log.rename(tmp_path / "queue_log.1")
        writer.write("old 2\n")
        writer.flush()
        time.sleep(0.05)
        log.write_text("", encoding="utf-8")  # logrotate `create`: a new, empty file
        time.sleep(0.02)
        writer.write("old 3\n")
    append(log, "new 1\nnew 2\n")
    assert tail.take(4) == [(2, "old 2"), (3, "old 3"), (1, "new 1"), (2, "new 2")]
    position = tail.follower.position
    assert position is not None and position.inode == log.stat().st_ino and position.line_no == 2


def test_rotation_without_a_new_file_for_a_while(tmp_path: Path, tail_of) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "queue_log"
    log.write_text("one\n", encoding="utf-8")
    tail = tail_of(log, start="beginning")
    assert tail.take(1) == [(1, "one")]
    log.rename(tmp_path / "queue_log.1")
    append(tmp_path / "queue_log.1", "two\n")
    assert tail.take(1) == [(2, "two")]
    time.sleep(0.05)
    log.write_text("three\n", encoding="utf-8")
    assert tail.take(1) == [(1, "three")]


def test_truncation_restarts_from_the_beginning(tmp_path: Path, tail_of) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "queue_log"
    log.write_text("line one is long\nline two is long\n", encoding="utf-8")
    tail = tail_of(log, start="beginning")
    assert tail.take(2) == [(1, "line one is long"), (2, "line two is long")]
    inode = log.stat().st_ino
    with log.open("r+", encoding="utf-8") as handle:  # copytruncate: same inode, emptied
        handle.truncate(0)
    assert log.stat().st_ino == inode
    time.sleep(0.05)
    append(log, "fresh\n")
    assert tail.take(1) == [(1, "fresh")]


def test_waits_for_a_missing_file(tmp_path: Path, tail_of) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "queue_log"
    tail = tail_of(log, start="end")
    assert tail.nothing_more(0.05)
    assert tail.follower.position is None
    log.write_text("created\n", encoding="utf-8")
    assert tail.take(1) == [(1, "created")]


def test_stop_returns_promptly_while_idle(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text("x\n", encoding="utf-8")
    stop = threading.Event()
    stop.set()
    assert list(FileFollower(log, start="beginning", stop=stop, poll_interval=5).lines()) == []


def test_stop_callable_leaves_position_at_a_line_boundary(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text("a\nbb\nccc\ndddd\n", encoding="utf-8")
    seen: list[tuple[int, str]] = []
    follower = FileFollower(log, start="beginning", stop=lambda: len(seen) >= 2, poll_interval=POLL)
    for item in follower.lines():
        seen.append(item)
    assert seen == [(1, "a"), (2, "bb")]
    assert follower.position is not None and follower.position.offset == len("a\nbb\n")


def test_checkpoint_resume_continues_where_it_stopped(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    checkpoint = tmp_path / "queue_log.pos"
    log.write_text("1\n2\n3\n", encoding="utf-8")
    seen: list[tuple[int, str]] = []
    first = FileFollower(log, start="beginning", stop=lambda: len(seen) >= 2, poll_interval=POLL)
    seen.extend(first.lines())
    assert first.position is not None
    save_position(checkpoint, first.position)
    append(log, "4\n")
    resumed = FileFollower(log, start=load_position(checkpoint) or "beginning", stop_at_eof=True)
    assert list(resumed.lines()) == [(3, "3"), (4, "4")]


def test_checkpoint_of_another_or_truncated_file_starts_from_the_beginning(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text("new a\nnew b\n", encoding="utf-8")
    stat = log.stat()
    other = Position(device=stat.st_dev, inode=stat.st_ino + 1, offset=6, line_no=1)
    assert list(FileFollower(log, start=other, stop_at_eof=True).lines()) == [(1, "new a"), (2, "new b")]
    beyond = Position(device=stat.st_dev, inode=stat.st_ino, offset=500, line_no=40)
    assert list(FileFollower(log, start=beyond, stop_at_eof=True).lines()) == [(1, "new a"), (2, "new b")]


def test_stop_at_eof_yields_the_partial_last_line(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_bytes(b"x\ny\xff\nlast")
    assert list(FileFollower(log, start="beginning", stop_at_eof=True).lines()) == [
        (1, "x"),
        (2, "y\ufffd"),
        (3, "last"),
    ]
    with pytest.raises(FollowError, match="does not exist"):
        list(FileFollower(tmp_path / "absent", stop_at_eof=True).lines())


def test_follow_function(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text("p\nq\n", encoding="utf-8")
    stop = threading.Event()
    lines = follow(log, start="beginning", poll_interval=POLL, stop=stop)
    assert next(lines) == (1, "p")
    stop.set()
    assert list(lines) == []  # stopped between lines: "q" stays for the next run


def test_position_file_round_trip_and_errors(tmp_path: Path) -> None:
    checkpoint = tmp_path / "pos.json"
    assert load_position(checkpoint) is None
    position = Position(device=1, inode=2, offset=3, line_no=4)
    save_position(checkpoint, position)
    assert load_position(checkpoint) == position
    assert [p.name for p in tmp_path.iterdir()] == ["pos.json"]  # no temporary file left
    checkpoint.write_text("{not json", encoding="utf-8")
    with pytest.raises(FollowError, match="unreadable"):
        load_position(checkpoint)
    checkpoint.write_text('{"device": 1, "inode": 2, "offset": -3, "line_no": 0}', encoding="utf-8")
    with pytest.raises(FollowError, match="negative"):
        load_position(checkpoint)


def test_large_file_in_small_chunks(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    expected = [f"{i}|line with some padding {'x' * (i % 50)}" for i in range(1, 2001)]
    log.write_text("\n".join(expected) + "\n", encoding="utf-8")
    follower = FileFollower(log, start="beginning", stop_at_eof=True, chunk_size=97)
    assert list(follower.lines()) == list(enumerate(expected, 1))
    assert follower.position == Position(os.stat(log).st_dev, os.stat(log).st_ino, log.stat().st_size, len(expected))

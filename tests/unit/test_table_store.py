"""Local table databases beyond the end of their changelog are discarded before a worker starts;
every other database is left alone."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from faust.stores.rocksdb import Store as RocksDBStore
from rocksdict import Options, Rdict

from stream_processors.table_store import StalePartition, changelog_topic, discard_stale_partitions, persisted_offset

APP = "tawasul-stream-processors"


def database(tabledir: Path, name: str, offset: int | None) -> Path:
    """A partition database as faust's rocksdict store writes it, with one table record."""
    path = tabledir / name
    db = Rdict(str(path), options=Options(raw_mode=True))
    db[b"T-1"] = b"{}"
    if offset is not None:
        db[RocksDBStore.offset_key] = str(offset).encode()
    db.close()
    return path


class Ends:
    """Changelog end offsets as the broker would give them; remembers what it was asked."""

    def __init__(self, ends: Mapping[tuple[str, int], int]) -> None:
        self.ends = dict(ends)
        self.asked: list[list[str]] = []

    def __call__(self, topics: list[str]) -> Mapping[tuple[str, int], int]:
        self.asked.append(topics)
        return {key: end for key, end in self.ends.items() if key[0] in topics}


def test_the_offset_faust_recorded_is_read(tmp_path: Path) -> None:
    assert persisted_offset(database(tmp_path, "sla-0.db", 191)) == 191
    assert persisted_offset(database(tmp_path, "sla-1.db", None)) is None


def test_databases_beyond_their_changelog_are_removed_and_the_others_kept(tmp_path: Path) -> None:
    sla = changelog_topic(APP, "sla")
    behind = database(tmp_path, "sla-0.db", 10)  # changelog ends at 11: up to date
    at_end = database(tmp_path, "sla-1.db", 11)  # changelog ends at 11: offset 11 was never written
    beyond = database(tmp_path, "sla-2.db", 191)  # changelog created again, now ends at 3
    missing = database(tmp_path, "sla-3.db", 0)  # the changelog has no partition 3
    no_offset = database(tmp_path, "sla-4.db", None)  # nothing recorded yet: faust reads the whole changelog
    other = database(tmp_path, "kpis-0.db", 5)  # another table, its own changelog
    (tmp_path / "notes.db").mkdir()  # not a partition database
    ends = Ends({(sla, 0): 11, (sla, 1): 11, (sla, 2): 3, (changelog_topic(APP, "kpis"), 0): 6})

    stale = discard_stale_partitions(tmp_path, APP, ends)

    assert sorted(stale, key=lambda s: s.partition) == [
        StalePartition("sla", 1, 11, 11),
        StalePartition("sla", 2, 191, 3),
        StalePartition("sla", 3, 0, 0),
    ]
    assert [path.exists() for path in (behind, at_end, beyond, missing, no_offset, other)] == [
        True,
        False,
        False,
        False,
        True,
        True,
    ]
    assert persisted_offset(behind) == 10 and (tmp_path / "notes.db").is_dir()
    assert ends.asked == [sorted([sla, changelog_topic(APP, "kpis")])]


def test_a_deleted_changelog_discards_every_partition_with_an_offset(tmp_path: Path) -> None:
    for partition in range(3):
        database(tmp_path, f"sla-{partition}.db", 100 + partition)
    stale = discard_stale_partitions(tmp_path, APP, Ends({}))
    assert {s.partition for s in stale} == {0, 1, 2} and not list(tmp_path.glob("*.db"))


def test_without_local_databases_the_broker_is_not_asked(tmp_path: Path) -> None:
    ends = Ends({})
    assert discard_stale_partitions(tmp_path / "absent", APP, ends) == []
    assert discard_stale_partitions(tmp_path, APP, ends) == []
    assert ends.asked == []

"""Where a faust table keeps its state: RocksDB on the worker's disk, or memory.

A live worker keeps the SLA table in RocksDB (via `rocksdict`) under its state directory. Faust
records, per partition, the changelog offset the local database has reached, so a worker
restarted on the same machine (after a crash or kill -9 too) reads only the changelog records
written after that offset instead of the whole changelog, and the deadline index is rebuilt
by scanning the local database. A worker on a machine without that directory recovers from the
changelog as before. Replays keep their tables in memory (a fresh app id each run).

A local database is only a copy of its changelog. One that has reached an offset beyond the
end of its changelog belongs to a changelog that no longer exists (the broker's data was wiped,
or the topic deleted and created again); faust refuses to start on it (`ConsistencyError`).
`discard_stale_partitions` removes such databases before the worker starts, so the worker
restores them from the changelog that does exist.

This is the one module that touches faust's store internals.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from faust.stores.rocksdb import Store as RocksDBStore
from rocksdict import AccessType, Options, Rdict

MIB = 1024 * 1024
ROCKSDB_OPTIONS: dict[str, Any] = {
    "driver": "rocksdict",
    "write_buffer_size": 8 * MIB,
    "max_write_buffer_number": 2,
    "target_file_size_base": 32 * MIB,
    "block_cache_size": 32 * MIB,
}
"""Per partition database: at most 16 MiB of memtables and a 32 MiB block cache (six partitions
stay well under the worker's memory budget; faust's defaults would allow about 3 GiB)."""


def table_options(name: str, durable: bool) -> dict[str, Any]:
    """Keyword arguments of `app.Table(name, ...)` for a durable (RocksDB) or in-memory table."""
    if not durable:
        return {}
    # "rocksdb:<name>", not "rocksdb://": that URL is falsy, and faust then silently falls back
    # to the app's default store. A fresh options dict each time: faust pops `driver` from it.
    return {"store": f"rocksdb:{name}", "options": dict(ROCKSDB_OPTIONS)}


def local_items(table: faust.types.CollectionT, partition: int) -> Iterator[tuple[bytes, bytes]] | None:
    """The raw key/value pairs of one partition held in the worker's local database, or None
    when the table keeps no local copy per partition (memory store)."""
    store = table.data
    if not isinstance(store, RocksDBStore):
        return None
    db = store._db_for_partition(partition)  # noqa: SLF001 - faust has no public per-partition scan
    items: Iterator[tuple[bytes, bytes]] = iter(store._visible_items(db))  # noqa: SLF001 - as above
    return items


_PARTITION_DB = re.compile(r"(?P<table>.+)-(?P<partition>\d+)\.db")
"""A table's database for one partition in faust's table directory: `<table>-<partition>.db`."""

ChangelogEnds = Callable[[list[str]], Mapping[tuple[str, int], int]]
"""The end offset of each partition of the named topics, by (topic, partition); a topic that
does not exist has no entries (`tawasul.infra.topics.partition_end_offsets`)."""


@dataclass(frozen=True)
class StalePartition:
    """A local table database that has reached a changelog offset its changelog does not have."""

    table: str
    partition: int
    persisted_offset: int
    changelog_end: int


def changelog_topic(app_id: str, table: str) -> str:
    """The name faust gives a table's changelog topic."""
    return f"{app_id}-{table}-changelog"


def persisted_offset(path: Path) -> int | None:
    """The changelog offset faust recorded in a partition's database, None when none is."""
    db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
    try:
        value = db.get(RocksDBStore.offset_key)
    finally:
        db.close()
    return None if value is None else int(value)


def discard_stale_partitions(tabledir: Path, app_id: str, changelog_ends: ChangelogEnds) -> list[StalePartition]:
    """Remove every partition database under `tabledir` whose recorded offset is at or beyond
    the end of its changelog partition (a missing topic or partition ends at 0); returns them.
    Call it before the worker starts, while no process has the databases open."""
    found: dict[tuple[str, int], Path] = {}
    for path in sorted(tabledir.glob("*.db")) if tabledir.is_dir() else ():
        match = _PARTITION_DB.fullmatch(path.name)
        if match is not None and path.is_dir():
            found[(match["table"], int(match["partition"]))] = path
    if not found:
        return []
    ends = changelog_ends(sorted({changelog_topic(app_id, table) for table, _ in found}))
    stale = []
    for (table, partition), path in found.items():
        offset = persisted_offset(path)
        end = ends.get((changelog_topic(app_id, table), partition), 0)
        if offset is not None and offset >= end:
            shutil.rmtree(path)
            stale.append(StalePartition(table, partition, offset, end))
    return stale

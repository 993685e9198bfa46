"""Where a faust table keeps its state: RocksDB on the worker's disk, or memory.

A live worker keeps the SLA table in RocksDB (via `rocksdict`) under its state directory. Faust
records, per partition, the changelog offset the local database has reached, so a worker
restarted on the same machine (after a crash or kill -9 too) reads only the changelog records
written after that offset instead of the whole changelog, and the deadline index is rebuilt
by scanning the local database. A worker on a machine without that directory recovers from the
changelog as before. Replays keep their tables in memory (a fresh app id each run).

This is the one module that touches faust's store internals.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import faust
from faust.stores.rocksdb import Store as RocksDBStore

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
    return iter(store._visible_items(db))  # noqa: SLF001

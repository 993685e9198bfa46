"""After a rebalance, resume every input partition where the group's commit says, or from the
start when the group never committed it (faust-streaming 0.15.3 with aiokafka 0.14.0).

While a recovery runs, faust pauses the input partitions in its own bookkeeping only; aiokafka
keeps fetching them. Records it returns for a partition faust holds paused are dropped by
faust's `getmany` (aiokafka returns them when the set of active partitions faust shares with
it is momentarily empty, as the recovery pauses the changelogs), and the ones queued when the
recovery resumes flow control are cleared; either way the consumer's position has moved past
them. The recovery ends with `Consumer.perform_seek`, which puts back a partition that has a
committed offset; aiokafka's `seek_to_committed` leaves one without (or with 0) where it is, so
those records are never read. A worker restarted before its group committed anything on a
partition skipped events already published (the test of the worker killed 3 times: up to 512
outcomes lost), and so can a first start on a topic that already holds events.
docs/reliability.md has the evidence.

`install()` replaces `Consumer.perform_seek`: an input partition (not a table's changelog,
which the recovery positions) with no committed offset is sought to its beginning
(`consumer_auto_offset_reset="earliest"`, the app's setting; with "latest" it is left as it
is), and the acknowledgements recorded before the seek are forgotten for every input partition
sought (their messages are read again), so no commit can count a message dropped before it.
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import Consumer
from faust.types import TP

from stream_processors.faust_patch import MethodPatch


async def perform_seek(self: Any) -> None:
    """Seek every assigned input partition to its committed offset, or to its beginning when it has none."""
    found: dict[Any, int | None] = dict(await self.seek_to_committed())
    changelogs = self.app.tables.changelog_topics  # a table's partitions: positioned by the recovery
    inputs = {tp for tp in found if tp.topic not in changelogs}
    unpositioned = [tp for tp in inputs if not found[tp] or found[tp] < 0]  # type: ignore[operator]
    if unpositioned and self.app.conf.consumer_auto_offset_reset == "earliest":
        await self._thread.seek_to_beginning(*unpositioned)  # aiokafka's, in the consumer's thread
    for raw, offset in found.items():
        tp = TP(raw.topic, raw.partition)
        self._read_offset[tp] = offset if offset is not None and offset >= 0 else None
        if offset is not None:
            self._committed_offset[tp] = offset or None
        if raw in inputs:  # read again from here: acknowledgements from before the seek are void
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
            self._gap.pop(tp, None)


_PATCH = MethodPatch(Consumer, "perform_seek", perform_seek)
install, uninstall = _PATCH.install, _PATCH.uninstall
"""`install()` replaces faust's `Consumer.perform_seek` (idempotent); `uninstall()` restores it
(for a test showing the upstream behaviour)."""

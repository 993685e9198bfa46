"""Never commit an input offset past a message still in flight (faust-streaming issue #606).

faust-streaming 0.15.3 (the newest release; the fix, pull request #707, is not released)
computes the offset to commit from the run of acknowledged offsets. When the one message at
the head of a partition is still unacknowledged - an SLA change held until the broker confirmed
its outcomes (`held_writes`) - while later messages are acknowledged, the run starts one past
the last commit, which faust takes for a compacted-topic gap, and it commits past the held
message: a crash then loses it. (With no commit yet on the partition, faust skips the check
altogether.)

`install()` wraps `Consumer._new_offset`: acknowledged offsets at or above the lowest offset
of a message the streams took but did not acknowledge yet are set aside for that computation
and kept for a later one, so the committed offset stops just before the message in flight.
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import Consumer

from stream_processors.faust_patch import MethodPatch


def in_flight_floor(consumer: Any, tp: Any) -> int | None:
    """The lowest offset of `tp` taken by a stream and not acknowledged, None when there is none."""
    offsets = [message.offset for message in list(consumer._unacked_messages) if message.tp == tp and not message.acked]
    return min(offsets) if offsets else None


def _guarded_new_offset(self: Any, tp: Any) -> int | None:
    original = _PATCH.original
    assert original is not None
    floor = in_flight_floor(self, tp)
    acked = self._acked[tp]
    if floor is None or not acked or max(acked) < floor:
        return original(self, tp)  # type: ignore[no-any-return]
    later = [offset for offset in acked if offset >= floor]
    acked[:] = [offset for offset in acked if offset < floor]
    try:
        new = original(self, tp) if acked else None
    finally:
        acked.extend(later)
        acked.sort()
    return new if new is None or new <= floor else floor


_PATCH = MethodPatch(Consumer, "_new_offset", _guarded_new_offset)
install, uninstall = _PATCH.install, _PATCH.uninstall
"""`install()` wraps faust's offset computation (idempotent); `uninstall()` restores faust's own
(for a test showing the upstream behaviour)."""

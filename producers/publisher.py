"""The producers' publisher: `tawasul.infra.publisher.KafkaPublisher` plus intake outcomes.

```python
from producers.publisher import EventPublisher, PublishError

with EventPublisher(settings) as publisher:           # close() flushes
    publisher.publish(event, raw=line)                # key = subject, value = raw or event JSON
    publisher.reject(rejected, source_kind="file")    # dead letter + rejected-event metrics
    publisher.route(outcome, source_kind="http")      # either of the two for an intake outcome
    publisher.flush()                                 # raises PublishError when a send failed
```

The guarantees (confirmed sends, bounded window, `PublishError`) are `KafkaPublisher`'s. The
rejected-event metric `events_rejected` is counted here, by source kind and category.
"""

from __future__ import annotations

from kafka.producer.future import FutureRecordMetadata

from producers.intake import Accepted, Rejected
from tawasul.infra.publisher import (
    DEFAULT_WINDOW,
    PRODUCER_DEFAULTS,
    ConfirmingPublisher,
    KafkaPublisher,
    PublishError,
    channel_of,
)

__all__ = [
    "DEFAULT_WINDOW",
    "PRODUCER_DEFAULTS",
    "ConfirmingPublisher",
    "EventPublisher",
    "KafkaPublisher",
    "PublishError",
    "channel_of",
]


class EventPublisher(KafkaPublisher):
    """`KafkaPublisher` that also takes the outcomes of `producers.intake`."""

    def reject(self, rejected: Rejected, *, source_kind: str = "file") -> FutureRecordMetadata:
        """Count a rejected input and send its dead letter."""
        self.metrics.events_rejected.labels(source_kind=source_kind, reason=rejected.category).inc()
        return self.dead_letter(rejected.letter, source_kind=source_kind)

    def route(self, outcome: Accepted | Rejected, *, source_kind: str = "file") -> FutureRecordMetadata:
        """Publish an accepted intake outcome, or dead-letter a rejected one."""
        if isinstance(outcome, Accepted):
            return self.publish(outcome.event, outcome.value)
        return self.reject(outcome, source_kind=source_kind)

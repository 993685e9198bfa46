"""The CloudEvent of an SLA outcome (contract section 3): `sla.warning`, `sla.breached`, `sla.met`, withdrawals.

`encode_outcome` writes the Kafka message value directly. The engine's outcomes are valid by
construction, so building and validating the event with `schemas.new_event` (about 40 us an
outcome) would only cost time; `tests/unit/test_outcome_event.py` holds the two equal.
"""

from __future__ import annotations

import json

from schemas import DATACONTENTTYPE, SPECVERSION, dataschema_uri
from schemas.fields import format_timestamp
from tawasul.domain.sla_state import SlaOutcome

SLA_SOURCE = "/stream-processors/sla"


def encode_outcome(outcome: SlaOutcome, policies_sha256: str | None = None) -> bytes:
    """Compact UTF-8 JSON of the outcome's event, byte for byte `new_event(...).to_json()`
    (type, ticket id as subject, `at` as time, `to_data()`, `SLA_SOURCE`, id), unvalidated.
    `policies_sha256`, when given, is added to `data`: the hash of the policy book that decided it."""
    body = {
        "specversion": SPECVERSION,
        "id": outcome.id,
        "source": SLA_SOURCE,
        "type": outcome.type,
        "time": format_timestamp(outcome.at),
        "subject": outcome.ticket_id,
        "datacontenttype": DATACONTENTTYPE,
        "dataschema": dataschema_uri(outcome.type),
        "data": {
            "ticket_id": outcome.ticket_id,
            "target": outcome.target,
            "policy": outcome.policy,
            "deadline": format_timestamp(outcome.deadline),
            "channel": outcome.channel,
            "kind": outcome.kind,
            "category": outcome.category,
            "priority": outcome.priority,
        },
    }
    withdrawn = outcome.withdrawn_id
    if withdrawn is not None:
        body["data"]["withdrawn_id"] = withdrawn  # type: ignore[index]  # body's data is the dict built above
    if policies_sha256 is not None:
        body["data"]["policies_sha256"] = policies_sha256  # type: ignore[index]  # body's data is the dict built above
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates survive only as \u escapes (as Event.to_json)
        return json.dumps(body, separators=(",", ":")).encode("ascii")

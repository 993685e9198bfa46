from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import Channel, Kind, Priority, SlaTarget, decode_event, new_event
from stream_processors.outcome_event import SLA_SOURCE, encode_outcome
from tawasul.domain.sla_state import SlaOutcome

_OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=4)), timezone(timedelta(hours=-3, minutes=-30))])
_INSTANTS = st.builds(
    lambda when, micros, tz: (when + timedelta(microseconds=micros)).replace(tzinfo=UTC).astimezone(tz),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)),
    st.sampled_from([0, 1, 500_000, 999_999]),
    _OFFSETS,
)
_NAMES = st.text(min_size=1, max_size=20).filter(lambda text: text.strip() != "") | st.sampled_from(
    ["T-1", "صيانة المساجد", "crm-standard", 'quote " and \\ slash']
)


@settings(max_examples=300, deadline=None)
@given(
    st.builds(
        SlaOutcome,
        type=st.sampled_from(["sla.warning", "sla.breached", "sla.met"]),
        ticket_id=_NAMES,
        target=st.sampled_from([t.value for t in SlaTarget]),
        policy=_NAMES,
        deadline=_INSTANTS,
        at=_INSTANTS,
        channel=st.sampled_from([c.value for c in Channel]),
        kind=st.sampled_from([k.value for k in Kind]),
        category=_NAMES,
        priority=st.sampled_from([p.value for p in Priority]),
        cycle=st.integers(0, 5),
    )
)
def test_the_direct_encoding_is_the_validated_event_byte_for_byte(outcome: SlaOutcome) -> None:
    encoded = encode_outcome(outcome)
    validated = new_event(outcome.type, outcome.ticket_id, outcome.at, outcome.to_data(), SLA_SOURCE, id=outcome.id)
    assert encoded == validated.to_json()
    assert decode_event(encoded).id == outcome.id

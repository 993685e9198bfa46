"""`data` of the contact-centre call events (subject = call id)."""

from __future__ import annotations

from schemas.base import EventData
from schemas.fields import Name, Seconds
from schemas.values import Language


class CallOfferedData(EventData):
    """A call entered a queue."""

    queue: Name
    language: Language | None = None
    caller_ref: Name | None = None
    """Opaque, already pseudonymised caller reference."""


class CallAnsweredData(EventData):
    """An agent answered the call."""

    queue: Name
    agent: Name


class CallAbandonedData(EventData):
    """The caller hung up before an answer."""

    queue: Name


class CallEndedData(EventData):
    """The call ended; wrap-up time counts into handle time."""

    queue: Name | None = None
    agent: Name | None = None
    wrap_up_seconds: Seconds | None = None

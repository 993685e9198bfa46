"""`data` of the walk-in visit events (subject = visit id)."""

from __future__ import annotations

from schemas.base import EventData
from schemas.fields import Name


class VisitCheckedInData(EventData):
    """A visitor took a ticket at a service centre."""

    centre: Name
    service: Name


class VisitCalledData(EventData):
    """The visitor was called to a counter; ends the wait."""

    centre: Name
    counter: Name


class VisitCompletedData(EventData):
    """The visitor was served."""

    centre: Name


class VisitNoShowData(EventData):
    """The visitor did not come when called."""

    centre: Name

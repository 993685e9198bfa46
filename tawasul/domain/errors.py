"""Exceptions of the domain package."""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every error raised by `tawasul.domain`."""


class CalendarError(DomainError, ValueError):
    """A business calendar is misconfigured or was given a bad argument."""


class PolicyError(DomainError, ValueError):
    """An SLA policy file is invalid; the message names the place, e.g. `policies[2].calendar`."""


class DurationError(DomainError, ValueError):
    """A business duration such as `1h30m` could not be parsed."""

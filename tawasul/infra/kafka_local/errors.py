"""Errors of the local broker manager."""

from __future__ import annotations


class BrokerError(Exception):
    """The local Kafka broker could not be fetched, started or stopped; the message says why."""

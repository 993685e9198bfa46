"""The operations wall display: an aiohttp app serving one page and `/api/wallboard` (JSON read from
the SQL sink's tables). `tawasul wallboard` runs it (`sinks.wallboard.cli:wallboard`)."""

from __future__ import annotations

from sinks.wallboard.app import create_app
from sinks.wallboard.config import Targets, WallboardConfig

__all__ = ["Targets", "WallboardConfig", "create_app"]

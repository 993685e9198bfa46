"""The KPI figures' settings from the environment (no faust: the batch engine reads them too)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from tawasul.domain.kpi_tallies import KpiConfig

__all__ = ["ENV_THRESHOLDS", "KpiConfigError", "config_from_env"]

ENV_THRESHOLDS = "TAWASUL_KPI_THRESHOLDS"


class KpiConfigError(ValueError):
    """A KPI setting from the environment could not be read."""


def config_from_env(environ: Mapping[str, str] | None = None) -> KpiConfig:
    """`KpiConfig` with per-queue thresholds from `TAWASUL_KPI_THRESHOLDS`, e.g. `general=20,zakat=30`."""
    text = (os.environ if environ is None else environ).get(ENV_THRESHOLDS, "").strip()
    thresholds: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        queue, _, seconds = item.partition("=")
        if not queue.strip() or not seconds.strip().isdigit():
            raise KpiConfigError(f"{ENV_THRESHOLDS}: expected queue=seconds[,queue=seconds...], e.g. general=20")
        thresholds[queue.strip()] = int(seconds)
    return KpiConfig(thresholds=thresholds)
